"""Every AWS service the emulator does not execute, answered by moto on the edge port.

moto's own WSGI dispatcher already routes a request to the right service by its SigV4
credential scope, so we mount it as it is. Its state is in memory; :class:`AwsStateSnapshot`
pickles the backends we rely on into ``SMEMU_HOME`` so a restart keeps roles, repositories,
log groups and every object of the embedded S3.
"""

from __future__ import annotations

import copyreg
import logging
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

WsgiApp = Callable[..., Iterable[bytes]]

#: Services whose state survives a restart. Others (rarely used side calls) start empty.
PERSISTED_SERVICES = ("s3", "iam", "sts", "ecr", "logs", "sns", "sagemaker", "cloudwatch")

_RLOCK_TYPE = type(threading.RLock())
_LOCK_TYPE = type(threading.Lock())


def _register_lock_pickling() -> None:
    """Locks inside moto's backends (ECR has one) are recreated empty on load."""
    copyreg.pickle(_RLOCK_TYPE, lambda _lock: (threading.RLock, ()))
    copyreg.pickle(_LOCK_TYPE, lambda _lock: (threading.Lock, ()))


def create_moto_app() -> WsgiApp:
    """moto's server application: one WSGI callable for every AWS service it knows."""
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    from moto.moto_server import werkzeug_app

    # moto's own CORS answers every preflight and reflects any Origin; the edge's policy
    # (emulator/gateway/http_policy.py) decides instead, before moto sees a request.
    werkzeug_app.DISABLE_GLOBAL_CORS = True
    return werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)  # type: ignore[return-value]


def _backend_dict(service: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)  # type: ignore[call-overload]


class AwsStateSnapshot:
    """Saves and restores moto's backends for :data:`PERSISTED_SERVICES`.

    Writes go to a temporary file renamed into place, so a crash mid-save keeps the last
    good snapshot. Saving is triggered by :meth:`mark_dirty` and done by a background thread
    at most once per ``interval`` seconds, so a burst of uploads costs one save.
    """

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._save_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last_saved: float | None = None
        """Epoch seconds of the last completed save (None: none yet in this process)."""
        _register_lock_pickling()

    def restore(self) -> bool:
        """Load a saved snapshot into moto's backends; False when there is none."""
        if not self.path.exists():
            return False
        try:
            with self.path.open("rb") as handle:
                state: dict[str, dict[str, dict[str, Any]]] = pickle.load(handle)
        except Exception:  # a snapshot from an incompatible moto must not stop the server
            log.exception("could not read AWS state snapshot %s; starting empty", self.path)
            return False
        for service, accounts in state.items():
            backends = _backend_dict(service)
            for account_id, regions in accounts.items():
                account_backend = backends[account_id]
                for region, backend in regions.items():
                    dict.__setitem__(account_backend, region, backend)
        return True

    def save(self) -> None:
        """Write the current state of the persisted services now."""
        with self._save_lock:
            self._dirty.clear()
            state = {
                service: {
                    account_id: dict(account_backend.items())
                    for account_id, account_backend in _backend_dict(service).items()
                }
                for service in PERSISTED_SERVICES
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("wb") as handle:
                pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(self.path)
            self.last_saved = time.time()

    @property
    def pending(self) -> bool:
        """Whether a change has not been saved yet."""
        return self._dirty.is_set()

    def mark_dirty(self) -> None:
        """Note that a request may have changed moto's state."""
        self._dirty.set()

    def start(self) -> None:
        """Start the background saver."""
        self._thread = threading.Thread(target=self._run, name="aws-state-saver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the saver and write a last snapshot if anything changed."""
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._dirty.is_set():
            self.save()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._stop.wait(self.interval)
            try:
                self.save()
            except Exception:
                log.exception("saving the AWS state snapshot failed")


class MotoBridge:
    """The moto application plus the bookkeeping that keeps its state on disk."""

    def __init__(self, snapshot: AwsStateSnapshot | None) -> None:
        self.snapshot = snapshot
        self.app = create_moto_app()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "json" in str(environ.get("CONTENT_TYPE", "")):
            refused = _deep_json_refusal(environ)
            if refused is not None:
                return refused(start_response)
        changes = self.snapshot is not None and environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
        if changes:
            self.snapshot.mark_dirty()  # type: ignore[union-attr]
        try:
            return self.app(environ, start_response)
        finally:
            if changes:
                # Again once the change is made: a save that began mid-request missed it.
                self.snapshot.mark_dirty()  # type: ignore[union-attr]


def _deep_json_refusal(environ: dict[str, Any]) -> Callable[[Callable[..., Any]], Iterable[bytes]] | None:
    """A 400 for a JSON body nested deeper than any AWS shape (moto's parser would answer 500).

    The body is read here (the edge's policy has bounded its size) and put back for moto.
    """
    import io

    from emulator.gateway import aws_errors
    from emulator.gateway.policy_middleware import MAX_JSON_DEPTH, json_too_deep

    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    body = stream.read(int(length)) if length else stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    if not json_too_deep(body):
        return None
    headers = aws_errors.lower_headers(environ)
    protocol = aws_errors.request_protocol(str(environ.get("PATH_INFO", "")), headers)
    status, response_headers, payload = aws_errors.render(
        protocol, 400, "SerializationException", f"The request body nests JSON deeper than {MAX_JSON_DEPTH} levels")

    def answer(start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(f"{status} Bad Request", response_headers)
        return [payload]

    return answer
