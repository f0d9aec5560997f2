"""Tuning's parameter space and strategies, without containers (the integration tests run real jobs)."""

from __future__ import annotations

import statistics

import pytest

from emulator.errors import ValidationException
from emulator.tuning import children as ch
from emulator.tuning.search import Searcher, grid_size, parameters

SPACE = {"ContinuousParameterRanges": [{"Name": "opt_x", "MinValue": "0", "MaxValue": "1"},
                                       {"Name": "opt_y", "MinValue": "0", "MaxValue": "1"}]}


def known(point: dict[str, str]) -> float:
    return (float(point["opt_x"]) - 0.73) ** 2 + (float(point["opt_y"]) - 0.21) ** 2


def trainings_to_reach(strategy: str, seed: int, target: float = 0.01, budget: int = 30) -> int:
    searcher = Searcher(strategy, parameters(SPACE), True, seed)
    for number in range(1, budget + 1):
        trial, point = searcher.ask()
        value = known(point)
        searcher.tell(trial, value)
        if value <= target:
            return number
    return budget + 1


def test_bayesian_needs_fewer_trainings_than_random_median_over_seeds() -> None:
    bayesian = [trainings_to_reach("Bayesian", seed) for seed in range(9)]
    random = [trainings_to_reach("Random", seed) for seed in range(9)]
    assert statistics.median(bayesian) < statistics.median(random)


def test_scaling_types_and_integer_and_categorical_values() -> None:
    params = parameters({
        "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Auto"},
                                      {"Name": "m", "MinValue": "0.9", "MaxValue": "0.999",
                                       "ScalingType": "ReverseLogarithmic"}],
        "IntegerParameterRanges": [{"Name": "depth", "MinValue": "2", "MaxValue": "9"}],
        "CategoricalParameterRanges": [{"Name": "kernel", "Values": ["rbf", "linear"]}],
    })
    scaling = {p.name: p.scaling for p in params}
    assert (scaling["lr"], scaling["m"], scaling["depth"]) == ("Logarithmic", "ReverseLogarithmic", "Linear")
    searcher = Searcher("Random", params, True, 3)
    for _ in range(20):
        trial, point = searcher.ask()
        assert 0.0001 <= float(point["lr"]) <= 1 and 0.9 <= float(point["m"]) <= 0.999
        assert point["depth"].isdigit() and 2 <= int(point["depth"]) <= 9
        assert point["kernel"] in ("rbf", "linear")
        searcher.tell(trial, 1.0)
    with pytest.raises(ValidationException, match="Logarithmic scaling needs a MinValue above 0"):
        parameters({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1",
                                                   "ScalingType": "Logarithmic"}]})


def test_grid_visits_every_combination_once() -> None:
    params = parameters({"CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2", "3"]},
                                                        {"Name": "b", "Values": ["x", "y"]}]})
    searcher = Searcher("Grid", params, True, None)
    points = []
    while not searcher.exhausted:
        trial, point = searcher.ask()
        points.append((point["a"], point["b"]))
        searcher.tell(trial, 0.0)
    assert grid_size(params) == 6 and sorted(points) == sorted({(a, b) for a in "123" for b in "xy"})


def test_median_rule_stops_a_job_worse_than_the_others_at_the_same_epoch() -> None:
    searcher = Searcher("Random", parameters(SPACE), True, 0, early_stopping=True)
    for _ in range(3):
        trial, _point = searcher.ask()
        for step in (1, 2, 3):
            assert not searcher.report(trial, step, 1.0 / step)
        searcher.tell(trial, 1.0 / 3)
    trial, _point = searcher.ask()
    assert not searcher.report(trial, 1, 0.9)
    assert searcher.report(trial, 2, 5.0)  # far worse than the median 0.5 at epoch 2


def test_best_training_job_and_counters() -> None:
    def summary(name: str, status: str, value: float | None) -> dict[str, object]:
        found: dict[str, object] = {"TrainingJobName": name, "TrainingJobStatus": status,
                                    "ObjectiveStatus": "Succeeded" if value is not None else "Failed"}
        if value is not None:
            found["FinalHyperParameterTuningJobObjectiveMetric"] = {"Type": "Minimize", "MetricName": "m",
                                                                    "Value": value}
        return found
    summaries = [summary("a", "Completed", 0.5), summary("b", "Stopped", 0.25), summary("c", "Failed", None)]
    assert ch.best(summaries)["TrainingJobName"] == "b"  # type: ignore[index]
    training, objective = ch.counters(summaries)
    assert training == {"Completed": 1, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 1, "Stopped": 1}
    assert objective == {"Succeeded": 2, "Pending": 0, "Failed": 1}
