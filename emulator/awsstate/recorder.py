"""Keeping moto's state (IAM, STS, ECR, Logs, SNS, SageMaker records, CloudWatch...) across restarts.

Design: a write-ahead journal of changes, replayed at start (DESIGN.md decision 6).

* Every request moto answers that may change its state, and every write the emulator makes
  straight into a moto backend, runs under one lock, with moto's ids seeded and its clock
  frozen for that change (determinism.py), and is appended to the journal before the client
  gets its answer (journal.py says what is synced when).
* At start the journal is replayed into the fresh moto of the new process, each change under
  the seed and time it first ran with: the same ids and timestamps come back.
* Compaction keeps that replay short: at start, at a clean stop, and whenever
  ``compact_after`` changes have been appended since the last one, the journal is rewritten as
  a checkpoint of moto's backends (snapshot.py) that the following changes append to. The
  changes folded into it move to the history file, which only a different moto release reads:
  it cannot load the checkpoint (a pickle of one release's objects), so it replays the
  history once, then writes its own checkpoint.

Why requests and not a dump of moto's objects: a request is in AWS's own documented wire
format, which every moto release reads, so a newer release rebuilds the same state without
any pickle of one release's internals. S3 is not journaled: objects live in the object store
(objectstore/), and moto's S3 is the explicitly non-durable ``memory`` store.

Reads are not journaled and take no lock. Which requests are reads is decided from the
operation's name (``Describe*``, ``Get*``, ``List*``...); anything else counts as a change,
so a mistake costs a journal line, never a lost change.
"""

from __future__ import annotations

import base64
import importlib
import io
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from emulator.awsstate import determinism, snapshot
from emulator.awsstate.journal import (
    SNAPSHOT,
    Entry,
    Journal,
    JournalError,
    append_history,
    last_sequence,
    read_journal,
    snapshot_data,
    snapshot_entry,
    write_compacted,
)

log = logging.getLogger(__name__)

WsgiApp = Callable[..., Iterable[bytes]]

READ_PREFIXES = ("Describe", "Get", "List", "Head", "Search", "BatchGet", "Filter", "Lookup", "Simulate",
                 "Query", "Scan", "Select", "Test", "Validate", "Preview", "Estimate")
"""Operation names that only read. Everything else is journaled, except :data:`MESSAGES`."""

MESSAGES = frozenset({
    "Publish", "PublishBatch", "SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage",
    "DeleteMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "PurgeQueue",
    "Invoke", "InvokeAsync", "InvokeWithResponseStream",
})
"""Messages and invocations: traffic, not state. Replaying them would deliver or run them again (and
an SQS long poll would hold the journal's lock), so topics, subscriptions and queues are kept and
the messages that were in flight at a restart are not."""

DIRECT_WRITES = {
    "logs.put_log_events": "emulator.cloudwatch:apply_log_events",
    "ecr.record_image": "emulator.ecr:apply_registry_image",
    "cloudwatch.put_metric_values": "emulator.cloudwatch:apply_metric_values",
}
"""Writes the emulator makes straight into moto backends: journal name -> ``module:function``."""

_DROPPED_HEADERS = frozenset({"HTTP_X_AMZ_SECURITY_TOKEN", "HTTP_COOKIE", "HTTP_CONNECTION", "HTTP_KEEP_ALIVE"})
"""Not kept in the journal: credentials' secrets never go to disk, nor per-connection headers."""
_KEPT_ENVIRON = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "SERVER_NAME", "SERVER_PORT",
                 "SERVER_PROTOCOL", "SCRIPT_NAME", "wsgi.url_scheme")


def operation_name(environ: dict[str, Any], body: bytes) -> str | None:
    """The AWS operation a request to moto calls, when its protocol names one."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return target.rsplit(".", 1)[-1]
    path = str(environ.get("PATH_INFO", ""))
    if "/operation/" in path:  # smithy-rpc-v2-cbor: /service/<Service>/operation/<Operation>
        return path.rsplit("/operation/", 1)[-1].strip("/")
    for source in (str(environ.get("QUERY_STRING", "")), body.decode("latin-1")
                   if "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")) else ""):
        action = parse_qs(source).get("Action")
        if action:
            return action[0]
    return None


def is_change(environ: dict[str, Any], body: bytes) -> bool:
    """Whether a request to moto changes state worth keeping (see READ_PREFIXES and MESSAGES)."""
    operation = operation_name(environ, body)
    if operation is None:
        return str(environ.get("REQUEST_METHOD", "GET")).upper() not in ("GET", "HEAD", "OPTIONS")
    return not operation.startswith(READ_PREFIXES) and operation not in MESSAGES


def _resolve(name: str) -> Callable[..., Any]:
    module, _, function = DIRECT_WRITES[name].partition(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


_active: list[AwsState] = []
"""Started states of this process, the newest last: direct writes go to the newest.

moto's backends are process-wide, so one process holds one durable emulator; a test may start a
second one beside it, and the direct writes of both then go to the second's journal."""
_active_lock = threading.Lock()


def direct_write(name: str, args: dict[str, Any]) -> Any:
    """Apply a registered direct write (``DIRECT_WRITES``) and journal it; returns what the write returns."""
    with _active_lock:
        state = _active[-1] if _active else None
    if state is None:  # no emulator in this process (unit tests, tools): just apply it
        return _resolve(name)(**args)
    return state.write(name, args)


COMPACT_AFTER = 500
"""Changes appended after the last checkpoint before the journal is compacted again (about 2 s of
replay on a loaded 2-core machine: the most a restart after kill -9 replays)."""


def history_path(journal: Path) -> Path:
    """Where the changes folded into a journal's checkpoint are kept, in order."""
    return journal.with_name(journal.stem + ".history.jsonl")


class AwsState:
    """The journal of one emulator home, and the lock every change to moto goes through."""

    def __init__(self, path: Path, compact_after: int = COMPACT_AFTER) -> None:
        self.path = path
        self.history = history_path(path)
        self.compact_after = compact_after
        """0: never compact (every start replays the whole journal)."""
        self._lock = threading.RLock()
        self.replayed = 0
        self.replay_seconds = 0.0
        self.restored_from = "empty"
        """``empty``, ``journal`` (changes replayed), ``checkpoint`` (loaded, then the changes after it
        replayed) or ``history`` (the checkpoint was another moto release's: the history replayed)."""
        self.diverged = 0
        """Replayed changes moto did not accept again (logged; each means the rebuilt state differs)."""
        self.compactions = 0
        self.checkpoint_sequence = 0
        self._journal: Journal | None = None
        self._tail = 0
        """Changes in the journal after its checkpoint."""
        self._next_compaction = self.compact_after
        self._history_last = 0
        self._wake = threading.Event()
        self._stopping = False
        self._compactor: threading.Thread | None = None

    # -- start and stop -----------------------------------------------------------------------

    def restore(self, moto_app: WsgiApp) -> None:
        """Replay the journal into this process's moto and open it for appends."""
        determinism.install()
        legacy = self.path.parent / "aws-state.pickle"
        if legacy.exists() and not self.path.exists():
            raise JournalError(
                f"{legacy} was written by an earlier sagemaker-emulator: a pickle of one moto release's memory "
                f"(S3 objects included), which this release does not load. This release keeps S3 objects in its "
                f"object store and the other AWS state in {self.path.name}. Move {legacy.name} aside to start "
                f"with empty AWS state (SageMaker records in resources.db are kept), or keep the earlier release "
                f"for this SMEMU_HOME.")
        started = time.monotonic()
        _header, entries = read_journal(self.path)
        checkpoint = entries.pop(0) if entries and entries[0].get("kind") == SNAPSHOT else None
        if checkpoint is not None:
            self._restore_checkpoint(checkpoint, moto_app)
            self.checkpoint_sequence = int(checkpoint["n"])
        elif entries:
            self.restored_from = "journal"
        for entry in entries:
            self._replay(entry, moto_app)
        self.replayed += len(entries)
        self.replay_seconds = time.monotonic() - started
        if self.restored_from != "empty":
            log.info("AWS state: restored from the %s of %s (%d changes replayed) in %.2f s", self.restored_from,
                     self.path, self.replayed, self.replay_seconds)
        last = int(entries[-1].get("n", 0)) if entries else self.checkpoint_sequence
        if self.restored_from == "empty" and self.history.exists():
            orphan = self.history.with_name(f"{self.history.name}.{int(time.time())}.orphaned")
            log.warning("AWS state: %s has no journal beside it any more (removed to start empty?); moved to %s",
                        self.history, orphan)
            self.history.rename(orphan)
        self._history_last = last_sequence(self.history)
        self._journal = Journal(self.path, last + 1)
        self._tail = len(entries)
        if self.compact_after and (self._tail or self.restored_from == "history"):
            with self._lock:
                self._compact_safely()
        self._compactor = threading.Thread(target=self._compact_loop, name="smemu-journal-compact", daemon=True)
        self._compactor.start()
        with _active_lock:
            _active.append(self)

    def _restore_checkpoint(self, checkpoint: Entry, moto_app: WsgiApp) -> None:
        """Load the checkpoint; when this moto release cannot, replay the history it was made from."""
        release, written_by = snapshot.moto_release(), str(checkpoint.get("moto"))
        if written_by == release:
            try:
                snapshot.install(snapshot.load(snapshot_data(self.path, checkpoint)))
                self.restored_from = "checkpoint"
                return
            except snapshot.SnapshotError as exc:
                why = str(exc)
        else:
            why = f"it was written with moto {written_by} and this installation has moto {release}"
        sequence = int(checkpoint["n"])
        _header, history = read_journal(self.history)
        changes = [entry for entry in history if int(entry.get("n", 0)) <= sequence]
        if not changes or int(changes[-1]["n"]) != sequence:
            held = int(changes[-1]["n"]) if changes else 0
            raise JournalError(
                f"The AWS state checkpoint in {self.path} cannot be loaded ({why}), and the history that rebuilds "
                f"it ({self.history}) holds changes up to {held} of {sequence}. Install moto {written_by} "
                f"(pip install 'moto[server]=={written_by}') to start this SMEMU_HOME, or move {self.path.name} "
                f"and {self.history.name} aside to start with empty AWS state (SageMaker records in "
                f"resources.db are kept).")
        log.warning("AWS state: the checkpoint in %s cannot be loaded (%s); replaying its %d changes from %s once",
                    self.path, why, len(changes), self.history)
        for entry in changes:
            self._replay(entry, moto_app)
        self.replayed += len(changes)
        self.restored_from = "history"

    def close(self) -> None:
        """Compact (a clean stop leaves a journal that loads at once), sync and close the journal."""
        with _active_lock:
            if self in _active:
                _active.remove(self)
        self._stopping = True
        self._wake.set()
        if self._compactor is not None:
            self._compactor.join(30)
            self._compactor = None
        with self._lock:
            if self._journal is not None and self._tail and self.compact_after:
                self._compact_safely()
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def describe(self) -> dict[str, Any]:
        """What ``/_smemu/health`` shows."""
        return {"journal": str(self.path), "restored_from": self.restored_from, "replayed": self.replayed,
                "replay_seconds": round(self.replay_seconds, 3), "diverged": self.diverged,
                "appended": self._journal.appended if self._journal else 0, "compactions": self.compactions,
                "checkpoint": self.checkpoint_sequence, "changes_after_checkpoint": self._tail}

    # -- compaction -----------------------------------------------------------------------------

    def compact(self) -> None:
        """Rewrite the journal as a checkpoint of the current state now (see the module doc)."""
        with self._lock:
            if self._journal is None:
                raise JournalError("the AWS state journal is not open")
            self._compact()

    def _compact(self) -> None:
        """Under the lock: checkpoint, move the folded changes to the history, swap the file in."""
        journal = self._journal
        assert journal is not None
        data = snapshot.capture()
        lines = self.path.read_bytes().splitlines()[1:]
        if lines and lines[0].startswith(b'{"kind":"%s"' % SNAPSHOT.encode()):
            lines = lines[1:]
        self._history_last = append_history(self.history, lines, self._history_last)
        sequence = journal.next_sequence - 1
        journal.close()
        try:
            write_compacted(self.path, snapshot_entry(data, sequence, snapshot.moto_release()))
        finally:
            self._journal = Journal(self.path, sequence + 1, appended=journal.appended)
        self.checkpoint_sequence = sequence
        self._tail = 0
        self._next_compaction = self.compact_after
        self.compactions += 1

    def _compact_safely(self) -> None:
        """Compact; a failure is logged and leaves the journal as it was (longer, never wrong)."""
        try:
            self._compact()
        except Exception:
            log.exception("AWS state: compacting %s failed; it stays as it is, and is tried again after %d "
                          "more changes", self.path, self.compact_after)
            self._next_compaction = self._tail + self.compact_after

    def _compact_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            with self._lock:
                if self._journal is not None and self._tail >= self._next_compaction:
                    self._compact_safely()

    def _appended(self) -> None:
        """Count a change appended after the checkpoint (under the lock); wake the compactor at the threshold."""
        self._tail += 1
        if self.compact_after and self._tail >= self._next_compaction:
            self._wake.set()

    # -- changes --------------------------------------------------------------------------------

    def handle(self, app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Pass a request to moto; journal it first thing after moto accepted it, if it is a change."""
        body = _read_all(environ)
        if not is_change(environ, body):
            environ["wsgi.input"] = io.BytesIO(body)
            return app(environ, start_response)
        with self._lock:
            seed, now = secrets.randbits(63), time.time()
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
                captured["status"] = status
                return start_response(status, headers, exc_info)

            environ["wsgi.input"] = io.BytesIO(body)
            with determinism.scoped(seed, now):
                chunks = app(environ, capture)
                payload = b"".join(chunks)  # moto answers in memory anyway
            if str(captured.get("status", "500")).startswith("2") and self._journal is not None:
                self._journal.append(_http_entry(environ, body, seed, now), sync=True)
                self._appended()
        return [payload]

    def write(self, name: str, args: dict[str, Any]) -> Any:
        """A direct write into a moto backend, applied and journaled under the lock."""
        function = _resolve(name)
        with self._lock:
            seed, now = secrets.randbits(63), time.time()
            with determinism.scoped(seed, now):
                result = function(**args)
            if self._journal is not None:
                self._journal.append({"t": now, "seed": seed, "kind": "call", "name": name, "args": args}, sync=False)
                self._appended()
        return result

    def _replay(self, entry: Entry, moto_app: WsgiApp) -> None:
        with determinism.scoped(int(entry["seed"]), float(entry["t"])):
            if entry.get("kind") == "call":
                try:
                    _resolve(str(entry["name"]))(**entry["args"])
                except Exception as exc:
                    self._diverged(entry, repr(exc))
                return
            status: dict[str, str] = {}
            chunks = moto_app(_replay_environ(entry), lambda s, h, e=None: status.setdefault("s", s))
            b"".join(chunks)
            if not status.get("s", "").startswith("2"):
                self._diverged(entry, status.get("s", "no answer"))

    def _diverged(self, entry: Entry, why: str) -> None:
        self.diverged += 1
        log.warning("AWS state: change %s (%s) did not apply again on replay: %s", entry.get("n"),
                    entry.get("name") or f"{entry.get('method')} {entry.get('path')}", why)


def _read_all(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        return bytes(stream.read(int(length)))
    if str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower() == "chunked":
        return bytes(stream.read())
    return b""


def _http_entry(environ: dict[str, Any], body: bytes, seed: int, now: float) -> Entry:
    headers = {key: str(value) for key, value in environ.items()
               if key.startswith("HTTP_") and key not in _DROPPED_HEADERS}
    kept = {key: str(environ[key]) for key in _KEPT_ENVIRON if key in environ}
    return {"t": now, "seed": seed, "kind": "http", "method": kept.pop("REQUEST_METHOD", "POST"),
            "path": kept.pop("PATH_INFO", "/"), "query": kept.pop("QUERY_STRING", ""), "environ": kept,
            "headers": headers, "body": base64.b64encode(body).decode()}


def _replay_environ(entry: Entry) -> dict[str, Any]:
    body = base64.b64decode(entry.get("body", ""))
    environ: dict[str, Any] = {
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "4570", "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "",
        "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        **entry.get("environ", {}), **entry.get("headers", {}),
        "REQUEST_METHOD": entry["method"], "PATH_INFO": entry["path"], "QUERY_STRING": entry.get("query", ""),
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
    }
    return environ
