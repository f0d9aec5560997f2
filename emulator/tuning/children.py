"""A tuning job's training jobs as the tuning APIs show them (pure functions over records).

Each child is an ordinary training job (kind ``training-job``) whose record carries
``TuningJobArn``; the tuning record keeps, under ``ChildDefinitions`` (emulator bookkeeping,
not part of the Describe answer), which training job definition launched each child. From
these the summaries of ListTrainingJobsForHyperParameterTuningJob, BestTrainingJob and the
status and objective counters are computed.
"""

from __future__ import annotations

from typing import Any

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


def objective_of(definition: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``{"Type", "MetricName"}`` of a training job definition (its own, else the job's)."""
    return dict(definition.get("TuningObjective") or config["HyperParameterTuningJobObjective"])


def tuned_names(definition: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The hyperparameters a definition tunes."""
    ranges = definition.get("HyperParameterRanges") or config.get("ParameterRanges") or {}
    return [r["Name"] for key in ("IntegerParameterRanges", "ContinuousParameterRanges",
                                  "CategoricalParameterRanges") for r in ranges.get(key) or []]


def definitions(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The tuning job's training job definitions (one, or several)."""
    return list(record.get("TrainingJobDefinitions") or [record["TrainingJobDefinition"]])


def resource_config(definition: dict[str, Any]) -> dict[str, Any] | None:
    """The ResourceConfig of the definition's training jobs.

    A definition gives either ``ResourceConfig`` or ``HyperParameterTuningResourceConfig`` (what
    the SageMaker SDK sends); of the latter's ``InstanceConfigs`` (``AllocationStrategy``
    Prioritized) the first, highest-priority one is used, as capacity is never short here.
    """
    if definition.get("ResourceConfig"):
        return dict(definition["ResourceConfig"])
    tuning = definition.get("HyperParameterTuningResourceConfig")
    if not tuning:
        return None
    chosen = (tuning.get("InstanceConfigs") or [tuning])[0]
    config = {k: chosen[k] for k in ("InstanceType", "InstanceCount", "VolumeSizeInGB") if k in chosen}
    if tuning.get("VolumeKmsKeyId"):
        config["VolumeKmsKeyId"] = tuning["VolumeKmsKeyId"]
    return config


def objective_value(child: dict[str, Any], metric: str) -> float | None:
    """The child's final value of the objective metric, if it reported one."""
    for item in child.get("FinalMetricDataList") or []:
        if item.get("MetricName") == metric:
            return float(item["Value"])
    return None


def summary(child: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A HyperParameterTrainingJobSummary of one child."""
    config = record["HyperParameterTuningJobConfig"]
    index = int((record.get("ChildDefinitions") or {}).get(child["TrainingJobName"], 0))
    definition = definitions(record)[index]
    objective = objective_of(definition, config)
    value = objective_value(child, objective["MetricName"])
    status = child["TrainingJobStatus"]
    tuned = {k: v for k, v in (child.get("HyperParameters") or {}).items() if k in tuned_names(definition, config)}
    found: dict[str, Any] = {
        "TrainingJobName": child["TrainingJobName"], "TrainingJobArn": child["TrainingJobArn"],
        "TuningJobName": record["HyperParameterTuningJobName"], "CreationTime": child["CreationTime"],
        "TrainingJobStatus": status, "TunedHyperParameters": tuned,
        "ObjectiveStatus": "Pending" if status not in TERMINAL else (
            "Succeeded" if value is not None and status != "Failed" else "Failed"),
    }
    if definition.get("DefinitionName"):
        found["TrainingJobDefinitionName"] = definition["DefinitionName"]
    for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
        if child.get(key) is not None:
            found[key] = child[key]
    if value is not None:
        found["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective["Type"], "MetricName": objective["MetricName"], "Value": value}
    return found


def best(summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The summary with the best objective among children that succeeded, or None."""
    scored = [s for s in summaries if s["ObjectiveStatus"] == "Succeeded"]
    if not scored:
        return None

    def key(s: dict[str, Any]) -> float:
        metric = s["FinalHyperParameterTuningJobObjectiveMetric"]
        return float(metric["Value"]) if metric["Type"] == "Minimize" else -float(metric["Value"])

    return min(scored, key=key)


def counters(summaries: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """TrainingJobStatusCounters and ObjectiveStatusCounters."""
    statuses = [s["TrainingJobStatus"] for s in summaries]
    training = {"Completed": statuses.count("Completed"),
                "InProgress": sum(s in ("InProgress", "Stopping") for s in statuses),
                "RetryableError": 0, "NonRetryableError": statuses.count("Failed"), "Stopped": statuses.count("Stopped")}
    objectives = [s["ObjectiveStatus"] for s in summaries]
    objective = {"Succeeded": objectives.count("Succeeded"), "Pending": objectives.count("Pending"),
                 "Failed": objectives.count("Failed")}
    return training, objective
