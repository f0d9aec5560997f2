"""AddTags / ListTags / DeleteTags for the resources the platform owns.

Tags of anything else (experiments, model packages, ...) live in moto's SageMaker backend:
for an ARN the store does not know, the handlers raise NotImplementedError and the gateway
hands the call to moto.
"""

from __future__ import annotations

from typing import Any

from emulator.context import CallContext
from emulator.store import Store

#: ARN resource types -> store kinds, for the resources whose records the platform keeps.
OWNED_RESOURCE_TYPES = {
    "training-job": "training-job",
    "processing-job": "processing-job",
    "transform-job": "transform-job",
    "hyper-parameter-tuning-job": "hyper-parameter-tuning-job",
    "model": "model",
    "endpoint-config": "endpoint-config",
    "endpoint": "endpoint",
}


def parse_arn(arn: str) -> tuple[str, str] | None:
    """``(resource type, name)`` of a SageMaker ARN, or None when it is not one."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sagemaker":
        return None
    resource_type, _, name = parts[5].partition("/")
    return (resource_type, name) if name else None


class TagService:
    """Tag operations over :class:`Store` for ARNs of platform-owned resources."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self) -> None:
        """Nothing to re-adopt: records only."""

    def stop(self) -> None:
        """No background work."""

    def _owned(self, arn: str) -> str:
        parsed = parse_arn(arn)
        if parsed is None or parsed[0] not in OWNED_RESOURCE_TYPES:
            raise NotImplementedError(arn)
        if self.store.get(OWNED_RESOURCE_TYPES[parsed[0]], parsed[1]) is None:
            raise NotImplementedError(arn)
        return arn.lower()

    def add_tags(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Add or overwrite tags; answers with the resource's tags as AWS does."""
        arn = self._owned(request["ResourceArn"])
        self.store.add_tags(arn, request.get("Tags", []))
        return {"Tags": self.store.list_tags(arn)}

    def list_tags(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Every tag of the resource (the emulator returns them in one page)."""
        arn = self._owned(request["ResourceArn"])
        return {"Tags": self.store.list_tags(arn)}

    def delete_tags(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Remove the named tag keys."""
        arn = self._owned(request["ResourceArn"])
        self.store.delete_tags(arn, request.get("TagKeys", []))
        return {}
