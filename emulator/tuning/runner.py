"""Runs one hyperparameter tuning job: launches, follows and learns from its training jobs.

A thread loops every fraction of a second until the job ends:

1. each running child's record is read; a finished child's objective (its
   FinalMetricDataList entry for the objective metric, found by the definition's
   MetricDefinitions regex) is told to the search strategy, and the counters and
   BestTrainingJob are recomputed;
2. with early stopping (``Auto``) or Hyperband, the objective lines a running child has
   printed so far (its CloudWatch log stream) are reported epoch by epoch, and a child the
   strategy prunes is stopped with StopTrainingJob;
3. new children are launched, through the training service's Python API with TuningJobArn,
   while fewer than MaxParallelTrainingJobs run, fewer than MaxNumberOfTrainingJobs were
   launched, a Grid is not exhausted and no completion criterion is met
   (TargetObjectiveMetricValue reached, or BestObjectiveNotImproving jobs in a row).

StopHyperParameterTuningJob and ResourceLimits.MaxRuntimeInSeconds stop the running
children; the job is Stopped once they have ended. It Completes when nothing runs and nothing
more may be launched, and Fails when no child produced an objective value.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from emulator import cloudwatch
from emulator.context import CallContext
from emulator.errors import ServiceError
from emulator.tuning import children as ch
from emulator.tuning.search import Parameter, Searcher, parameters

log = logging.getLogger(__name__)

KIND = "hyper-parameter-tuning-job"
TRAINING_KIND = "training-job"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
POLL_SECONDS = 0.2
OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
"""SageMaker passes the objective metric's name to every child as this static hyperparameter."""


@dataclass
class _Child:
    name: str
    definition: int
    trial: Any
    regex: re.Pattern[str] | None
    cursor: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    pruned: bool = False
    stop_sent: bool = False


@dataclass
class _Definition:
    body: dict[str, Any]
    params: list[Parameter]
    objective: dict[str, Any]
    searcher: Searcher
    regex: re.Pattern[str] | None


class TuningRunner:
    """One tuning job's thread."""

    def __init__(self, store: Any, training: Any, name: str, ctx: CallContext) -> None:
        self.store = store
        self.training = training
        self.name = name
        self.ctx = CallContext(region=ctx.region, account_id=ctx.account_id)
        self._stop = threading.Event()
        self.launch_error: str | None = None
        """Why the last training job could not be created (the job fails with it if none ran)."""
        self.thread = threading.Thread(target=self._run, name=f"smemu-tune-{name}", daemon=True)

    def start(self) -> None:
        """Run the job in the background."""
        self.thread.start()

    def stop(self) -> None:
        """StopHyperParameterTuningJob (or the emulator stopping)."""
        self._stop.set()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:
            log.exception("tuning job %s failed inside the emulator", self.name)
            self._finish("Failed", f"InternalServerError: {type(exc).__name__}: {exc}")

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        record = self._record()
        config = record["HyperParameterTuningJobConfig"]
        limits = config["ResourceLimits"]
        strategy = config["Strategy"]
        seed = config.get("RandomSeed")
        defs = []
        for index, body in enumerate(ch.definitions(record)):
            params = parameters(body.get("HyperParameterRanges") or config.get("ParameterRanges"))
            objective = ch.objective_of(body, config)
            searcher = Searcher(strategy, params, objective["Type"] == "Minimize",
                                None if seed is None else int(seed) + index,
                                early_stopping=config.get("TrainingJobEarlyStoppingType") == "Auto",
                                min_resource=_hyperband(config, "MinResource") or 1,
                                max_resource=_hyperband(config, "MaxResource") or _epochs(body) or 1)
            defs.append(_Definition(body, params, objective, searcher, _metric_regex(body, objective["MetricName"])))
        self._warm_start(record, defs)
        max_jobs = int(limits.get("MaxNumberOfTrainingJobs") or 0) or sum(d.searcher.grid_points for d in defs)
        parallel = int(limits["MaxParallelTrainingJobs"])
        deadline = time.monotonic() + float(limits.get("MaxRuntimeInSeconds") or 15768000)
        criteria = config.get("TuningJobCompletionCriteria") or {}
        running: dict[str, _Child] = {}
        launched = 0
        not_improving = 0
        best_value: float | None = None
        stopping = False
        while True:
            for child in list(running.values()):
                described = self.store.get(TRAINING_KIND, child.name)
                if described is None or described["TrainingJobStatus"] in ch.TERMINAL:
                    definition = defs[child.definition]
                    value = None if described is None else ch.objective_value(
                        described, definition.objective["MetricName"])
                    definition.searcher.tell(child.trial, value, pruned=child.pruned)
                    del running[child.name]
                    if value is not None:
                        better = best_value is None or (value < best_value if definition.objective["Type"] ==
                                                        "Minimize" else value > best_value)
                        not_improving = 0 if better else not_improving + 1
                        best_value = value if better else best_value
                elif not stopping:
                    self._follow(defs[child.definition], child)
            self._publish()
            if not stopping and (self._stop.is_set() or time.monotonic() > deadline):
                stopping = True
                for child in running.values():
                    self._stop_child(child)
            done = stopping or launched >= max_jobs or all(d.searcher.exhausted for d in defs) \
                or _met(criteria, best_value, defs[0].objective["Type"], not_improving)
            if done and not running:
                break
            while not done and len(running) < parallel and launched < max_jobs:
                index = launched % len(defs)
                if defs[index].searcher.exhausted:
                    break
                child = self._launch(record, defs[index], index, launched + 1)
                launched += 1
                if child is not None:
                    running[child.name] = child
            time.sleep(POLL_SECONDS)
        status = "Stopped" if stopping else "Completed"
        summaries = self._publish()
        if status == "Completed" and not summaries and self.launch_error:
            return self._finish("Failed", self.launch_error)
        if status == "Completed" and summaries and not any(s["ObjectiveStatus"] == "Succeeded" for s in summaries):
            return self._finish("Failed", "No training job of the tuning job reported the objective metric; "
                                          "see the training jobs' FailureReason and logs.")
        self._finish(status, None)

    def _launch(self, record: dict[str, Any], definition: _Definition, index: int, number: int) -> _Child | None:
        trial, tuned = definition.searcher.ask()
        name = f"{self.name}-{number:03d}-{uuid.uuid4().hex[:8]}"
        body = definition.body
        hyperparameters = {**(body.get("StaticHyperParameters") or {}), **tuned,
                           OBJECTIVE_HYPERPARAMETER: definition.objective["MetricName"]}
        request: dict[str, Any] = {"TrainingJobName": name, "HyperParameters": hyperparameters}
        request["ResourceConfig"] = ch.resource_config(body)
        for key in ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "VpcConfig", "OutputDataConfig",
                    "StoppingCondition", "EnableNetworkIsolation",
                    "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining", "CheckpointConfig",
                    "RetryStrategy", "Environment"):
            if body.get(key) is not None:
                request[key] = body[key]
        def remember(r: dict[str, Any]) -> None:
            r.setdefault("ChildDefinitions", {})[name] = index
        self.store.update(KIND, self.name, remember)
        try:
            self.training.create_training_job(request, self.ctx, tuning_job_arn=record["HyperParameterTuningJobArn"])
        except ServiceError as exc:
            log.warning("tuning job %s could not launch %s: %s", self.name, name, exc.message)
            self.launch_error = f"Training job {name} could not be created: {exc.code}: {exc.message}"
            definition.searcher.tell(trial, None)
            return None
        return _Child(name, index, trial, definition.regex)

    def _follow(self, definition: _Definition, child: _Child) -> None:
        """Report the objective lines printed since last time; stop the child if it is pruned."""
        if child.regex is None or child.stop_sent or not definition.searcher.prunes:
            return
        lines = cloudwatch.read_lines(self.ctx.account_id, self.ctx.region, TRAINING_LOG_GROUP, f"{child.name}/",
                                      child.cursor)
        for _ts, line in lines:
            match = child.regex.search(line)
            if match is None:
                continue
            try:
                value = float(match.group(1) if child.regex.groups else match.group(0))
            except ValueError:
                continue
            child.steps += 1
            if definition.searcher.report(child.trial, child.steps, value):
                child.pruned = True
                self._stop_child(child)
                return

    def _stop_child(self, child: _Child) -> None:
        if child.stop_sent:
            return
        child.stop_sent = True
        try:
            self.training.stop_training_job({"TrainingJobName": child.name}, self.ctx)
        except ServiceError as exc:  # it finished meanwhile
            log.debug("stopping %s: %s", child.name, exc.message)

    def _warm_start(self, record: dict[str, Any], defs: list[_Definition]) -> None:
        warm = record.get("WarmStartConfig")
        if not warm:
            return
        for parent in warm.get("ParentHyperParameterTuningJobs") or []:
            parent_record = self.store.get(KIND, parent["HyperParameterTuningJobName"])
            if parent_record is None:
                continue
            for summary in children_summaries(self.store, parent_record):
                metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric")
                if metric is not None:
                    for definition in defs:
                        definition.searcher.seed(summary["TunedHyperParameters"], float(metric["Value"]))

    def _publish(self) -> list[dict[str, Any]]:
        """Recompute counters and the best training job into the record; returns the summaries."""
        record = self._record()
        summaries = children_summaries(self.store, record)
        training, objective = ch.counters(summaries)
        found = ch.best(summaries)
        overall = found
        warm = record.get("WarmStartConfig")
        if warm:
            parents = [self.store.get(KIND, p["HyperParameterTuningJobName"])
                       for p in warm.get("ParentHyperParameterTuningJobs") or []]
            overall = ch.best(summaries + [s for p in parents if p for s in children_summaries(self.store, p)])

        def change(r: dict[str, Any]) -> None:
            r["TrainingJobStatusCounters"], r["ObjectiveStatusCounters"] = training, objective
            if found is not None:
                r["BestTrainingJob"] = found
            if warm and overall is not None:
                r["OverallBestTrainingJob"] = overall
            r["ConsumedResources"] = {"RuntimeInSeconds": int(time.time() - r["CreationTime"])}
            r["LastModifiedTime"] = time.time()
        self.store.update(KIND, self.name, change)
        return summaries

    def _finish(self, status: str, reason: str | None) -> None:
        now = time.time()

        def change(r: dict[str, Any]) -> None:
            r["HyperParameterTuningJobStatus"] = status
            r["HyperParameterTuningEndTime"] = now
            r["LastModifiedTime"] = now
            if reason:
                r["FailureReason"] = reason[:1024]
        self.store.update(KIND, self.name, change)

    def _record(self) -> dict[str, Any]:
        record = self.store.get(KIND, self.name)
        if record is None:
            raise RuntimeError(f"tuning job {self.name} vanished from the store")
        return dict(record)


def children_summaries(store: Any, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Summaries of every training job the tuning job launched, oldest first."""
    names = list((record.get("ChildDefinitions") or {}).keys())
    found = [store.get(TRAINING_KIND, n) for n in names]
    return [ch.summary(c, record) for c in found if c is not None]


def _met(criteria: dict[str, Any], best_value: float | None, kind: str, not_improving: int) -> bool:
    target = criteria.get("TargetObjectiveMetricValue")
    if target is not None and best_value is not None:
        if (best_value <= float(target)) if kind == "Minimize" else (best_value >= float(target)):
            return True
    patience = (criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving")
    return bool(patience) and not_improving >= int(patience)


def _metric_regex(definition: dict[str, Any], metric: str) -> re.Pattern[str] | None:
    for item in (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []:
        if item.get("Name") == metric:
            try:
                return re.compile(str(item["Regex"]))
            except re.error:
                return None
    return None


def _hyperband(config: dict[str, Any], key: str) -> int | None:
    value = ((config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}).get(key)
    return int(value) if value else None


def _epochs(definition: dict[str, Any]) -> int | None:
    """Hyperband's MaxResource from the static hyperparameters, as SageMaker infers it."""
    static = definition.get("StaticHyperParameters") or {}
    for key in ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs"):
        if str(static.get(key, "")).isdigit():
            return int(static[key])
    return None
