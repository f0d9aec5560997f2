"""DataProcessing: InputFilter, JoinSource and OutputFilter over CSV and JSON records (pure).

SageMaker's pipeline (DG batch-transform-data-processing): ``InputFilter`` selects what the
model sees; the model's output for the record is then joined with the *original* record when
``JoinSource=Input``; ``OutputFilter`` selects what is written. Defaults ``$``, ``None``, ``$``.

* A CSV record is a JSON array of its fields; a join appends the output's fields
  (``[1,2,3]`` + ``[9]`` -> ``[1,2,3,9]``).
* A JSON object record gets the output under ``SageMakerOutput``; any other JSON value becomes
  ``{"SageMakerInput": <input>, "SageMakerOutput": <output>}``.

The JSONPath subset SageMaker documents: ``$``, ``.name``, ``['a','b']``, ``[n]``, ``[n,m]``
(negative indexes allowed), slices ``[start:end]`` with an *inclusive* end as SageMaker's
examples use them (``$[1:]``, ``$[0,5:]``), and ``*``. A filter that selects nothing fails the
record. No library implements SageMaker's dialect (inclusive slices, mixed index and slice
lists), so this is a small evaluator of its own.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

CSV = "text/csv"
JSON_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines")


class FilterError(Exception):
    """A record does not fit a filter, or is not valid CSV/JSON."""


def is_default(expression: str | None) -> bool:
    """Whether a filter is absent or selects everything."""
    return expression in (None, "", "$")


def parse(record: bytes, content_type: str | None) -> Any:
    """A record as JSON: a CSV row becomes an array of its fields, kept as written."""
    text = record.decode("utf-8").strip()
    if _base(content_type) == CSV:
        row = next(csv.reader([text]), [])
        return list(row)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FilterError(f"the record is not valid JSON: {text[:80]!r}") from exc


def render(value: Any, content_type: str | None) -> bytes:
    """A JSON value back in the record's format (CSV: one row)."""
    if _base(content_type) == CSV:
        row = value if isinstance(value, list) else [value]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(["" if v is None else _text(v) for v in row])
        return out.getvalue().encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def select(value: Any, expression: str | None) -> Any:
    """Apply a SageMaker JSONPath expression."""
    if is_default(expression):
        return value
    assert expression is not None
    if not expression.startswith("$"):
        raise FilterError(f"the filter {expression!r} does not start with '$'")
    current = value
    for step in _steps(expression[1:]):
        current = _apply(current, step, expression)
    return current


def join(original: Any, output: Any) -> Any:
    """JoinSource=Input: the original record with the model's output joined to it."""
    if isinstance(original, list):
        return original + (output if isinstance(output, list) else [output])
    if isinstance(original, dict):
        return {**original, "SageMakerOutput": output}
    return {"SageMakerInput": original, "SageMakerOutput": output}


_STEP = re.compile(r"\.(\*|[A-Za-z_][\w-]*)|\[([^\]]*)\]")


def _steps(path: str) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    position = 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise FilterError(f"unsupported JSONPath syntax at {path[position:]!r}")
        steps.append(("name", match.group(1)) if match.group(1) is not None else ("bracket", match.group(2)))
        position = match.end()
    return steps


def _apply(value: Any, step: tuple[str, str], expression: str) -> Any:
    kind, text = step
    if kind == "name":
        if text == "*":
            return list(value.values()) if isinstance(value, dict) else value
        if not isinstance(value, dict) or text not in value:
            raise FilterError(f"the filter {expression!r} selects '{text}', which the record does not have")
        return value[text]
    parts = [p.strip() for p in text.split(",")]
    if all(p[:1] in ("'", '"') for p in parts):
        if not isinstance(value, dict):
            raise FilterError(f"the filter {expression!r} selects names from a record that is not an object")
        names = [p[1:-1] for p in parts]
        missing = [n for n in names if n not in value]
        if missing:
            raise FilterError(f"the filter {expression!r} selects {missing}, which the record does not have")
        return {n: value[n] for n in names}
    if parts == ["*"]:
        return value
    if not isinstance(value, list):
        raise FilterError(f"the filter {expression!r} indexes a record that is not an array")
    picked: list[Any] = []
    for part in parts:
        picked += _index(value, part, expression)
    if len(parts) == 1 and ":" not in parts[0]:
        return picked[0]
    return picked


def _index(value: list[Any], part: str, expression: str) -> list[Any]:
    size = len(value)
    try:
        if ":" in part:
            low, _, high = part.partition(":")
            start = int(low) if low.strip() else 0
            end = int(high) if high.strip() else size - 1
            start, end = (start + size if start < 0 else start), (end + size if end < 0 else end)
            return value[start:end + 1]  # SageMaker's slices include their end
        index = int(part)
    except ValueError as exc:
        raise FilterError(f"the filter {expression!r} has an invalid index {part!r}") from exc
    if not -size <= index < size:
        raise FilterError(f"the filter {expression!r} selects index {index} of a record of {size} fields")
    return [value[index]]


def _base(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
