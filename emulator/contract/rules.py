"""Contract rules as data: what each rule checks, where SageMaker documents it, and its judge.

A rule is a frozen :class:`Rule`: an id (``training.model-dir``), a one-line statement, the
documentation page it comes from, and a *judge*, a pure function from the observations of a
check run (plain dataclasses gathered by the kind's runner) to a :class:`Verdict`. Nothing
here talks to Docker or HTTP, so every rule is unit-tested with hand-made observations.

A verdict is PASS, FAIL or SKIP. SKIP means *not evaluated*, always with the reason: a rule
whose precondition failed (the container never completed a normal run), a rule that does not
apply (an image without the bind-to-port label), or an observation this machine cannot make.
Only FAIL makes ``smemu check`` exit non-zero.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DG = "https://docs.aws.amazon.com/sagemaker/latest/dg"
API = "https://docs.aws.amazon.com/sagemaker/latest/APIReference"


@dataclass(frozen=True)
class Source:
    """A page of SageMaker's documentation, and the sentence a rule rests on."""

    page: str
    """Short name printed in the table, e.g. ``your-algorithms-training-algo-output``."""
    url: str
    quote: str
    """What the page says, paraphrased closely enough to find it there."""


def dg(page: str, anchor: str, quote: str) -> Source:
    """A page of the SageMaker developer guide."""
    return Source(page, f"{DG}/{page}.html" + (f"#{anchor}" if anchor else ""), quote)


def api(page: str, quote: str) -> Source:
    """A page of the SageMaker API reference."""
    return Source(page, f"{API}/{page}.html", quote)


class Outcome(str, enum.Enum):
    """A rule's result."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Verdict:
    """What a judge concluded, with the evidence a user can act on."""

    outcome: Outcome
    evidence: str


def passed(evidence: str) -> Verdict:
    """The rule holds; ``evidence`` says what was seen."""
    return Verdict(Outcome.PASS, evidence)


def failed(evidence: str) -> Verdict:
    """The rule is broken; ``evidence`` says what was seen and what SageMaker expects."""
    return Verdict(Outcome.FAIL, evidence)


def skipped(reason: str) -> Verdict:
    """The rule was not evaluated; ``reason`` says why and, where it can, how to evaluate it."""
    return Verdict(Outcome.SKIP, reason)


Judge = Callable[[Any], Verdict]


@dataclass(frozen=True)
class Rule:
    """One rule of SageMaker's container contract."""

    id: str
    """``<kind>.<name>``; also the value that breaks it in the sample containers."""
    title: str
    source: Source
    judge: Judge

    @property
    def kind(self) -> str:
        """The container kind the rule belongs to (the id's first part)."""
        return self.id.split(".", 1)[0]


@dataclass(frozen=True)
class Result:
    """A rule and its verdict in one check run."""

    rule: Rule
    verdict: Verdict

    @property
    def outcome(self) -> Outcome:
        """PASS, FAIL or SKIP."""
        return self.verdict.outcome


def evaluate(rules: Sequence[Rule], observations: Any) -> list[Result]:
    """Judge every rule on the observations; a judge that raises is reported, not hidden."""
    results = []
    for rule in rules:
        try:
            verdict = rule.judge(observations)
        except Exception as exc:  # noqa: BLE001 - a broken judge must still produce a row
            verdict = failed(f"the check of this rule itself failed: {type(exc).__name__}: {exc}")
        results.append(Result(rule, verdict))
    return results


def clip(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters, for evidence quoted from a container."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
