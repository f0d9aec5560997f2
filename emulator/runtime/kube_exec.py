"""Commands in a pod's containers through the exec API, with binary stdin and stdout.

This is how folders travel between the emulator and its pods (``kube_objects``): a tar goes
in through stdin (``head -c SIZE | tar -x``: the exec protocol cannot close stdin, so the
command reads exactly the archive's size) and comes out through stdout (``tar -c``). It works
against any cluster the kubeconfig reaches, whatever its nodes share with this machine.

The client's ``stream()`` swaps the ``request`` method of the ApiClient it is given while the
websocket opens, so every exec gets an ApiClient of its own: sharing one with the backend's
other calls, in other threads, would send them over the websocket.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

log = logging.getLogger(__name__)

STDOUT, STDERR, ERROR = 1, 2, 3
_CHUNK = 256 * 1024


@dataclass
class ExecResult:
    """How a command ended: its exit code (-1: it did not report one) and what it said on stderr."""

    exit_code: int
    stderr: str


class Exec:
    """One command running in a container; iterate :meth:`stdout` or call :meth:`finish`."""

    def __init__(self, configuration: Any, namespace: str, pod: str, container: str, command: list[str],
                 stdin: bool = False) -> None:
        from kubernetes import client as k8s
        from kubernetes.stream import stream

        self._api_client = k8s.ApiClient(configuration)
        try:
            self._ws = stream(k8s.CoreV1Api(self._api_client).connect_get_namespaced_pod_exec, pod, namespace,
                              container=container, command=command, stdin=stdin, stdout=True, stderr=True,
                              tty=False, _preload_content=False, binary=True)
        except BaseException:
            self._api_client.close()
            raise
        self._stderr = bytearray()

    def write(self, source: IO[bytes], size: int) -> None:
        """Send ``size`` bytes of ``source`` to the command's stdin."""
        left = size
        while left > 0:
            chunk = source.read(min(_CHUNK, left))
            if not chunk:
                raise ValueError(f"the archive ended {left} bytes early")
            self._ws.write_stdin(chunk)
            left -= len(chunk)
            self._take(STDERR)

    def stdout(self) -> Iterator[bytes]:
        """The command's stdout as it arrives, until the command ends."""
        while True:
            data = self._take(STDOUT)
            if data:
                yield data
                continue
            self._take(STDERR)
            if not self._ws.is_open():
                return
            self._ws.update(timeout=1)

    def finish(self) -> ExecResult:
        """Wait for the command to end (draining its output) and close the connection."""
        try:
            for _data in self.stdout():
                pass
            status = self._take(ERROR)
            return ExecResult(_exit_code(status), self._stderr.decode("utf-8", "replace").strip())
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection (ends the command's stdin)."""
        try:
            self._ws.close()
        finally:
            self._api_client.close()

    def _take(self, channel: int) -> bytes:
        data = self._ws.read_channel(channel)
        if isinstance(data, str):
            data = data.encode()
        if channel == STDERR and data:
            self._stderr += data
        return bytes(data)


def _exit_code(status: bytes) -> int:
    """The exit code from the exec protocol's status channel (a metav1.Status)."""
    if not status:
        return -1
    try:
        document = json.loads(status)
    except ValueError:
        return -1
    if document.get("status") == "Success":
        return 0
    for cause in (document.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                break
    log.debug("exec failed: %s", document.get("message"))
    return -1


def run(configuration: Any, namespace: str, pod: str, container: str, command: list[str],
        stdin: IO[bytes] | None = None, size: int = 0) -> ExecResult:
    """Run ``command`` to its end, feeding ``size`` bytes of ``stdin`` when given."""
    session = Exec(configuration, namespace, pod, container, command, stdin=stdin is not None)
    try:
        if stdin is not None:
            session.write(stdin, size)
    except BaseException:
        session.close()
        raise
    return session.finish()
