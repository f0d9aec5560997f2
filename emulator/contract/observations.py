"""What a check run saw, shared by several kinds: job runs, stops, file reads (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field

SIGTERM = 15
SIGKILL = 9


@dataclass(frozen=True)
class JobRun:
    """One job (training, processing, transform) the check ran through the emulator, as it ended."""

    name: str
    status: str
    """The terminal status: Completed, Failed, Stopped (or the last one seen when the wait ran out)."""
    failure_reason: str | None = None
    seconds: float = 0.0
    log_tail: tuple[str, ...] = ()
    """The last lines of the job's CloudWatch log stream."""
    exit_message: str | None = None
    """A processing job's ExitMessage (/opt/ml/output/message)."""

    @property
    def completed(self) -> bool:
        """Whether the job ended Completed."""
        return self.status == "Completed"

    def why(self) -> str:
        """``<status>: <FailureReason> (log: ...)`` for evidence."""
        text = self.status
        if self.failure_reason:
            text += f": {self.failure_reason}"
        if self.log_tail:
            text += " | last log lines: " + " / ".join(self.log_tail[-3:])
        return text


@dataclass(frozen=True)
class StopObservation:
    """How a container took SIGTERM, from the Docker engine's events for it."""

    signals: tuple[int, ...] = ()
    """Signals the engine sent it, in order (15 = SIGTERM, 9 = SIGKILL)."""
    exit_code: int | None = None
    seconds_to_exit: float | None = None
    """From the SIGTERM to the container's exit."""
    grace_seconds: float | None = None
    """The SIGTERM-to-SIGKILL grace the emulator applied."""
    finished_before_stop: bool = False
    """The container had already exited by itself when the stop came."""
    not_observed: str | None = None
    """Why nothing could be observed (no engine events), when that is the case."""


@dataclass(frozen=True)
class FileReads:
    """Which files under a watched folder were read by someone other than their writer."""

    read: tuple[str, ...] = ()
    """Relative paths of files opened for reading (or read) while the container ran."""
    present: tuple[str, ...] = ()
    """Relative paths of every file that was there."""
    not_observed: str | None = None
    """Why reads could not be observed (no inotify here, no access to the emulator's home)."""


@dataclass(frozen=True)
class ListeningPorts:
    """TCP ports a container listens on and what the platform allowed it."""

    ports: tuple[int, ...] = ()
    serving_port: int = 8080
    safe_range: tuple[int, int] | None = None
    not_observed: str | None = None


@dataclass
class InvokeResult:
    """One InvokeEndpoint through the emulator."""

    ok: bool
    status: int
    """The runtime's HTTP status (200, or 424 for ModelError, 400 for ValidationError...)."""
    detail: str = ""
    """Error code and message, or the response's content type and size."""
    seconds: float = 0.0
    original_status: int | None = None
    """ModelError's OriginalStatusCode: what the container answered."""


@dataclass
class LoadObservation:
    """Many concurrent invocations and the health checks made meanwhile."""

    clients: int = 0
    results: list[InvokeResult] = field(default_factory=list)
    pings: list[int | str] = field(default_factory=list)
    """Status of each GET /ping made during the load (a word when there was no answer in 2 s)."""
