"""The AWS state journal: one JSON line per change moto made, the durable record of that state.

File ``SMEMU_HOME/state/aws-journal.jsonl`` (mode 0600), documented in docs/state-format.md:

* line 1, the header: ``{"format": "smemu-aws-journal", "version": 2, "created": <epoch s>,
  "moto": "<release>", "emulator": "<release>"}``;
* line 2, after a compaction: the checkpoint ``{"kind": "snapshot", "n": <last change in it>,
  "moto": "<release>", "sha256": ..., "data": <base64>}`` (snapshot.py);
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

Compaction (:func:`write_compacted`) replaces the file as a whole: the new one is written
beside it, fsynced, renamed over it and the directory fsynced, so a crash at any moment
leaves the old journal or the new one, each complete. The changes it folds into the
checkpoint are first appended to the history file (:func:`append_history`), same format
without a checkpoint, which only a different moto release reads (recorder.py).
"""

from __future__ import annotations

import base64
import hashlib
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
VERSION = 2
"""The format this release writes. Older versions are migrated entry by entry (:data:`MIGRATIONS`).
Version 2 added the checkpoint line; its change lines are version 1's."""
SYNC_INTERVAL = 1.0

Entry = dict[str, Any]
MIGRATIONS: dict[int, Callable[[Entry], Entry]] = {1: lambda entry: entry}
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


SNAPSHOT = "snapshot"
"""``kind`` of the checkpoint line (line 2 of a compacted journal)."""


def read_journal(path: Path) -> tuple[Entry | None, list[Entry]]:
    """``(header, entries)`` of a journal, entries migrated to :data:`VERSION`; (None, []) if there is none.

    The checkpoint of a compacted journal, if any, is the first entry (``kind`` ``snapshot``).
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
        if entry.get("kind") == SNAPSHOT and number != 2:
            raise JournalError(f"{path} line {number} is a checkpoint, which only line 2 may be")
        for step in range(version, VERSION):
            entry = MIGRATIONS[step](entry)
        entries.append(entry)
    return header, entries


def snapshot_entry(data: bytes, sequence: int, moto: str) -> Entry:
    """The checkpoint line for ``data`` (snapshot.py), holding the changes up to ``sequence``."""
    return {"kind": SNAPSHOT, "n": sequence, "t": time.time(), "moto": moto, "codec": "pickle5+zlib",
            "sha256": hashlib.sha256(data).hexdigest(), "data": base64.b64encode(data).decode()}


def snapshot_data(path: Path, entry: Entry) -> bytes:
    """The checked bytes of a checkpoint line; :class:`JournalError` if they are damaged."""
    data = base64.b64decode(str(entry.get("data", "")))
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise JournalError(f"the checkpoint in {path} (line 2) is damaged: its sha256 does not match")
    return data


def _line(entry: Entry) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def write_compacted(path: Path, snapshot: Entry) -> None:
    """Replace the journal with a new header and ``snapshot``, atomically and durably.

    Written to ``<name>.tmp``, fsynced, renamed over the journal, then the directory fsynced:
    after a crash the journal is the old file or the new one, never a mix or nothing.
    """
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, _line(_header()) + _line(snapshot))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def append_history(path: Path, lines: list[bytes], after: int) -> int:
    """Append the change lines whose sequence is above ``after`` to the history file, fsynced.

    Returns the last sequence number the history now holds. Lines already there (a compaction
    cut short after this step) are skipped, so the history never holds a change twice.
    """
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a crash cut the last append (or the header) short
            size = _end_of_last_line(fd, size)
            os.ftruncate(fd, size)
        if size == 0:
            _write_all(fd, _line(_header()))
        last = after
        for line in lines:
            sequence = int(json.loads(line).get("n", 0))
            if sequence > last:
                _write_all(fd, line if line.endswith(b"\n") else line + b"\n")
                last = sequence
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_directory(path.parent)
    return last


def last_sequence(path: Path) -> int:
    """The sequence number of the last complete change in a journal or history file (0: none)."""
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        block = 1 << 16
        while True:
            start = max(0, size - block)
            handle.seek(start)
            data = handle.read(size - start)
            lines = data[:data.rfind(b"\n") + 1].splitlines()
            complete = lines[1:] if start > 0 else lines
            for line in reversed(complete):
                entry = json.loads(line)
                if "n" in entry:
                    return int(entry["n"])
            if start == 0:
                return 0
            block *= 4


def _end_of_last_line(fd: int, size: int) -> int:
    """The length of the file up to and including its last newline (0: none)."""
    end, block = size, 1 << 16
    while end > 0:
        start = max(0, end - block)
        cut = os.pread(fd, end - start, start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

    def __init__(self, path: Path, next_sequence: int = 1, appended: int = 0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._sequence = next_sequence
        self._unsynced = False
        self._stop = threading.Event()
        self.appended = appended
        """Entries appended by this process (kept across a compaction's reopening)."""
        if fresh:
            self._write(_line(_header()))
            os.fdatasync(self._fd)
        self._flusher = threading.Thread(target=self._flush_loop, name="smemu-journal-sync", daemon=True)
        self._flusher.start()

    def append(self, entry: Entry, sync: bool) -> int:
        """Write one entry (its sequence number is set here and returned); see the module doc for ``sync``."""
        with self._lock:
            entry["n"] = self._sequence
            self._write(_line(entry))
            self._sequence += 1
            self.appended += 1
            if sync:
                os.fdatasync(self._fd)
                self._unsynced = False
            else:
                self._unsynced = True
            return int(entry["n"])

    def _write(self, data: bytes) -> None:
        _write_all(self._fd, data)

    @property
    def next_sequence(self) -> int:
        """The sequence number the next entry will get."""
        with self._lock:
            return self._sequence

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

