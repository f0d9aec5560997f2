"""One server log line per lifecycle event of a job or an endpoint.

A store listener: it compares a record's status before and after each saved change and logs
``training job first-job: started (InProgress)``, ``... Completed``, ``... Failed: <reason>``,
``endpoint my-endpoint: InService``, ``endpoint my-endpoint: deleted``. Kinds come from
:mod:`.kinds`, so a new kind's records are logged as soon as they exist. Hosting logs its own
instance replacements (hosting/healing.py) on the same logger.
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.observe.kinds import find_kind

log = logging.getLogger("emulator.events")
"""The lifecycle logger (``smemu serve`` prints INFO)."""

Record = dict[str, Any]


def lifecycle_line(kind_key: str, name: str, before: Record | None, after: Record | None) -> str | None:
    """The log line for one saved change, or None when nothing a user follows happened."""
    kind = find_kind(kind_key)
    if kind is None or kind.key != kind_key:
        return None
    was = kind.status(before) if before is not None else None
    now = kind.status(after) if after is not None else None
    prefix = f"{kind.label} {name}:"
    if after is None:
        return f"{prefix} deleted" if before is not None else None
    if was == now:
        return None
    if was is None:
        detail = kind.instances(after)
        return f"{prefix} {'started' if kind.is_job else 'created'} ({now}{', ' + detail if detail else ''})"
    reason = after.get(kind.failure_field) if now in ("Failed", "UpdateRollbackFailed") else None
    return f"{prefix} {now}" + (f": {reason}" if reason else "")


def log_lifecycle(kind_key: str, name: str, before: Record | None, after: Record | None) -> None:
    """Store listener: log the line for a change, if there is one."""
    line = lifecycle_line(kind_key, name, before, after)
    if line is not None:
        log.info("%s", line)
