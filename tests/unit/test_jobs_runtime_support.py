"""Pipe-mode inputs are refused, naming the runtime, where the runtime cannot feed FIFOs."""

from __future__ import annotations

import pytest

from emulator.errors import ValidationException
from emulator.jobs.runtime_support import refuse_pipe_inputs


def test_pipe_inputs_are_refused_on_kubernetes_and_accepted_on_docker() -> None:
    refuse_pipe_inputs("docker", ["a"], "ProcessingInputs")
    refuse_pipe_inputs("kubernetes", [], "ProcessingInputs")
    with pytest.raises(ValidationException) as refused:
        refuse_pipe_inputs("kubernetes", ["zeta", "alpha"], "ProcessingInputs")
    message = str(refused.value)
    assert message.startswith("ProcessingInputs alpha, zeta use Pipe input mode")
    assert "SMEMU_RUNTIME=kubernetes" in message and "SMEMU_RUNTIME=docker" in message
