"""Records of jobs whose only status is the primary one (processing and transform jobs).

Their Describe* answer is the record in the store; the status moves InProgress -> Completed |
Failed | Stopping -> Stopped, and a terminal record never moves again. List* shares the
grammar of every SageMaker list call (emulator.hosting.listing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.hosting.listing import list_page
from emulator.store import Store

IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
FAILED = "Failed"
STOPPING = "Stopping"
STOPPED = "Stopped"
TERMINAL = frozenset({COMPLETED, FAILED, STOPPED})
REASON_LIMIT = 1024
"""FailureReason and ExitMessage hold at most 1024 characters."""


def list_jobs(store: Store, kind: str, request: dict[str, Any], name_key: str, status_key: str,
              summary_keys: tuple[str, ...], answer_key: str) -> dict[str, Any]:
    """A List*Jobs answer: filtered, sorted (newest first by default) and paged like AWS."""
    page, token = list_page(store.list(kind), request, name_key, status_key=status_key,
                            summary=lambda r: {k: r[k] for k in summary_keys if k in r})
    return {answer_key: page, **({"NextToken": token} if token else {})}


class JobRecords:
    """Status moves of one kind of job in the store (``status_key``: e.g. ProcessingJobStatus)."""

    def __init__(self, store: Store, kind: str, status_key: str) -> None:
        self.store = store
        self.kind = kind
        self.status_key = status_key

    def get(self, name: str) -> dict[str, Any] | None:
        """The job's record (its Describe answer), or None."""
        return self.store.get(self.kind, name)

    def update(self, name: str, change: Callable[[dict[str, Any]], Any], now: float) -> dict[str, Any] | None:
        """Apply ``change`` and stamp LastModifiedTime, atomically."""
        def apply(record: dict[str, Any]) -> None:
            change(record)
            record["LastModifiedTime"] = now
        return self.store.update(self.kind, name, apply)

    def is_terminal(self, record: dict[str, Any]) -> bool:
        """Whether the job has finished."""
        return record.get(self.status_key) in TERMINAL

    def begin_stop(self, name: str, now: float) -> dict[str, Any] | None:
        """InProgress -> Stopping; returns the record (unchanged unless it was InProgress), None if missing."""
        def change(record: dict[str, Any]) -> None:
            if record.get(self.status_key) == IN_PROGRESS:
                record[self.status_key] = STOPPING
        return self.update(name, change, now)

    def finish(self, name: str, status: str, now: float, end_key: str, **fields: Any) -> None:
        """Write a terminal status once, with its end time and any FailureReason/ExitMessage."""
        def change(record: dict[str, Any]) -> None:
            if self.is_terminal(record):
                return
            record[self.status_key] = status
            record[end_key] = now
            for key, value in fields.items():
                if value:
                    record[key] = value[:REASON_LIMIT] if isinstance(value, str) else value
        self.update(name, change, now)
