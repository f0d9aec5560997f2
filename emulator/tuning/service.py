"""Hyperparameter tuning: Create/Describe/List/Stop/DeleteHyperParameterTuningJob and
ListTrainingJobsForHyperParameterTuningJob.

A tuning job's record (its DescribeHyperParameterTuningJob answer) is kept under kind
``hyper-parameter-tuning-job``; a :class:`TuningRunner` launches its training jobs through
the :class:`~emulator.training.service.TrainingService` given to this service (the Python API,
not HTTP), so every child is an ordinary training job with TuningJobArn set.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from emulator.context import CallContext
from emulator.errors import ResourceNotFound, ValidationException, job_name_in_use
from emulator.hosting.listing import list_page
from emulator.tuning import children as ch
from emulator.tuning.runner import KIND, TuningRunner, children_summaries
from emulator.tuning.search import CATEGORICAL, grid_size, parameters

_SUMMARY_KEYS = ("HyperParameterTuningJobName", "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus",
                 "CreationTime", "HyperParameterTuningEndTime", "LastModifiedTime", "TrainingJobStatusCounters",
                 "ObjectiveStatusCounters")
_TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
_SORTS = {"Name": "TrainingJobName", "CreationTime": "CreationTime", "Status": "TrainingJobStatus"}
_SHUTDOWN_REASON = "InternalServerError: The emulator stopped while the tuning job was running. Start it again."


def _not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"Amazon SageMaker can't find a tuning job with name {name}")


class TuningService:
    """The tuning operations of the control plane."""

    def __init__(self, platform: Any, training: Any) -> None:
        self.platform = platform
        self.store = platform.store
        self.training = training
        self._runners: dict[str, TuningRunner] = {}
        self._lock = threading.Lock()

    def create_hyper_parameter_tuning_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Validate, record and start the tuning job; answers with its ARN at once."""
        name = request["HyperParameterTuningJobName"]
        arn = ctx.arn("hyper-parameter-tuning-job", name)
        self._validate(request, ctx)
        now = time.time()
        record = copy.deepcopy({k: v for k, v in request.items() if k != "Tags"})
        record["HyperParameterTuningJobConfig"].setdefault("TrainingJobEarlyStoppingType", "Off")
        record.update(HyperParameterTuningJobArn=arn, HyperParameterTuningJobStatus="InProgress", CreationTime=now,
                      LastModifiedTime=now, TrainingJobStatusCounters={k: 0 for k in (
                          "Completed", "InProgress", "RetryableError", "NonRetryableError", "Stopped")},
                      ObjectiveStatusCounters={"Succeeded": 0, "Pending": 0, "Failed": 0}, ChildDefinitions={})
        if not self.store.insert(KIND, name, record, now):
            raise job_name_in_use("hyperparameter tuning job", arn)
        if request.get("Tags"):
            self.store.add_tags(arn, request["Tags"])
        runner = TuningRunner(self.store, self.training, name, ctx)
        with self._lock:
            self._runners[name.lower()] = runner
        runner.start()
        return {"HyperParameterTuningJobArn": arn}

    def describe_hyper_parameter_tuning_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The job's record (counters and BestTrainingJob kept current by its runner)."""
        record = self.store.get(KIND, request["HyperParameterTuningJobName"])
        if record is None:
            raise _not_found(request["HyperParameterTuningJobName"])
        return record

    def list_hyper_parameter_tuning_jobs(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Summaries with Strategy and ResourceLimits, filtered, sorted and paged."""
        def summary(r: dict[str, Any]) -> dict[str, Any]:
            config = r["HyperParameterTuningJobConfig"]
            return {**{k: r[k] for k in _SUMMARY_KEYS if k in r}, "Strategy": config["Strategy"],
                    "ResourceLimits": config["ResourceLimits"]}
        page, token = list_page(self.store.list(KIND), request, "HyperParameterTuningJobName",
                                status_key="HyperParameterTuningJobStatus", summary=summary)
        return {"HyperParameterTuningJobSummaries": page, **({"NextToken": token} if token else {})}

    def list_training_jobs_for_hyper_parameter_tuning_job(self, request: dict[str, Any],
                                                          ctx: CallContext) -> dict[str, Any]:
        """The tuning job's training jobs, as HyperParameterTrainingJobSummary."""
        record = self.describe_hyper_parameter_tuning_job(request, ctx)
        summaries = children_summaries(self.store, record)
        if request.get("StatusEquals"):
            summaries = [s for s in summaries if s["TrainingJobStatus"] == request["StatusEquals"]]
        sort_by = request.get("SortBy", "CreationTime")
        descending = request.get("SortOrder", "Descending") == "Descending"
        if sort_by == "FinalObjectiveMetricValue":
            scored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            summaries = sorted(scored, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                               reverse=descending)
        else:
            summaries = sorted(summaries, key=lambda s: s[_SORTS[sort_by]], reverse=descending)
        start = int(request["NextToken"]) if str(request.get("NextToken") or "").isdigit() else 0
        size = int(request.get("MaxResults") or 10)
        answer: dict[str, Any] = {"TrainingJobSummaries": summaries[start:start + size]}
        if start + size < len(summaries):
            answer["NextToken"] = str(start + size)
        return answer

    def stop_hyper_parameter_tuning_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Stopping: running training jobs are stopped; Stopped once they have ended."""
        name = request["HyperParameterTuningJobName"]

        def change(record: dict[str, Any]) -> None:
            if record["HyperParameterTuningJobStatus"] != "InProgress":
                raise ValidationException(f"The hyperparameter tuning job {name} is in status "
                                          f"{record['HyperParameterTuningJobStatus']} and cannot be stopped.")
            record["HyperParameterTuningJobStatus"] = "Stopping"
            record["LastModifiedTime"] = time.time()
        if self.store.update(KIND, name, change) is None:
            raise _not_found(name)
        with self._lock:
            runner = self._runners.get(name.lower())
        if runner is not None:
            runner.stop()
        return {}

    def delete_hyper_parameter_tuning_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Remove a finished tuning job's record (its training jobs stay)."""
        name = request["HyperParameterTuningJobName"]
        record = self.describe_hyper_parameter_tuning_job(request, ctx)
        if record["HyperParameterTuningJobStatus"] not in _TERMINAL:
            raise ValidationException(f"The hyperparameter tuning job {name} is still running; stop it first.")
        self.store.delete(KIND, name)
        self.store.delete_tags(record["HyperParameterTuningJobArn"])
        return {}

    def start(self) -> None:
        """A tuning job cannot outlive the emulator: an unfinished one is Failed (or Stopped) with a reason."""
        for record in self.store.list(KIND):
            if record["HyperParameterTuningJobStatus"] in _TERMINAL:
                continue
            stopping = record["HyperParameterTuningJobStatus"] == "Stopping"

            def change(r: dict[str, Any], stopping: bool = stopping) -> None:
                r["HyperParameterTuningJobStatus"] = "Stopped" if stopping else "Failed"
                if not stopping:
                    r["FailureReason"] = _SHUTDOWN_REASON
                r["HyperParameterTuningEndTime"] = r["LastModifiedTime"] = time.time()
            self.store.update(KIND, record["HyperParameterTuningJobName"], change)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every running tuning job and wait for its thread."""
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.stop()
        deadline = time.monotonic() + timeout
        for runner in runners:
            runner.thread.join(max(0.0, deadline - time.monotonic()))

    # -- validation ------------------------------------------------------------------------------

    def _validate(self, request: dict[str, Any], ctx: CallContext) -> None:
        config = request["HyperParameterTuningJobConfig"]
        single, several = request.get("TrainingJobDefinition"), request.get("TrainingJobDefinitions")
        if bool(single) == bool(several):
            raise ValidationException("Give exactly one of TrainingJobDefinition and TrainingJobDefinitions.")
        if request.get("Autotune"):
            raise ValidationException("Autotune is not supported by the emulator; give the tuning configuration.")
        strategy = config["Strategy"]
        limits = config["ResourceLimits"]
        if strategy != "Grid" and not limits.get("MaxNumberOfTrainingJobs"):
            raise ValidationException("ResourceLimits.MaxNumberOfTrainingJobs is required unless Strategy is Grid.")
        if strategy == "Hyperband" and config.get("TrainingJobEarlyStoppingType") == "Auto":
            raise ValidationException("Hyperband stops training jobs by itself; TrainingJobEarlyStoppingType must be "
                                      "Off.")
        for definition in ch.definitions(request):
            self._validate_definition(definition, config, strategy, ctx)
        for parent in (request.get("WarmStartConfig") or {}).get("ParentHyperParameterTuningJobs") or []:
            found = self.store.get(KIND, parent["HyperParameterTuningJobName"])
            if found is None or found["HyperParameterTuningJobStatus"] not in _TERMINAL:
                raise ValidationException(f"Warm start parent {parent['HyperParameterTuningJobName']} must be a "
                                          "finished hyperparameter tuning job.")

    def _validate_definition(self, definition: dict[str, Any], config: dict[str, Any], strategy: str,
                             ctx: CallContext) -> None:
        algorithm = definition.get("AlgorithmSpecification") or {}
        if algorithm.get("AlgorithmName") or not algorithm.get("TrainingImage"):
            raise ValidationException("AlgorithmSpecification.TrainingImage is required: the emulator tunes "
                                      "training jobs of container images (no AlgorithmName).")
        if not (definition.get("TuningObjective") or config.get("HyperParameterTuningJobObjective")):
            raise ValidationException("A tuning objective is required (HyperParameterTuningJobObjective or "
                                      "TuningObjective).")
        if bool(definition.get("ResourceConfig")) == bool(definition.get("HyperParameterTuningResourceConfig")):
            raise ValidationException("A training job definition needs exactly one of ResourceConfig and "
                                      "HyperParameterTuningResourceConfig.")
        objective = ch.objective_of(definition, config)
        metrics = [m["Name"] for m in algorithm.get("MetricDefinitions") or []]
        if objective["MetricName"] not in metrics:
            raise ValidationException(f"The objective metric {objective['MetricName']} must be one of the "
                                      f"MetricDefinitions of the training job definition ({', '.join(metrics) or 'none'}).")
        params = parameters(definition.get("HyperParameterRanges") or config.get("ParameterRanges"))
        if not params:
            raise ValidationException("ParameterRanges must name at least one hyperparameter to tune.")
        clash = sorted({p.name for p in params} & set(definition.get("StaticHyperParameters") or {}))
        if clash:
            raise ValidationException(f"Hyperparameters {', '.join(clash)} are both static and tuned.")
        if strategy == "Grid":
            if any(p.kind != CATEGORICAL for p in params):
                raise ValidationException("Grid search tunes categorical ranges only.")
            limit = config["ResourceLimits"].get("MaxNumberOfTrainingJobs")
            if limit and int(limit) > grid_size(params):
                raise ValidationException(f"MaxNumberOfTrainingJobs ({limit}) exceeds the grid's {grid_size(params)} "
                                          "combinations.")
        if strategy == "Hyperband":
            hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
            static = definition.get("StaticHyperParameters") or {}
            if not hyperband.get("MaxResource") and not any(
                    str(static.get(k, "")).isdigit() for k in ("epochs", "numepochs", "n-epochs", "n_epochs",
                                                                "num_epochs")):
                raise ValidationException("Hyperband needs HyperbandStrategyConfig.MaxResource, or an epochs "
                                          "static hyperparameter to infer it from.")
        self.platform.check_role(definition.get("RoleArn"), "CreateHyperParameterTuningJob", ctx)
