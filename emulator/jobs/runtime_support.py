"""What a job asks of the container runtime that not every runtime can give (SMEMU_RUNTIME).

Pipe input mode streams each channel into a FIFO that the emulator writes on its own machine
and the container reads through a bind mount. On Docker that is the same FIFO; a Kubernetes
pod has copies of its folders, never this machine's files, so a FIFO cannot reach it. Such a
job is refused when it is created, naming the runtime, rather than started and left to hang
or fail later.
"""

from __future__ import annotations

from collections.abc import Iterable

from emulator.errors import ValidationException

PIPE_RUNTIMES = frozenset({"docker"})
"""Runtimes whose containers read the emulator's FIFOs (Pipe input mode)."""


def refuse_pipe_inputs(runtime: str, pipe_inputs: Iterable[str], what: str) -> None:
    """ValidationException when ``pipe_inputs`` (names of Pipe-mode inputs) is not empty and
    ``runtime`` cannot feed them; ``what`` names them (``Channels``, ``ProcessingInputs``)."""
    names = sorted(pipe_inputs)
    if names and runtime not in PIPE_RUNTIMES:
        raise ValidationException(
            f"{what} {', '.join(names)} use Pipe input mode, which the emulator's {runtime} runtime "
            f"(SMEMU_RUNTIME={runtime}) does not support: its containers cannot read FIFOs the emulator "
            "feeds. Use File or FastFile input mode, or run the emulator with SMEMU_RUNTIME=docker.")
