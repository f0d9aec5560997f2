"""The default S3 store: a MinIO server the emulator runs as its own child process.

Why MinIO and not a store of our own: it is a real S3 implementation (multipart, ranged GETs,
ListObjectsV2, copy, checksums, versioning) that writes each object to disk as it arrives and
keeps nothing of it in memory, so memory and restart time do not grow with the data
(docs/architecture.md, "S3 store", has the measurements).

How it runs:

* **The binary** is found once: ``SMEMU_MINIO_BINARY``, then scripts/build-minio's cache
  (``SMEMU_CACHE/minio/minio``), then ``minio`` on PATH. Without one the emulator refuses to
  start and says how to get one, or how to choose another store; it never silently falls back
  to a store that forgets.
* **Its data** is ``SMEMU_HOME/s3`` (one drive), its certificates folder
  ``SMEMU_HOME/state/minio-certs``, its log ``SMEMU_HOME/minio.log``.
* **Credentials** are generated on first start (``SMEMU_HOME/state/s3-credentials.json``, mode
  0600) and kept, because MinIO encrypts its own configuration with them.
* **Loopback only**: ``--address 127.0.0.1:<free port>``; the console is off.
* **It dies with the emulator.** It is started through ``setpriv --pdeathsig KILL`` (util-linux)
  from a supervisor thread that lives as long as the store, so the kernel kills it when the
  emulator's process dies, kill -9 included. (The death signal follows the *thread* that forked,
  hence the dedicated thread.) A MinIO left over anyway (its pid is in ``state/minio.pid``) is
  killed at the next start, once the home's lock shows no emulator owns it.
* **It is restarted** on the same port if it exits while the emulator runs; meanwhile the edge
  answers S3 requests with 503 (which every SDK retries).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emulator.config import Settings
from emulator.polling import poll_until

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0
RESTART_BACKOFF_SECONDS = (0.5, 2.0, 5.0)
"""Waits before restarting a MinIO that exited; the last one repeats."""


class StoreUnavailable(RuntimeError):
    """The configured S3 store cannot run here; the message says what to do."""


@dataclass(frozen=True)
class StoreEndpoint:
    """Where an S3 store answers and the credentials that sign for it."""

    url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


def find_minio_binary(settings: Settings) -> Path | None:
    """The MinIO server to run: SMEMU_MINIO_BINARY, the build cache, then PATH."""
    candidates = [settings.minio_binary, settings.cache_dir / "minio" / "minio"]
    on_path = shutil.which("minio")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_binary_message(settings: Settings) -> str:
    """What a user without a MinIO binary can do (the emulator refuses to start without one)."""
    return (
        "the default S3 store is a MinIO server that the emulator runs itself, and no MinIO binary was found "
        f"(looked at SMEMU_MINIO_BINARY, {settings.cache_dir / 'minio' / 'minio'} and `minio` on PATH). Either:\n"
        "  * build it once per machine: scripts/build-minio --binary-only   (needs Go and the Go module proxy), or\n"
        "  * point SMEMU_MINIO_BINARY at a MinIO server binary you have, or\n"
        "  * use another S3: SMEMU_S3_ENDPOINT=http://host:port (with SMEMU_S3_ACCESS_KEY / SMEMU_S3_SECRET_KEY), or\n"
        "  * SMEMU_S3_STORE=memory: moto's in-memory S3, NOT durable (every object is lost when the emulator stops)."
    )


def load_or_create_credentials(path: Path) -> tuple[str, str]:
    """The managed MinIO's root credentials, generated on first use and kept (mode 0600)."""
    if path.exists():
        saved = json.loads(path.read_text())
        return str(saved["access_key"]), str(saved["secret_key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    access, secret = "smemu" + secrets.token_hex(6), secrets.token_urlsafe(30)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"access_key": access, "secret_key": secret}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return access, secret


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ok(url: str, gave_up: Callable[[], bool], interval: float = 0.05) -> bool:
    """Poll ``url`` until it answers 200 (True) or ``gave_up()`` says to stop (False)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def ok() -> bool:
        try:
            with opener.open(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return bool(poll_until(ok, None, interval, give_up=gave_up))


def _pid_runs_minio_on(pid: int, data_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(b"minio") for part in cmdline[:3]) and str(data_dir).encode() in cmdline


class ManagedMinio:
    """MinIO as a supervised child process serving ``SMEMU_HOME/s3`` on a loopback port."""

    def __init__(self, settings: Settings, binary: Path) -> None:
        self.binary = binary
        self.data_dir = settings.s3_data_dir
        self.certs_dir = settings.state_dir / "minio-certs"
        self.pid_file = settings.state_dir / "minio.pid"
        self.log_path = settings.home / "minio.log"
        self.sync = settings.s3_sync
        access, secret = load_or_create_credentials(settings.state_dir / "s3-credentials.json")
        self.port = free_loopback_port()
        self.endpoint = StoreEndpoint(f"http://127.0.0.1:{self.port}", access, secret)
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._spawn_error: BaseException | None = None
        self._supervisor: threading.Thread | None = None
        self.restarts = 0
        """How often MinIO had to be restarted after exiting on its own."""
        self.ready_seconds: float | None = None
        """Seconds from starting MinIO to its first ready answer (restart time's share of the store)."""
        self._spawned_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_SECONDS, wait: bool = True) -> StoreEndpoint:
        """Start MinIO; with ``wait``, return once it reports ready (else call :meth:`wait_ready`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.certs_dir.mkdir(parents=True, exist_ok=True)
        self._kill_leftover()
        self._spawned_at = time.monotonic()
        self._supervisor = threading.Thread(target=self._supervise, name="smemu-minio", daemon=True)
        self._supervisor.start()
        self._started.wait(timeout)
        if self._spawn_error is not None:
            raise StoreUnavailable(f"could not start MinIO ({self.binary}): {self._spawn_error}")
        if wait:
            self.wait_ready(timeout)
        return self.endpoint

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Poll MinIO's readiness probe until it answers 200, the process exits, or time runs out."""
        deadline = time.monotonic() + timeout

        def gave_up() -> bool:
            process = self._process
            exited = process is not None and process.poll() is not None and self.restarts == 0
            return exited or time.monotonic() > deadline

        if not answers_ok(f"{self.endpoint.url}/minio/health/ready", gave_up):
            self.stop()
            raise StoreUnavailable(f"MinIO ({self.binary}) did not become ready on {self.endpoint.url} "
                                   f"within {timeout:.0f} s; its log ({self.log_path}) ends:\n{self.log_tail()}")
        if self.ready_seconds is None:
            self.ready_seconds = time.monotonic() - self._spawned_at

    def stop(self, grace: float = 10.0) -> None:
        """Stop MinIO (SIGTERM, then SIGKILL after ``grace`` seconds) and its supervisor."""
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(5)
        self.pid_file.unlink(missing_ok=True)

    @property
    def pid(self) -> int | None:
        """MinIO's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def log_tail(self, characters: int = 3000) -> str:
        """The end of MinIO's log (for error messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return "(no log)"

    # -- the supervisor thread ---------------------------------------------------------------

    def _supervise(self) -> None:
        """Spawn MinIO, wait for it, and restart it until the store stops (runs in its own thread)."""
        failures = 0
        while not self._stopping.is_set():
            try:
                self._process = self._spawn()
            except OSError as exc:
                self._spawn_error = exc
                self._started.set()
                return
            self.pid_file.write_text(str(self._process.pid))
            self._started.set()
            started = time.monotonic()
            code = self._process.wait()
            if self._stopping.is_set():
                return
            failures = 0 if time.monotonic() - started > 60 else failures + 1
            wait = RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS)) - 1] if failures else 0.2
            log.error("MinIO exited with %s; restarting it in %.1f s. Its log ends:\n%s", code, wait, self.log_tail())
            if self._stopping.wait(wait):
                return
            self.restarts += 1

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [str(self.binary), "server", str(self.data_dir), "--quiet",
                   "--address", f"127.0.0.1:{self.port}",
                   "--console-address", f"127.0.0.1:{free_loopback_port()}",
                   "--certs-dir", str(self.certs_dir)]
        setpriv = shutil.which("setpriv")
        if setpriv:
            command = [setpriv, "--pdeathsig", "KILL", "--", *command]
        else:  # pragma: no cover - util-linux is essential on Debian and Ubuntu
            log.warning("setpriv (util-linux) not found: MinIO will outlive a killed emulator until its next start")
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.certs_dir.parent),
            "MINIO_ROOT_USER": self.endpoint.access_key,
            "MINIO_ROOT_PASSWORD": self.endpoint.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_CALLHOME_ENABLE": "off",
            "MINIO_SCANNER_SPEED": "slowest",
            "MINIO_CI_CD": "1",  # one drive on the root filesystem is fine here
            # Through the page cache: still fdatasync'd before each answer, but a 1 KiB PUT took
            # 11.4 ms with O_DIRECT and 5.0 ms without on the reference machine (benchmarks/s3_store.py).
            "MINIO_API_ODIRECT": "off",
            "MINIO_FS_OSYNC": "on" if self.sync else "off",
        }
        with open(self.log_path, "ab") as log_file:
            return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=environment, start_new_session=True, close_fds=True)

    def _kill_leftover(self) -> None:
        """Kill a MinIO a previous emulator on this home left running (the home lock says it is gone)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        if _pid_runs_minio_on(pid, self.data_dir):
            log.warning("killing MinIO (pid %d) left over by a previous emulator on this home", pid)
            os.kill(pid, signal.SIGKILL)
            poll_until(lambda: not _pid_runs_minio_on(pid, self.data_dir), 10)
        self.pid_file.unlink(missing_ok=True)
