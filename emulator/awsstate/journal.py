"""The AWS state journal: one JSON line per change moto made, the durable record of that state.

File ``SMEMU_HOME/state/aws-journal.jsonl`` (mode 0600), documented in docs/state-format.md:

* line 1, the header: ``{"format": "smemu-aws-journal", "version": 1, "created": <epoch s>,
  "moto": "<release>", "emulator": "<release>"}``;
* every further line, one change, in the order moto made them:
  ``{"n": <sequence>, "t": <epoch s>, "seed": <int>, "kind": "http" | "call", ...}``.
  ``http``: a request moto answered with 2xx (``method``, ``path``, ``query``, ``headers``,
  ``body`` in base64); ``call``: a write the emulator made straight into a moto backend
  (``name``, ``args``; see recorder.py's ``DIRECT_WRITES``).

Writes are ``os.write`` on an ``O_APPEND`` descriptor, so a line is in the kernel before the
change is acknowledged: kill -9 cannot lose it. :meth:`Journal.append` with ``sync=True``
(every change a client is told about) also ``fdatasync``s before returning, so a power loss
cannot either; changes nobody is told about (log lines the emulator ships) are synced by a
background flusher within :data:`SYNC_INTERVAL` seconds, or by the next synced append.

A line cut short by a crash (no newline at the end of the file) was never acknowledged: it
is dropped when the journal is opened. A damaged line anywhere else stops the start with a
message naming it, because replaying past it would rebuild the wrong state.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = "smemu-aws-journal"
VERSION = 1
"""The format this release writes. Older versions are migrated entry by entry (:data:`MIGRATIONS`)."""
SYNC_INTERVAL = 1.0

Entry = dict[str, Any]
MIGRATIONS: dict[int, Callable[[Entry], Entry]] = {}
"""``{version n: function turning an entry of version n into one of version n + 1}``."""


class JournalError(RuntimeError):
    """The journal cannot be used as it is; the message says why and what to do."""


def _header() -> Entry:
    from importlib.metadata import PackageNotFoundError, version

    def release(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            return "unknown"

    return {"format": FORMAT, "version": VERSION, "created": time.time(), "moto": release("moto"),
            "emulator": release("sagemaker-emulator")}


def read_journal(path: Path) -> tuple[Entry | None, list[Entry]]:
    """``(header, entries)`` of a journal, entries migrated to :data:`VERSION`; (None, []) if there is none.

    A torn last line (no trailing newline) is cut off the file. Raises :class:`JournalError` for
    a journal of another format, a newer version, or a damaged line before the last.
    """
    if not path.exists():
        return None, []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        log.warning("dropping the last %d bytes of %s: a change cut short by a crash, never acknowledged",
                    len(data) - cut, path)
        with path.open("r+b") as handle:
            handle.truncate(cut)
        data = data[:cut]
    lines = data.splitlines()
    if not lines:
        return None, []
    header = _parse(path, 1, lines[0])
    if header.get("format") != FORMAT:
        raise JournalError(f"{path} is not a {FORMAT} file (header {str(header)[:200]})")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise JournalError(
            f"{path} was written by a newer sagemaker-emulator (journal format {version}; this release reads "
            f"formats up to {VERSION}). Upgrade sagemaker-emulator, or move {path.parent} aside to start empty.")
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        entry = _parse(path, number, line)
        for step in range(version, VERSION):
            entry = MIGRATIONS[step](entry)
        entries.append(entry)
    return header, entries


def _parse(path: Path, number: int, line: bytes) -> Entry:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise JournalError(f"{path} line {number} is damaged ({exc}); the AWS state cannot be rebuilt past it. "
                           f"Keep a copy of the file, then truncate it before that line to start from the "
                           f"changes before it.") from exc
    if not isinstance(value, dict):
        raise JournalError(f"{path} line {number} is not a JSON object")
    return value


class Journal:
    """Appends entries to the journal file; thread-safe."""

    def __init__(self, path: Path, next_sequence: int = 1) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._sequence = next_sequence
        self._unsynced = False
        self._stop = threading.Event()
        self.appended = 0
        if fresh:
            self._write(json.dumps(_header(), separators=(",", ":")).encode() + b"\n")
            os.fdatasync(self._fd)
        self._flusher = threading.Thread(target=self._flush_loop, name="smemu-journal-sync", daemon=True)
        self._flusher.start()

    def append(self, entry: Entry, sync: bool) -> int:
        """Write one entry (its sequence number is set here and returned); see the module doc for ``sync``."""
        with self._lock:
            entry["n"] = self._sequence
            self._write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
            self._sequence += 1
            self.appended += 1
            if sync:
                os.fdatasync(self._fd)
                self._unsynced = False
            else:
                self._unsynced = True
            return int(entry["n"])

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def sync(self) -> None:
        """fdatasync now if anything was written without it."""
        with self._lock:
            if self._unsynced and self._fd >= 0:
                os.fdatasync(self._fd)
                self._unsynced = False

    def _flush_loop(self) -> None:
        while not self._stop.wait(SYNC_INTERVAL):
            try:
                self.sync()
            except OSError:
                log.exception("syncing %s failed", self.path)

    def close(self) -> None:
        """Sync and close; the journal is unusable afterwards."""
        self._stop.set()
        self._flusher.join(5)
        self.sync()
        with self._lock:
            os.close(self._fd)
            self._fd = -1

