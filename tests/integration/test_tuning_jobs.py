"""Hyperparameter tuning end to end through boto3: real training jobs of the sample trainer.

The trainer prints ``objective=<value>`` each epoch, converging on the squared distance of its
``opt_*`` hyperparameters from the ``target_*`` static ones (sample_containers/training), so
every test knows the true optimum.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from tests.conftest import unique_name
from tests.integration.test_training_helpers import wait_log_line

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]

OBJECTIVE = {"Name": "objective", "Regex": r"objective=([0-9.eE+-]+)"}
RANGES = {"ContinuousParameterRanges": [{"Name": "opt_x", "MinValue": "0", "MaxValue": "1"},
                                        {"Name": "opt_y", "MinValue": "0", "MaxValue": "1"}]}
TARGETS = {"target_x": "0.73", "target_y": "0.21"}


def tuning_request(name: str, image: str, role_arn: str, bucket: str, strategy: str, max_jobs: int,
                   parallel: int, **config: Any) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "objective"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": RANGES, **config},
        "TrainingJobDefinition": {
            "StaticHyperParameters": {**TARGETS, "epochs": "2"},
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File",
                                       "MetricDefinitions": [OBJECTIVE]},
            "RoleArn": role_arn,
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/tuning"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
    }


def wait_tuning(sagemaker_client: Any, name: str, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = sagemaker_client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if job["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"tuning job {name}: last {job.get('HyperParameterTuningJobStatus')}")


def all_children(sagemaker_client: Any, name: str) -> list[dict[str, Any]]:
    pages = sagemaker_client.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name)
    return [s for page in pages for s in page["TrainingJobSummaries"]]


def known(hyperparameters: dict[str, str]) -> float:
    return sum((float(hyperparameters[f"opt_{k}"]) - float(TARGETS[f"target_{k}"])) ** 2 for k in ("x", "y"))


@pytest.mark.one_store
def test_six_trainings_two_at_a_time_best_is_the_true_minimum(sagemaker_client: Any, bucket: str, role_arn: str,
                                                               training_image: str) -> None:
    name = unique_name("tune")[:32]
    arn = sagemaker_client.create_hyper_parameter_tuning_job(**tuning_request(
        name, training_image, role_arn, bucket, "Random", 6, 2, RandomSeed=7))["HyperParameterTuningJobArn"]
    job = wait_tuning(sagemaker_client, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TrainingJobStatusCounters"] == {"Completed": 6, "InProgress": 0, "RetryableError": 0,
                                                "NonRetryableError": 0, "Stopped": 0}
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}

    summaries = all_children(sagemaker_client, name)
    assert len(summaries) == 6
    values = {s["TrainingJobName"]: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries}
    for summary in summaries:  # each value is the known function at the job's tuned point
        assert values[summary["TrainingJobName"]] == pytest.approx(known(summary["TunedHyperParameters"]), abs=1e-6)
    best = job["BestTrainingJob"]
    assert best["TrainingJobName"] == min(values, key=values.__getitem__)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == min(values.values())

    children = [sagemaker_client.describe_training_job(TrainingJobName=s["TrainingJobName"]) for s in summaries]
    assert all(c["TuningJobArn"] == arn for c in children)
    assert all(c["HyperParameters"]["_tuning_objective_metric"] == "objective" for c in children)
    assert all(c["HyperParameters"]["target_x"] == "0.73" for c in children)
    intervals = [(c["TrainingStartTime"].timestamp(), c["TrainingEndTime"].timestamp()) for c in children]
    busiest = max(sum(start <= t < end for start, end in intervals) for t, _ in intervals)
    assert busiest <= 2  # MaxParallelTrainingJobs

    listed = sagemaker_client.list_hyper_parameter_tuning_jobs(NameContains=name)["HyperParameterTuningJobSummaries"]
    assert [(s["HyperParameterTuningJobName"], s["Strategy"]) for s in listed] == [(name, "Random")]
    found = sagemaker_client.search(Resource="TrainingJob", SearchExpression={"Filters": [
        {"Name": "TuningJobArn", "Operator": "Equals", "Value": arn}]})["Results"]
    assert len(found) == 6


def start_comparison_job(sagemaker_client: Any, image: str, role_arn: str, bucket: str, strategy: str,
                         seed: int) -> str:
    """A tuning job that ends once its best objective reaches the target (or after 20 trainings)."""
    name = f"cmp-{strategy[:3].lower()}-{seed}-{unique_name('')[1:9]}"
    sagemaker_client.create_hyper_parameter_tuning_job(**tuning_request(
        name, image, role_arn, bucket, strategy, 20, 2, RandomSeed=seed,
        TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 0.01}))
    return name


def trainings_to_reach(sagemaker_client: Any, name: str) -> int:
    """How many trainings the tuning job launched before its best objective reached the target."""
    job = wait_tuning(sagemaker_client, name, timeout=400)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    summaries = sorted(all_children(sagemaker_client, name), key=lambda s: s["CreationTime"])
    for number, summary in enumerate(summaries, 1):
        if summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] <= 0.01:
            return number
    return len(summaries) + 1  # not reached within the budget


@pytest.mark.one_store
def test_bayesian_reaches_the_optimum_in_fewer_trainings_than_random(sagemaker_client: Any, bucket: str,
                                                                     role_arn: str, training_image: str) -> None:
    seeds = (0, 1, 2)
    jobs = {(strategy, seed): start_comparison_job(sagemaker_client, training_image, role_arn, bucket, strategy, seed)
            for strategy in ("Bayesian", "Random") for seed in seeds}  # all six run at once
    bayesian = [trainings_to_reach(sagemaker_client, jobs["Bayesian", s]) for s in seeds]
    random = [trainings_to_reach(sagemaker_client, jobs["Random", s]) for s in seeds]
    print(f"trainings to reach objective <= 0.01: Bayesian {bayesian} (median {statistics.median(bayesian)}), "
          f"Random {random} (median {statistics.median(random)})")
    assert statistics.median(bayesian) < statistics.median(random)


@pytest.mark.one_store
def test_stop_and_bad_definitions(sagemaker_client: Any, logs_client: Any, bucket: str, role_arn: str,
                                  training_image: str) -> None:
    name = unique_name("tune-stop")[:32]
    request = tuning_request(name, training_image, role_arn, bucket, "Random", 4, 1)
    request["TrainingJobDefinition"]["StaticHyperParameters"]["sleep_seconds"] = "30"
    sagemaker_client.create_hyper_parameter_tuning_job(**request)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all_children(sagemaker_client, name):
        time.sleep(0.2)
    # the trainer handles SIGTERM once it runs (before that, a container's PID 1 ignores it)
    wait_log_line(logs_client, all_children(sagemaker_client, name)[0]["TrainingJobName"], "heartbeat 1")
    sagemaker_client.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    job = wait_tuning(sagemaker_client, name, timeout=60)
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    assert [s["TrainingJobStatus"] for s in all_children(sagemaker_client, name)] == ["Stopped"]

    bad = tuning_request(unique_name("tune-bad")[:32], training_image, role_arn, bucket, "Grid", 2, 1)
    with pytest.raises(sagemaker_client.exceptions.ClientError) as grid:
        sagemaker_client.create_hyper_parameter_tuning_job(**bad)
    assert "Grid search tunes categorical ranges only" in str(grid.value)
    bad = tuning_request(unique_name("tune-bad")[:32], training_image, role_arn, bucket, "Random", 2, 1)
    bad["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"] = []
    with pytest.raises(sagemaker_client.exceptions.ClientError) as metric:
        sagemaker_client.create_hyper_parameter_tuning_job(**bad)
    assert "must be one of the MetricDefinitions" in str(metric.value)
