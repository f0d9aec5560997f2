"""Contract checks for custom containers (``smemu check`` and the pytest plugin's ``smemu_contract``).

A check runs an image through the emulator as SageMaker would run it (training jobs,
endpoints, multi-model endpoints...), records what the container did, and judges every rule
of SageMaker's container contract that applies to its kind. Rules are data with pure judges
(``*_rules.py``); runners (``*_run.py``) do the I/O; :func:`run_check` ties them together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from emulator.contract.inputs import CheckInputError, CheckOptions
from emulator.contract.report import Report, junit_xml, render_table
from emulator.contract.rules import Outcome, Result, Rule, evaluate
from emulator.contract.session import EmulatorTarget, local_emulator

__all__ = ["KINDS", "CheckInputError", "CheckOptions", "EmulatorTarget", "Outcome", "Report", "Result", "Rule",
           "junit_xml", "local_emulator", "render_table", "rules_of", "run_check"]


def _training() -> tuple[tuple[Rule, ...], Callable[..., Any]]:
    from emulator.contract.training_rules import RULES
    from emulator.contract.training_run import check_training

    return RULES, check_training


def _serving() -> tuple[tuple[Rule, ...], Callable[..., Any]]:
    from emulator.contract.serving_rules import RULES
    from emulator.contract.serving_run import check_serving

    return RULES, check_serving


def _multi_model() -> tuple[tuple[Rule, ...], Callable[..., Any]]:
    from emulator.contract.multi_model_rules import RULES
    from emulator.contract.multi_model_run import check_multi_model

    return RULES, check_multi_model


def _processing() -> tuple[tuple[Rule, ...], Callable[..., Any]]:
    from emulator.contract.processing_rules import RULES
    from emulator.contract.processing_run import check_processing

    return RULES, check_processing


def _transform() -> tuple[tuple[Rule, ...], Callable[..., Any]]:
    from emulator.contract.transform_rules import RULES
    from emulator.contract.transform_run import check_transform

    return RULES, check_transform


_KINDS: dict[str, Callable[[], tuple[tuple[Rule, ...], Callable[..., Any]]]] = {
    "training": _training,
    "serving": _serving,
    "multi-model": _multi_model,
    "processing": _processing,
    "transform": _transform,
}
KINDS = tuple(_KINDS)
"""The kinds ``smemu check --as`` takes."""


def rules_of(kind: str) -> tuple[Rule, ...]:
    """Every rule a check of ``kind`` judges, in table order."""
    return _kind(kind)[0]


def _kind(kind: str) -> tuple[tuple[Rule, ...], Callable[..., Any]]:
    try:
        return _KINDS[kind]()
    except KeyError:
        raise CheckInputError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}") from None


def run_check(target: EmulatorTarget, image: str, kind: str, options: CheckOptions | None = None) -> Report:
    """Check ``image`` as a ``kind`` container by running it through the emulator at ``target``."""
    rules, runner = _kind(kind)
    options = options or CheckOptions()
    options.requests()  # refuse unusable payload options before anything runs
    started = time.monotonic()
    observations = runner(target, image, options)
    return Report(image, kind, evaluate(rules, observations), time.monotonic() - started)
