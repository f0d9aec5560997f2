"""List* of models, endpoint configurations and endpoints: filters, sort order and pages.

SageMaker's list calls share one grammar (NameContains, CreationTimeBefore/After,
LastModifiedTimeBefore/After, StatusEquals, SortBy Name|CreationTime|Status, SortOrder
default Descending, MaxResults default 10, NextToken), so one pure function serves all three.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from emulator.errors import ValidationException

DEFAULT_MAX_RESULTS = 10


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return float(value.timestamp())
    return float(value)


def list_page(
    records: list[dict[str, Any]],
    request: dict[str, Any],
    name_key: str,
    status_key: str | None = None,
    summary: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of summaries and the token of the next page (None on the last)."""
    chosen = records
    if request.get("NameContains"):
        needle = request["NameContains"].lower()
        chosen = [r for r in chosen if needle in r[name_key].lower()]
    for field, key, before in (
        ("CreationTimeBefore", "CreationTime", True),
        ("CreationTimeAfter", "CreationTime", False),
        ("LastModifiedTimeBefore", "LastModifiedTime", True),
        ("LastModifiedTimeAfter", "LastModifiedTime", False),
    ):
        if request.get(field) is not None:
            limit = _epoch(request[field])
            chosen = [r for r in chosen if (r.get(key, 0) < limit if before else r.get(key, 0) > limit)]
    if status_key and request.get("StatusEquals"):
        chosen = [r for r in chosen if r.get(status_key) == request["StatusEquals"]]
    sort_by = request.get("SortBy", "CreationTime")
    sort_key: Callable[[dict[str, Any]], Any]
    if sort_by == "Name":
        sort_key = lambda r: r[name_key]
    elif sort_by == "Status" and status_key:
        sort_key = lambda r: r.get(status_key, "")
    else:
        sort_key = lambda r: r.get("CreationTime", 0)
    chosen = sorted(chosen, key=sort_key, reverse=request.get("SortOrder", "Descending") == "Descending")
    token = request.get("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise ValidationException(f"Invalid pagination token: {token!r}.") from None
    size = int(request.get("MaxResults") or DEFAULT_MAX_RESULTS)
    page = chosen[start : start + size]
    following = start + size
    return [summary(r) for r in page], (str(following) if following < len(chosen) else None)
