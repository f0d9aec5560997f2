"""Search over the resources the platform runs: training and tuning jobs, endpoints, models.

``Search`` takes a resource type and a SearchExpression (Filters, NestedFilters,
SubExpressions joined by And/Or) over property paths of the resource's record, as AWS
evaluates them: ``TrainingJobName``, ``TrainingJobStatus``, ``HyperParameters.<name>``,
``Metrics.<name>`` (a training job's FinalMetricDataList), ``Tags.<key>``, nested members
with dots (``ResourceConfig.InstanceType``). Operators: Equals, NotEquals, GreaterThan(OrEqualTo),
LessThan(OrEqualTo), Contains, Exists, NotExists, In. Other resource types (experiments, model
packages, ...) are moto's: the handler raises NotImplementedError and the gateway hands them on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from emulator.context import CallContext
from emulator.errors import ValidationException
from emulator.store import Store

#: Search resource -> (store kind, ARN member, SearchRecord member).
RESOURCES: dict[str, tuple[str, str, str]] = {
    "TrainingJob": ("training-job", "TrainingJobArn", "TrainingJob"),
    "HyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJobArn",
                                "HyperParameterTuningJob"),
    "Endpoint": ("endpoint", "EndpointArn", "Endpoint"),
    "Model": ("model", "ModelArn", "Model"),
}
_DEFAULT_SORT = "CreationTime"


class SearchService:
    """The Search operation for platform-owned resource types."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self) -> None:
        """Nothing to re-adopt: records only."""

    def stop(self) -> None:
        """No background work."""

    def search(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Matching records, sorted and paged; a resource type the platform does not own goes to moto."""
        resource = request["Resource"]
        if resource not in RESOURCES:
            raise NotImplementedError(resource)
        kind, arn_key, member = RESOURCES[resource]
        expression = request.get("SearchExpression") or {}
        found = []
        for record in self.store.list(kind):
            entity = dict(record)
            arn = str(record.get(arn_key, ""))
            entity["Tags"] = self.store.list_tags(arn.lower())
            if matches(entity, expression):
                found.append(entity)
        sort_by = request.get("SortBy") or _DEFAULT_SORT
        found.sort(key=lambda e: _sort_key(_values(e, sort_by)), reverse=request.get("SortOrder", "Descending") ==
                   "Descending")
        start = _offset(request.get("NextToken"))
        size = int(request.get("MaxResults") or 10)
        page = found[start:start + size]
        answer: dict[str, Any] = {"Results": [{member: e} for e in page]}
        if start + size < len(found):
            answer["NextToken"] = str(start + size)
        return answer


def matches(entity: dict[str, Any], expression: dict[str, Any]) -> bool:
    """Whether an entity satisfies a SearchExpression (an empty one matches everything)."""
    results = [_filter(entity, f) for f in expression.get("Filters") or []]
    for nested in expression.get("NestedFilters") or []:
        items = _values(entity, nested["NestedPropertyName"])
        flat = [i for v in items for i in (v if isinstance(v, list) else [v])]
        prefix = nested["NestedPropertyName"] + "."
        results.append(any(all(_filter(item, {**f, "Name": f["Name"].removeprefix(prefix)})
                                for f in nested.get("Filters") or []) for item in flat if isinstance(item, dict)))
    results += [matches(entity, sub) for sub in expression.get("SubExpressions") or []]
    if not results:
        return True
    return any(results) if expression.get("Operator") == "Or" else all(results)


def _values(entity: Any, path: str) -> list[Any]:
    """Every value at a dotted property path (lists fan out; Metrics and Tags are maps by name)."""
    current = [entity]
    for part in path.split("."):
        following: list[Any] = []
        for value in current:
            if isinstance(value, dict):
                if part == "Metrics" and "FinalMetricDataList" in value:
                    following.append({m["MetricName"]: m["Value"] for m in value["FinalMetricDataList"]})
                elif part == "Tags" and isinstance(value.get("Tags"), list):
                    following.append({t["Key"]: t.get("Value", "") for t in value["Tags"]})
                elif part in value:
                    following.append(value[part])
            elif isinstance(value, list):
                following += [v[part] for v in value if isinstance(v, dict) and part in v]
        current = following
    return current


def _filter(entity: dict[str, Any], condition: dict[str, Any]) -> bool:
    operator = condition.get("Operator", "Equals")
    values = _values(entity, condition["Name"])
    if operator == "Exists":
        return bool(values)
    if operator == "NotExists":
        return not values
    wanted = condition.get("Value")
    if wanted is None:
        raise ValidationException(f"Filter {condition['Name']} with operator {operator} needs a Value.")
    if operator == "NotEquals":
        return all(not _compare(v, wanted, "Equals") for v in values)
    return any(_compare(v, wanted, operator) for v in values)


def _compare(value: Any, wanted: str, operator: str) -> bool:
    if operator == "Contains":
        return wanted.lower() in str(value).lower()
    if operator == "In":
        return str(value) in [w.strip() for w in wanted.split(",")]
    left, right = _comparable(value, wanted)
    return {"Equals": left == right, "GreaterThan": left > right, "GreaterThanOrEqualTo": left >= right,
            "LessThan": left < right, "LessThanOrEqualTo": left <= right}.get(operator, False)


def _comparable(value: Any, wanted: str) -> tuple[Any, Any]:
    """Numbers compare as numbers, timestamps (epoch seconds in records) with ISO or epoch values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(str(value)), float(wanted)
        except ValueError:
            return str(value), wanted
    try:
        return float(value), float(wanted)
    except ValueError:
        return float(value), dt.datetime.fromisoformat(wanted.replace("Z", "+00:00")).timestamp()


def _sort_key(values: list[Any]) -> tuple[int, Any]:
    if not values:
        return (0, "")
    value = values[0]
    return (1, float(value)) if isinstance(value, (int, float)) else (2, str(value))


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise ValidationException(f"Invalid pagination token: {token!r}.")
    return int(token)
