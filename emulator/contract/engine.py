"""What the checks read from the Docker engine the emulator drives: labels, signals, sockets.

The checks run every container through the emulator; the engine is only *watched*: image
labels (SageMaker reads them too), the signals the emulator's stop sends and how the
container exited (the engine's own events, so "exited on SIGTERM" versus "needed SIGKILL" is
a fact, not a timing guess), and the TCP ports a container listens on (its network
namespace's socket table, read from the host's /proc, else with ``cat`` inside it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.contract.observations import ListeningPorts, StopObservation

log = logging.getLogger(__name__)

_LISTEN = "0A"


def docker_client() -> Any:
    """A docker-py client for the engine the emulator uses (DOCKER_HOST or the local socket)."""
    from emulator.runtime.docker_client import docker_client as make_client

    return make_client()


def image_labels(client: Any, image: str) -> dict[str, str]:
    """The image's labels ({} when it has none)."""
    attrs = client.images.get(image).attrs
    return dict((attrs.get("Config") or {}).get("Labels") or {})


def containers_labelled(client: Any, labels: dict[str, str]) -> list[Any]:
    """Running containers carrying every one of ``labels``."""
    selector = [f"{key}={value}" for key, value in labels.items()]
    return list(client.containers.list(filters={"label": selector}))


class ContainerEvents:
    """Follows the engine's events for containers with given labels: starts, signals sent, exits.

    Start it before the container is created; :meth:`observe_stop` waits for its exit and
    says which signals it took to get there.
    """

    def __init__(self, client: Any, labels: dict[str, str]) -> None:
        self._events: list[tuple[float, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        selector = [f"{key}={value}" for key, value in labels.items()]
        self._stream = client.events(decode=True, filters={"type": "container", "label": selector})
        self._thread = threading.Thread(target=self._follow, name="smemu-check-signals", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._stream:
                actor = event.get("Actor") or {}
                when = int(event.get("timeNano") or 0) / 1e9 or time.time()
                with self._changed:
                    self._events.append((when, str(event.get("Action") or event.get("status")),
                                         dict(actor.get("Attributes") or {})))
                    self._changed.notify_all()
        except Exception as exc:  # noqa: BLE001 - the stream ends with an error when closed
            log.debug("engine event stream ended: %s", exc)

    def wait_for(self, predicate: Callable[[list[tuple[float, str, dict[str, str]]]], bool], timeout: float) -> bool:
        """Wait until ``predicate(events)`` holds; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._events):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
            return True

    def observe_stop(self, timeout: float, grace: float | None) -> StopObservation:
        """How the container took its stop: the signals before its exit, the exit code, the delay."""
        self.wait_for(lambda events: any(action == "die" for _t, action, _a in events), timeout)
        with self._lock:
            events = list(self._events)
        signals: list[int] = []
        sigterm_at: float | None = None
        for when, action, attributes in events:
            if action == "kill" and attributes.get("signal", "").isdigit():
                signals.append(int(attributes["signal"]))
                if int(attributes["signal"]) == 15 and sigterm_at is None:
                    sigterm_at = when
            if action == "die":
                code = attributes.get("exitCode")
                return StopObservation(
                    signals=tuple(signals), exit_code=int(code) if code and code.lstrip("-").isdigit() else None,
                    seconds_to_exit=(when - sigterm_at) if sigterm_at is not None else None,
                    grace_seconds=grace, finished_before_stop=not signals)
        return StopObservation(signals=tuple(signals), grace_seconds=grace,
                               not_observed=f"the container did not exit within {timeout:g} s of the stop")

    def close(self) -> None:
        """Stop following the engine's events."""
        try:
            self._stream.close()
        except Exception as exc:  # noqa: BLE001
            log.debug("closing the event stream: %s", exc)
        self._thread.join(2)

    def __enter__(self) -> ContainerEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DOCKER_DNS = "0B00007F"
"""127.0.0.11 as /proc/net/tcp writes it: Docker's resolver on user-defined networks, not the container's."""


def parse_socket_table(text: str) -> set[int]:
    """Listening TCP ports in a /proc/net/tcp or tcp6 table (Docker's embedded DNS left out)."""
    ports: set[int] = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == _LISTEN and ":" in fields[1]:
            address, _, port = fields[1].rpartition(":")
            if address != _DOCKER_DNS:
                ports.add(int(port, 16))
    return ports


def parse_port_range(value: str | None) -> tuple[int, int] | None:
    """``"21000-21999"`` as (21000, 21999); None when unset or malformed."""
    if not value or "-" not in value:
        return None
    low, _, high = value.partition("-")
    if not (low.strip().isdigit() and high.strip().isdigit()):
        return None
    return int(low), int(high)


def listening_ports(client: Any, container: Any, serving_port: int) -> ListeningPorts:
    """The TCP ports ``container`` listens on, with the SAGEMAKER_SAFE_PORT_RANGE it was given."""
    container.reload()
    env = dict(item.split("=", 1) for item in (container.attrs.get("Config") or {}).get("Env") or [] if "=" in item)
    safe = parse_port_range(env.get("SAGEMAKER_SAFE_PORT_RANGE"))
    table = _socket_tables_from_host(container) or _socket_tables_from_inside(container)
    if table is None:
        return ListeningPorts(serving_port=serving_port, safe_range=safe,
                              not_observed="the container's socket table could not be read (neither the host's "
                                           "/proc nor `cat` inside the image)")
    return ListeningPorts(tuple(sorted(parse_socket_table(table))), serving_port, safe)


def _socket_tables_from_host(container: Any) -> str | None:
    pid = int((container.attrs.get("State") or {}).get("Pid") or 0)
    if pid <= 0:
        return None
    try:
        return "".join(Path(f"/proc/{pid}/net/{name}").read_text() for name in ("tcp", "tcp6"))
    except OSError:
        return None  # an engine on another machine (or a VM), or no permission


def _socket_tables_from_inside(container: Any) -> str | None:
    try:
        _code, output = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"], demux=False)
    except Exception as exc:  # noqa: BLE001 - an image without cat, a container that stopped
        log.debug("reading the socket table inside %s: %s", container.short_id, exc)
        return None
    if not output or b"local_address" not in output:
        return None  # no cat in the image: `code` is 126/127 and the output is the engine's complaint
    return str(output.decode(errors="replace"))
