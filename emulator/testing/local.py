"""An emulator for one test session: a child process (default) or a thread of this process.

Either way it listens on a free loopback port, keeps its state in a fresh home that is removed
afterwards, and uses the in-memory S3 (no MinIO, nothing left on disk) unless the caller
gives it an ``SMEMU_S3_ENDPOINT``. What it left on the Docker engine (containers, networks,
labelled with its home) is removed when it stops.

A child process keeps the emulator out of the test process: its threads, its logging, and
any ``moto`` mock the user's own tests install (``mock_aws`` patches every botocore client
of a process, which would swallow the calls meant for the emulator) stay separate.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator.config import load_settings
from emulator.contract.session import EmulatorTarget, free_port
from emulator.objectstore.minio import answers_ok

log = logging.getLogger(__name__)

MODES = ("process", "in-process")
HEALTH_PATH = "/_smemu/health"
NOT_INHERITED = ("SMEMU_S3_STORE", "SMEMU_S3_ENDPOINT", "SMEMU_S3_ACCESS_KEY", "SMEMU_S3_SECRET_KEY", "SMEMU_HOST_HOME")
"""Variables of the caller's environment that must not leak into a session's emulator (its store, its home)."""


def session_variables(given: Mapping[str, str], port: int, home: Path) -> dict[str, str]:
    """SMEMU_* settings of an emulator for tests or checks: the caller's environment less its S3 store,
    then ``given``, then our port and home. Without an ``SMEMU_S3_ENDPOINT`` in ``given`` the store is
    the in-memory one (``SMEMU_S3_STORE=memory``): nothing to install, nothing left on disk."""
    inherited = {k: v for k, v in os.environ.items() if k.startswith("SMEMU_") and k not in NOT_INHERITED}
    variables = {**inherited, **given}
    if not variables.get("SMEMU_S3_ENDPOINT"):
        variables.setdefault("SMEMU_S3_STORE", "memory")
    return {**variables, "SMEMU_HOST": "127.0.0.1", "SMEMU_PORT": str(port), "SMEMU_HOME": str(home)}


class LocalEmulator:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, mode: str = "process", environment: Mapping[str, str] | None = None,
                 start_timeout: float = 120.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.environment = dict(environment or {})
        self.start_timeout = start_timeout
        self.home = Path(tempfile.mkdtemp(prefix="smemu-session-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._server: Any = None
        self._log = self.home.parent / f"{self.home.name}.log"

    def start(self) -> EmulatorTarget:
        """Start and return once the edge answers ``/_smemu/health``; RuntimeError with its log if not."""
        variables = session_variables(self.environment, self.port, self.home)
        if self.mode == "in-process":
            from emulator.server import EmulatorServer

            self._server = EmulatorServer(load_settings(variables)).start()
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SMEMU_")}
            env.update(variables)
            with open(self._log, "wb") as output:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "emulator.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                     "--home", str(self.home)],
                    stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    start_new_session=True)
        self._wait_healthy()
        settings = load_settings(variables)
        return EmulatorTarget(self.url, self.home, settings.region, settings.training_stop_grace_seconds,
                              settings.container_stop_grace_seconds, settings.endpoint_startup_timeout_seconds)

    def _wait_healthy(self) -> None:
        process = self._process
        deadline = time.monotonic() + self.start_timeout
        if answers_ok(self.url + HEALTH_PATH,
                      lambda: (process is not None and process.poll() is not None) or time.monotonic() > deadline,
                      interval=0.1):
            return
        output = self._log.read_text(errors="replace")[-4000:] if self._log.exists() else ""
        self.stop()
        raise RuntimeError(f"the emulator did not answer on {self.url} within {self.start_timeout:g} s:\n"
                           f"{output}")

    def stop(self) -> None:
        """Stop it, remove what it left on the engine and its home."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._process is not None:
            if self._process.poll() is None:
                os.killpg(self._process.pid, signal.SIGTERM)
                try:
                    self._process.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(self._process.pid, signal.SIGKILL)
                    self._process.wait(10)
            self._process = None
        try:
            from emulator.testing.containers import docker_client, remove_emulator_leftovers

            remove_emulator_leftovers(docker_client(), self.home)
        except Exception as exc:  # noqa: BLE001 - no engine: nothing can be left on it
            log.debug("no leftovers removed for %s: %s", self.home, exc)
        shutil.rmtree(self.home, ignore_errors=True)
        self._log.unlink(missing_ok=True)

    def log_tail(self, size: int = 4000) -> str:
        """The end of the child process's output (empty in-process)."""
        return self._log.read_text(errors="replace")[-size:] if self._log.exists() else ""

    def __enter__(self) -> EmulatorTarget:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
