"""Read-only views of what the emulator runs, for the dashboard and the CLI.

:class:`Observer` builds plain JSON-ready dicts from the store's Describe-shaped records,
CloudWatch Logs and metrics (moto's backends in this process) and the views hosting puts on
the platform (``endpoint-fleet``, ``endpoint-models``). Every kind is handled through
:mod:`.kinds`; nothing here knows a kind by name.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from emulator import __version__, cloudwatch
from emulator.observe.kinds import KINDS, Kind, find_kind, region_and_account

Record = dict[str, Any]
LOG_PAGE = 2000
"""Most events one logs call returns per stream."""
TIME_UNITS = frozenset({"Microseconds", "Milliseconds", "Seconds"})


class UnknownKind(ValueError):
    """A kind the views do not know."""


def encode_cursor(positions: Mapping[str, int]) -> str:
    """An opaque cursor: how many events of each stream were already returned."""
    if not positions:
        return ""
    return base64.urlsafe_b64encode(json.dumps(dict(positions), sort_keys=True).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, int]:
    """The positions in a cursor ({} for none); ValueError for one that is not ours."""
    if not cursor:
        return {}
    try:
        positions = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a logs cursor of this emulator") from exc
    if not isinstance(positions, dict) or not all(isinstance(v, int) and v >= 0 for v in positions.values()):
        raise ValueError("not a logs cursor of this emulator")
    return {str(k): int(v) for k, v in positions.items()}


def summary(kind: Kind, record: Mapping[str, Any]) -> Record:
    """One line of ``smemu status`` / the dashboard's tables."""
    item: Record = {
        "Kind": kind.key,
        "Name": kind.name(record),
        "Arn": record.get(kind.arn_field),
        "Status": kind.status(record),
        "Terminal": kind.is_terminal(record),
        "CreationTime": record.get("CreationTime"),
        "LastModifiedTime": record.get("LastModifiedTime"),
    }
    if kind.secondary_field and record.get(kind.secondary_field):
        item["SecondaryStatus"] = record[kind.secondary_field]
    if record.get(kind.failure_field):
        item["FailureReason"] = record[kind.failure_field]
    for key, field in (("StartTime", kind.started_field), ("EndTime", kind.ended_field)):
        if field and record.get(field) is not None:
            item[key] = record[field]
    instances = kind.instances(record)
    if instances:
        item["Instances"] = instances
    return item


def _newest_first(item: Record) -> float:
    return -float(item.get("CreationTime") or 0)


class Observer:
    """The views, over one platform's store and settings."""

    def __init__(self, store: Any, settings: Any, views: Mapping[str, Callable[[str], Any]] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.views = views if views is not None else {}

    # -- the whole emulator -------------------------------------------------------------------

    def emulator(self) -> Record:
        """Where this emulator runs and keeps its state."""
        s = self.settings
        return {
            "Version": __version__,
            "Home": str(s.home),
            "EndpointUrl": s.endpoint_url,
            "Host": s.host,
            "Port": s.port,
            "Region": s.region,
            "AccountId": s.account_id,
            "S3": {"minio": f"MinIO run by the emulator ({s.s3_data_dir})", "memory": "in memory, NOT durable",
                   "external": s.s3_endpoint}.get(s.s3_kind, s.s3_kind),
            "Dashboard": f"{s.endpoint_url}/_smemu/",
            "Pid": os.getpid(),
        }

    def status(self) -> Record:
        """Every job and endpoint, newest first, with each endpoint's fleet."""
        jobs, endpoints = [], []
        for kind in KINDS:
            for record in self.store.list(kind.key):
                item = summary(kind, record)
                if kind.is_job:
                    jobs.append(item)
                else:
                    item["Fleet"] = self._view("endpoint-fleet", item["Name"])
                    item["Invocations"] = self._invocations(kind, record)
                    endpoints.append(item)
        return {
            "Emulator": self.emulator(),
            "Jobs": sorted(jobs, key=_newest_first),
            "Endpoints": sorted(endpoints, key=_newest_first),
        }

    # -- one resource -------------------------------------------------------------------------

    def kind(self, name: str) -> Kind:
        """The kind called ``name``; UnknownKind otherwise."""
        kind = find_kind(name)
        if kind is None:
            known = ", ".join(k.key for k in KINDS)
            raise UnknownKind(f"unknown kind {name!r} (known: {known})")
        return kind

    def record(self, kind: Kind, name: str) -> Record | None:
        """The resource's Describe-shaped record, or None."""
        found = self.store.get(kind.key, name)
        return dict(found) if found is not None else None

    def resource(self, kind_name: str, name: str) -> Record | None:
        """Everything the dashboard shows about one resource (None when it does not exist)."""
        kind = self.kind(kind_name)
        record = self.record(kind, name)
        if record is None:
            return None
        view: Record = {**summary(kind, record), "Label": kind.label, "Describe": record}
        view["Timeline"] = list(record.get(kind.timeline_field) or []) if kind.timeline_field else []
        view["LogStreams"] = [{"Group": g, "Stream": s} for g, s, _region, _account in self._streams(kind, record)]
        children = self._children(kind, record)
        if children:
            child_kind = self.kind(kind.children[0]) if kind.children else kind
            view["Children"] = [summary(child_kind, child) for child in children]
        if not kind.is_job:
            view["Fleet"] = self._view("endpoint-fleet", kind.name(record))
            view["Models"] = self._view("endpoint-models", kind.name(record))
            view["Invocations"] = self._invocations(kind, record)
        return view

    def logs(self, kind_name: str, name: str, cursor: str | None = None, limit: int = LOG_PAGE) -> Record | None:
        """New log events of a resource since ``cursor``, oldest first, with its status.

        ``Terminal`` says the resource will write nothing more: a follower that has read up to
        the returned cursor after seeing it is done.
        """
        kind = self.kind(kind_name)
        record = self.record(kind, name)
        if record is None:
            return None
        positions = decode_cursor(cursor)
        terminal = kind.is_terminal(record)  # read before the events, so none written after it are missed
        events: list[tuple[float, str, str]] = []
        for group, stream, region, account in self._streams(kind, record):
            start = positions.get(stream, 0)
            new = cloudwatch.read_events(account, region, group, stream, start, limit)
            positions[stream] = start + len(new)
            events.extend((ts, stream, message) for ts, message in new)
        events.sort(key=lambda e: e[0])
        return {
            "Kind": kind.key,
            "Name": kind.name(record),
            "Status": kind.status(record),
            "SecondaryStatus": record.get(kind.secondary_field) if kind.secondary_field else None,
            "FailureReason": record.get(kind.failure_field),
            "Terminal": terminal,
            "Events": [{"Timestamp": ts, "Stream": stream, "Message": message} for ts, stream, message in events],
            "Cursor": encode_cursor(positions),
        }

    def metrics(self, kind_name: str, name: str) -> Record | None:
        """The resource's CloudWatch metrics as series of ``[epoch seconds, value]`` points."""
        kind = self.kind(kind_name)
        record = self.record(kind, name)
        if record is None:
            return None
        owners = self._children(kind, record) if kind.children else [record]
        owner_kind = self.kind(kind.children[0]) if kind.children else kind
        series: dict[tuple[str, str], Record] = {}
        for owner in owners:
            if not owner_kind.metric_namespace or not owner_kind.metric_dimension:
                continue
            region, account = region_and_account(owner[owner_kind.arn_field])
            points = cloudwatch.metric_points(account, region, owner_kind.metric_namespace,
                                              {owner_kind.metric_dimension: owner_kind.name(owner)})
            for point in points:
                dims = point.dimensions
                label = " ".join(v for k, v in sorted(dims.items()) if k != owner_kind.metric_dimension)
                if kind.children:
                    label = owner_kind.name(owner) + (f" {label}" if label else "")
                entry = series.setdefault((point.name, label), {"MetricName": point.name, "Label": label,
                                                                "Unit": point.unit, "Points": [], "SampleCount": 0.0})
                # A time is shown as its mean; anything else (counts) as its sum per datapoint.
                value = point.mean if point.unit in TIME_UNITS else point.total
                entry["Points"].append([point.timestamp, value])
                entry["SampleCount"] += point.samples
        return {"Kind": kind.key, "Name": kind.name(record), "Series": list(series.values())}

    # -- helpers --------------------------------------------------------------------------------

    def _view(self, view: str, name: str) -> Any:
        found = self.views.get(view)
        return found(name) if found is not None else None

    def _children(self, kind: Kind, record: Record) -> list[Record]:
        if kind.children is None:
            return []
        child_kind, field = kind.children
        arn = str(record.get(kind.arn_field, "")).lower()
        return [child for child in self.store.list(child_kind) if str(child.get(field, "")).lower() == arn]

    def _streams(self, kind: Kind, record: Record) -> list[tuple[str, str, str, str]]:
        """``(group, stream, region, account)`` of every log stream of the resource (its children's
        for a tuning job)."""
        if kind.children is not None:
            child_kind = self.kind(kind.children[0])
            return [s for child in self._children(kind, record) for s in self._streams(child_kind, child)]
        name = kind.name(record)
        group = kind.group_for(name)
        if group is None or not record.get(kind.arn_field):
            return []
        region, account = region_and_account(record[kind.arn_field])
        return [(group, stream, region, account)
                for stream in cloudwatch.stream_names(account, region, group, kind.prefix_for(name))]

    def _invocations(self, kind: Kind, record: Record) -> Record:
        """Invocation count, errors and mean ModelLatency per variant, from CloudWatch metrics."""
        if not kind.metric_namespace or not kind.metric_dimension or not record.get(kind.arn_field):
            return {}
        region, account = region_and_account(record[kind.arn_field])
        per_variant: dict[str, Record] = {}
        for point in cloudwatch.metric_points(account, region, kind.metric_namespace,
                                              {kind.metric_dimension: kind.name(record)}):
            entry = per_variant.setdefault(point.dimensions.get("VariantName", ""), {
                "Invocations": 0, "Invocation4XXErrors": 0, "Invocation5XXErrors": 0,
                "ModelLatencyMeanMs": None, "_latency": [0.0, 0.0]})
            if point.name in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors"):
                entry[point.name] += round(point.total)
            elif point.name == "ModelLatency":
                entry["_latency"][0] += point.total
                entry["_latency"][1] += point.samples
        for entry in per_variant.values():
            total, samples = entry.pop("_latency")
            if samples:
                entry["ModelLatencyMeanMs"] = round(total / samples / 1000.0, 3)
        return per_variant
