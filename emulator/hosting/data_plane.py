"""The vocabulary hosting and the data plane's front processes share (no imports, so a front
loads it without the rest of hosting).

``serve`` of a published variant says what a front may serve of it by itself; see
:mod:`.publication` for who decides and why.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVE_SINGLE = "single"
"""One container per instance: ``POST /invocations``."""
SERVE_DIRECT = "direct"
"""A multi-container model invoked with TargetContainerHostname."""
SERVE_MULTI_MODEL = "multi-model"
"""A caching multi-model container: only TargetModels a :class:`Placement` says are loaded."""
FORWARD = ""
"""Everything else: the front hands the request to the control process."""


@dataclass(frozen=True)
class Placement:
    """A multi-model TargetModel loaded (or no longer loaded) in one container.

    ``model`` is the name the container knows it by (``POST /models/<model>/invoke``).
    """

    container_id: str
    target: str
    model: str
    loaded: bool
