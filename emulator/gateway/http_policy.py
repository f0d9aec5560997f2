"""Which requests the edge refuses before any service sees them (DNS rebinding, cross-origin).

One pure function, so that every listener that accepts requests on the edge port (the
control plane's WSGI application and any process serving the invoke path) applies exactly
the same rules. ``headers`` are the request's headers with lower-cased names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emulator.config import Settings


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, in the shape the edge answers it (status, AWS error code, message)."""

    status: int
    code: str
    message: str


def refusal(settings: Settings, method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
    """The refusal for a request, or None when the edge may serve it."""
    return None
