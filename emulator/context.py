"""The per-call context every platform operation receives: who called, where, and which call.

The gateway fills it from the request's SigV4 credential scope; the platform uses it to
build ARNs in the caller's region, exactly as SageMaker does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallContext:
    """Identity of one API call."""

    region: str
    """Region from the request's credential scope (or the emulator's default)."""
    account_id: str
    """Account that owns the resources (moto's default account unless configured)."""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    """Echoed as x-amzn-RequestId, and in logs, to tie a failure to its call."""

    def arn(self, resource_type: str, name: str) -> str:
        """A SageMaker ARN; SageMaker lower-cases resource names in ARNs."""
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{resource_type}/{name.lower()}"
