"""The batch transform container's contract: rules and judges (pure; the runner is transform_run.py).

A transform check creates a model of the image and runs a transform job through the emulator:
two input objects of several records (split by line), assembled by line. The platform's own
log line in the job's stream says what the container answered to GET /execution-parameters;
the output objects are read back from S3 and their records counted against the input's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from emulator.contract.observations import JobRun
from emulator.contract.rules import Rule, Verdict, clip, dg, failed, passed, skipped

STRATEGIES = ("SINGLE_RECORD", "MULTI_RECORD")


@dataclass(frozen=True)
class TransformObservations:
    """Everything a transform check saw."""

    job: JobRun | None = None
    execution_parameters: str | None = None
    """The container's answer as the platform logged it (``404``, ``200: {...}``); None when not logged."""
    split: bool = True
    """Whether the input was split into records by line (else one record per object)."""
    records_in: dict[str, int] = field(default_factory=dict)
    """Input object -> records in it."""
    records_out: dict[str, int | None] = field(default_factory=dict)
    """Input object -> records in its ``.out`` object (None: no output object)."""


SERVE = "transform.serve"


def _serve(o: TransformObservations) -> Verdict:
    if o.job is None:
        return skipped("not evaluated: no transform job was created")
    if o.job.completed:
        return passed(f"`docker run IMAGE serve` with SAGEMAKER_BATCH=true answered /ping and the transform job "
                      f"{o.job.name} Completed in {o.job.seconds:.1f} s")
    if o.execution_parameters is not None:
        return passed(f"the container passed /ping (the platform then asked GET /execution-parameters); the job "
                      f"ended {o.job.status} for another reason (see transform.records)")
    return failed(f"transform job {o.job.name} ended {clip(o.job.why(), 600)}")


def _up(o: TransformObservations) -> Verdict | None:
    if o.job is None or (not o.job.completed and o.execution_parameters is None):
        return skipped(f"not evaluated: the model container did not come up (see {SERVE})")
    return None


def _execution_parameters(o: TransformObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    answer = o.execution_parameters
    if answer is None:
        return skipped("not evaluated: the emulator did not log the container's answer to GET /execution-parameters")
    status, _, body = answer.partition(": ")
    if status != "200":
        return passed(f"GET /execution-parameters answered {clip(answer, 120)}: not offered (it is optional), so "
                      "SageMaker uses its defaults")
    problems = execution_parameters_problems(body)
    if problems:
        return failed(f"GET /execution-parameters answered 200 {clip(body, 200)}: {'; '.join(problems)}")
    return passed(f"GET /execution-parameters answered 200 {clip(body, 200)}")


def execution_parameters_problems(body: str) -> list[str]:
    """What is wrong with a 200 answer to GET /execution-parameters (empty when nothing is)."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return ["it is not JSON"]
    if not isinstance(data, dict):
        return ["it is not a JSON object"]
    problems = []
    unknown = sorted(set(data) - {"MaxConcurrentTransforms", "BatchStrategy", "MaxPayloadInMB"})
    if unknown:
        problems.append(f"unknown keys {unknown}")
    concurrent = data.get("MaxConcurrentTransforms")
    if concurrent is not None and not (isinstance(concurrent, int) and 1 <= concurrent <= 100):
        problems.append(f"MaxConcurrentTransforms must be an integer 1-100, not {concurrent!r}")
    strategy = data.get("BatchStrategy")
    if strategy is not None and strategy not in STRATEGIES:
        problems.append(f"BatchStrategy must be SINGLE_RECORD or MULTI_RECORD, not {strategy!r}")
    payload = data.get("MaxPayloadInMB")
    if payload is not None and not (isinstance(payload, int) and payload >= 0):
        problems.append(f"MaxPayloadInMB must be an integer >= 0, not {payload!r}")
    return problems


def _records(o: TransformObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    assert o.job is not None
    if not o.records_in:
        return skipped("not evaluated: no input was transformed")
    missing = [key for key, count in o.records_out.items() if count is None]
    if missing:
        reason = f" (the job ended {o.job.status}: {clip(o.job.failure_reason or '', 300)})" if not o.job.completed else ""
        return failed(f"no output object for {', '.join(missing)}{reason}")
    unit = "line(s)" if o.split else "record(s)"
    wrong = [f"{key}: {o.records_in[key]} records in, {o.records_out[key]} {unit} out"
             for key in sorted(o.records_in) if o.split and o.records_out.get(key) != o.records_in[key]]
    if wrong:
        return failed("with SplitType=Line and AssembleWith=Line every input record needs one output line: "
                      + "; ".join(wrong))
    shown = ", ".join(f"{key}.out ({o.records_out[key]} {unit})" for key in sorted(o.records_in))
    return passed(f"one output per input record: {shown}")


_BATCH = "your-algorithms-batch-code"
_RUN = dg(_BATCH, "your-algorithms-batch-code-run-image",
          "batch transform runs `docker run image serve` with SAGEMAKER_BATCH=true; the container answers /ping "
          "(2 s timeout) and /invocations on port 8080")
_PARAMETERS = dg(_BATCH, "your-algorithms-batch-code-how-containe-serves-requests",
                 "GET /execution-parameters (optional) answers a JSON object: MaxConcurrentTransforms 1-100, "
                 "BatchStrategy SINGLE_RECORD or MULTI_RECORD, MaxPayloadInMB >= 0")
_OUTPUT = dg("batch-transform", "",
             "each input object gives one <name>.out object; with AssembleWith=Line each transformed record ends "
             "with a newline, in the order of the input records")

RULES: tuple[Rule, ...] = (
    Rule(SERVE, "serves /ping and /invocations with SAGEMAKER_BATCH=true", _RUN, _serve),
    Rule("transform.execution-parameters", "answers GET /execution-parameters with valid values, if at all",
         _PARAMETERS, _execution_parameters),
    Rule("transform.records", "answers one output record per input record", _OUTPUT, _records),
)
