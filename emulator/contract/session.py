"""The emulator a check runs containers through: started here, or one the user points at.

``smemu check`` starts an emulator in this process on a free loopback port with a fresh home
(its embedded S3, nothing shared with the user's own emulator), so the container meets exactly
the platform the emulator is. With ``--endpoint-url`` it drives a running emulator instead;
the rules that watch staged files then need that emulator's home on this machine.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.config import Settings, load_settings
from emulator.polling import poll_until

log = logging.getLogger(__name__)

SAGEMAKER_TRUST_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)


@dataclass
class EmulatorTarget:
    """An emulator to run checks through, and what is known of it."""

    url: str
    home: Path | None = None
    """Its SMEMU_HOME when it is on this machine (needed to watch staged files)."""
    region: str = "us-east-1"
    training_stop_grace: float | None = None
    """Its SMEMU_TRAINING_STOP_GRACE_SECONDS, when known (for the evidence)."""
    endpoint_stop_grace: float | None = None
    """Its SMEMU_CONTAINER_STOP_GRACE_SECONDS, when known."""
    endpoint_startup_timeout: float | None = None
    """Its SMEMU_ENDPOINT_STARTUP_TIMEOUT_SECONDS (the default /ping deadline), when known."""
    _role: str | None = field(default=None, repr=False)
    _bucket: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _setup_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_settings(cls, settings: Settings) -> EmulatorTarget:
        """The target for an emulator running with ``settings`` on this machine."""
        return cls(url=f"http://127.0.0.1:{settings.port}", home=settings.home, region=settings.region,
                   training_stop_grace=settings.training_stop_grace_seconds,
                   endpoint_stop_grace=settings.container_stop_grace_seconds,
                   endpoint_startup_timeout=settings.endpoint_startup_timeout_seconds)

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client for ``service`` on the emulator (dummy credentials; no retries of failures).

        One client per service and configuration, shared: boto3's clients are safe to call from
        several threads once made, and making one costs more than most calls.
        """
        key = (service, repr(sorted(config.items())))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._new_client(service, config)
            return self._clients[key]

    def _new_client(self, service: str, config: dict[str, Any]) -> Any:
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "read_timeout": 120,
                                   "max_pool_connections": 32}
        if service == "s3":
            options["s3"] = {"addressing_style": "path"}
        options.update(config)
        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name=self.region,
            aws_access_key_id="test", aws_secret_access_key="test", config=Config(**options))

    def role_arn(self) -> str:
        """An IAM role SageMaker may assume, created once per target."""
        with self._setup_lock:
            if self._role is None:
                iam = self.client("iam")
                name = f"smemu-check-{uuid.uuid4().hex[:10]}"
                self._role = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
                                 ["Role"]["Arn"])
            return self._role

    def bucket(self) -> str:
        """A bucket for the checks' inputs and outputs, created once per target."""
        with self._setup_lock:
            if self._bucket is None:
                name = f"smemu-check-{uuid.uuid4().hex[:10]}"
                self.client("s3").create_bucket(Bucket=name)
                self._bucket = name
            return self._bucket

    def work_dir(self) -> Path | None:
        """The emulator's scratch folder (``<home>/work``), when its home is known."""
        return Settings(home=self.home).work_dir if self.home is not None else None


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_settings(home: Path, *, startup_timeout: float | None = None, training_stop_grace: float | None = None,
                   endpoint_stop_grace: float | None = None) -> Settings:
    """Settings of an emulator started for checks: the user's SMEMU_* settings, but a free loopback
    port, the given home and the in-memory S3 (a check shares nothing with another emulator)."""
    from emulator.testing.local import session_variables

    settings = load_settings(session_variables({}, free_port(), home))
    return settings.with_overrides(endpoint_startup_timeout_seconds=startup_timeout,
                                   training_stop_grace_seconds=training_stop_grace,
                                   container_stop_grace_seconds=endpoint_stop_grace)


@contextmanager
def local_emulator(**overrides: float | None) -> Iterator[EmulatorTarget]:
    """An emulator in this process for the duration of the block; its home is removed afterwards.

    ``overrides``: ``startup_timeout``, ``training_stop_grace``, ``endpoint_stop_grace`` (seconds).
    """
    from emulator.server import EmulatorServer

    home = Path(tempfile.mkdtemp(prefix="smemu-check-"))
    server = None
    try:
        settings = check_settings(home, **overrides)
        server = EmulatorServer(settings).start()
        yield EmulatorTarget.for_settings(settings)
    finally:
        if server is not None:
            server.stop()
            _remove_leftovers(settings)
        shutil.rmtree(home, ignore_errors=True)


def _remove_leftovers(settings: Settings) -> None:
    """Containers and networks a check's emulator left (none unless a check was interrupted)."""
    import hashlib

    try:
        from emulator.runtime.factory import local_engine

        backend = local_engine()
        text = str(settings.home.resolve()).encode()
        for home_id in {hashlib.sha1(text).hexdigest()[:12], hashlib.sha256(text).hexdigest()[:12]}:
            backend.remove_labelled({"smemu.home": home_id})
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the check's result
        log.warning("could not remove what the check's emulator left: %s", exc)


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll ``probe`` until it returns something truthy; TimeoutError naming ``what`` after ``timeout``."""
    value = poll_until(probe, timeout, 0.05, backoff=1.5, max_interval=interval)
    if not value:
        raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
    return value


def unique_name(prefix: str) -> str:
    """A SageMaker resource name no other check uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def log_tail(target: EmulatorTarget, group: str, prefix: str, lines: int = 12) -> tuple[str, ...]:
    """The last lines of the CloudWatch log streams under ``group``/``prefix`` (empty when none)."""
    logs = target.client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)["logStreams"]
    except Exception as exc:  # noqa: BLE001 - a missing group means no output yet
        log.debug("no logs under %s %s: %s", group, prefix, exc)
        return ()
    collected: list[str] = []
    for stream in streams:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                     startFromHead=False, limit=lines)["events"]
        collected += [e["message"].rstrip() for e in events]
    return tuple(line for line in collected[-lines:] if line)


def log_lines(target: EmulatorTarget, group: str, prefix: str, limit: int = 20000) -> list[str]:
    """Every line (up to ``limit``) of the CloudWatch log streams under ``group``/``prefix``, oldest first."""
    logs = target.client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)["logStreams"]
    except Exception as exc:  # noqa: BLE001 - a missing group means no output yet
        log.debug("no logs under %s %s: %s", group, prefix, exc)
        return []
    lines: list[str] = []
    for stream in streams:
        token: str | None = None
        while len(lines) < limit:
            kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream["logStreamName"],
                                      "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            page = logs.get_log_events(**kwargs)
            lines += [e["message"].rstrip() for e in page["events"]]
            if not page["events"] or page.get("nextForwardToken") == token:
                break
            token = page.get("nextForwardToken")
    return lines[:limit]
