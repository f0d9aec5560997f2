"""The search of a tuning job: its parameter space and the strategy that picks the next point.

Search strategies are optuna's, driven through its ask-and-tell interface so that training
jobs, not a Python function, evaluate each point:

* ``Random``: optuna's RandomSampler; ``Bayesian``: its TPE sampler (a tree-structured Parzen
  estimator, with the "constant liar" for points still being trained when several run in
  parallel); ``Grid``: every combination of the categorical values, in order;
  ``Hyperband``: TPE with optuna's HyperbandPruner, which stops jobs whose intermediate
  objective falls behind at each resource level (epochs, from MinResource to MaxResource).
* ``TrainingJobEarlyStoppingType=Auto`` (Random, Bayesian): a median stopping rule (optuna's
  MedianPruner), SageMaker's documented behaviour: a job whose objective at an epoch is worse
  than the median of earlier jobs at the same epoch is stopped.
* Ranges: ``Linear`` uniform, ``Logarithmic`` uniform in log space, ``ReverseLogarithmic``
  uniform in log(1 - x) (continuous ranges in [0, 1)), and ``Auto`` logarithmic when a range
  with a positive minimum spans three orders of magnitude or more, else linear. Integers
  stay integers; categorical values are strings.

``RandomSeed`` makes a tuning job's sequence of points repeatable.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from emulator.errors import ValidationException

INTEGER, CONTINUOUS, CATEGORICAL = "Integer", "Continuous", "Categorical"


@dataclass(frozen=True)
class Parameter:
    """One tuned hyperparameter."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"
    values: tuple[str, ...] = ()


def parameters(ranges: dict[str, Any] | None) -> list[Parameter]:
    """The tuned parameters of ``ParameterRanges``; raises ValidationException for a bad range."""
    found: list[Parameter] = []
    ranges = ranges or {}
    for kind, key in ((INTEGER, "IntegerParameterRanges"), (CONTINUOUS, "ContinuousParameterRanges")):
        for item in ranges.get(key) or []:
            try:
                low, high = float(item["MinValue"]), float(item["MaxValue"])
            except ValueError as exc:
                raise ValidationException(f"{key} {item['Name']}: MinValue and MaxValue must be numbers.") from exc
            if kind == INTEGER and (low != int(low) or high != int(high)):
                raise ValidationException(f"{key} {item['Name']}: MinValue and MaxValue must be integers.")
            if low > high:
                raise ValidationException(f"{key} {item['Name']}: MinValue must not be greater than MaxValue.")
            scaling = _scaling(item.get("ScalingType", "Auto"), low, high)
            if scaling == "Logarithmic" and low <= 0:
                raise ValidationException(f"{key} {item['Name']}: Logarithmic scaling needs a MinValue above 0.")
            if scaling == "ReverseLogarithmic" and (kind == INTEGER or low < 0 or high >= 1):
                raise ValidationException(f"{key} {item['Name']}: ReverseLogarithmic scaling is only valid for "
                                          "continuous ranges within [0, 1).")
            found.append(Parameter(item["Name"], kind, low, high, scaling))
    for item in ranges.get("CategoricalParameterRanges") or []:
        found.append(Parameter(item["Name"], CATEGORICAL, values=tuple(item["Values"])))
    names = [p.name for p in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationException(f"ParameterRanges: each hyperparameter may have one range; repeated: "
                                  f"{', '.join(duplicates)}.")
    return found


def _scaling(scaling: str, low: float, high: float) -> str:
    if scaling != "Auto":
        return scaling
    return "Logarithmic" if low > 0 and high / low >= 1000 else "Linear"


def grid_size(params: list[Parameter]) -> int:
    """How many points a Grid search has (only categorical ranges are allowed)."""
    return math.prod(len(p.values) for p in params)


def _distribution(param: Parameter) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if param.kind == CATEGORICAL:
        return CategoricalDistribution(list(param.values))
    if param.kind == INTEGER:
        return IntDistribution(int(param.low), int(param.high), log=param.scaling == "Logarithmic")
    if param.scaling == "ReverseLogarithmic":  # sample y = 1 - x on a log scale
        return FloatDistribution(1.0 - param.high, 1.0 - param.low, log=True)
    return FloatDistribution(param.low, param.high, log=param.scaling == "Logarithmic")


def _as_text(param: Parameter, value: Any) -> str:
    if param.kind == CATEGORICAL:
        return str(value)
    if param.kind == INTEGER:
        return str(int(value))
    number = 1.0 - float(value) if param.scaling == "ReverseLogarithmic" else float(value)
    return repr(number)


class Searcher:
    """Proposes hyperparameters and learns from the objective values of finished jobs."""

    def __init__(self, strategy: str, params: list[Parameter], minimize: bool, seed: int | None,
                 early_stopping: bool = False, min_resource: int = 1, max_resource: int = 1) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.strategy = strategy
        self.params = params
        self._grid: list[dict[str, str]] | None = None
        sampler: Any
        if strategy == "Grid":
            self._grid = [dict(zip([p.name for p in params], combo))
                          for combo in itertools.product(*(p.values for p in params))]
            sampler = optuna.samplers.RandomSampler(seed=seed)
        elif strategy == "Random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=5)
        pruner: Any = optuna.pruners.NopPruner()
        self._prunes = strategy == "Hyperband" or (early_stopping and strategy != "Grid")
        if strategy == "Hyperband":
            pruner = optuna.pruners.HyperbandPruner(min_resource=min_resource, max_resource=max_resource)
        elif early_stopping:
            pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
        self.study = optuna.create_study(direction="minimize" if minimize else "maximize", sampler=sampler,
                                         pruner=pruner)
        self._distributions = {p.name: _distribution(p) for p in params}
        self._asked = 0

    @property
    def grid_points(self) -> int:
        """How many points a Grid search has (0 for other strategies)."""
        return len(self._grid) if self._grid is not None else 0

    @property
    def prunes(self) -> bool:
        """Whether running jobs are judged on their intermediate objective (early stopping, Hyperband)."""
        return self._prunes

    @property
    def exhausted(self) -> bool:
        """Whether a Grid search has proposed every point."""
        return self._grid is not None and self._asked >= len(self._grid)

    def ask(self) -> tuple[Any, dict[str, str]]:
        """The next trial and its hyperparameters as SageMaker passes them (strings)."""
        if self._grid is not None:
            point = self._grid[self._asked]
            trial = self.study.ask()
            self._asked += 1
            return trial, dict(point)
        trial = self.study.ask(self._distributions)
        self._asked += 1
        return trial, {p.name: _as_text(p, trial.params[p.name]) for p in self.params}

    def report(self, trial: Any, step: int, value: float) -> bool:
        """An intermediate objective value; True when the job should be stopped early."""
        if self._grid is not None:
            return False
        trial.report(value, step)
        return bool(trial.should_prune())

    def tell(self, trial: Any, value: float | None, pruned: bool = False) -> None:
        """The job's final objective (None: it failed or reported none)."""
        import optuna

        if value is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif pruned:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, value)

    def seed(self, hyperparameters: dict[str, str], value: float) -> None:
        """Warm start: what a parent tuning job learned at one point."""
        import optuna

        try:
            params = {p.name: _point_value(p, hyperparameters[p.name]) for p in self.params}
        except (KeyError, ValueError):
            return
        self.study.add_trial(optuna.trial.create_trial(params=params, distributions=self._distributions, value=value))


def _point_value(param: Parameter, text: str) -> Any:
    if param.kind == CATEGORICAL:
        if text not in param.values:
            raise ValueError(text)
        return text
    number = float(text)
    if not param.low <= number <= param.high:
        raise ValueError(text)
    if param.kind == INTEGER:
        return int(number)
    return 1.0 - number if param.scaling == "ReverseLogarithmic" else number
