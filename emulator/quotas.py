"""Per-instance-type quotas, as AWS Service Quotas applies them to SageMaker.

On AWS every instance type has an account-level quota per usage (``ml.m5.large for training
job usage``, ``... for endpoint usage``, ...), checked when the job or endpoint is created: a
request past it is refused at once with ResourceLimitExceeded, before anything is planned.
The emulator does the same, so that ``InstanceCount=100000`` is a prompt error rather than
100,000 hosts planned in the request thread, and so that a test that needs more instances
than an account would have fails here first.

``SMEMU_INSTANCE_QUOTAS`` sets them: comma-separated ``[usage/]type=count`` entries, where
usage is ``training``, ``endpoint``, ``processing`` or ``transform`` (none: every usage) and
type is an instance type or ``*`` (every type). The most specific entry wins. Without a
setting every quota is :data:`DEFAULT_QUOTA`.

Services call :func:`check_instance_quota` with what the request asks for and what their
running jobs or endpoints already use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from emulator.errors import ResourceLimitExceeded

SETTING = "SMEMU_INSTANCE_QUOTAS"
DEFAULT_QUOTA = 20
"""Instances of one type per usage when the setting says nothing (a generous local machine)."""
USAGES = {
    "training": "training job usage",
    "endpoint": "endpoint usage",
    "processing": "processing job usage",
    "transform": "transform job usage",
}
"""Usage keys and the words AWS uses in the quota's name."""

Quotas = tuple[tuple[str, str, int], ...]
"""``(usage or "*", instance type or "*", count)`` entries, as parsed from the setting."""


def parse_quotas(text: str) -> Quotas:
    """The entries of ``SMEMU_INSTANCE_QUOTAS``; a malformed one stops the start with a clear error."""
    entries: list[tuple[str, str, int]] = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        target, sep, count = raw.partition("=")
        usage, slash, kind = target.strip().rpartition("/")
        usage = usage.strip() if slash else "*"
        kind = kind.strip()
        if not sep or not kind or (usage != "*" and usage not in USAGES):
            raise ValueError(f"{SETTING}: {raw!r} is not [usage/]type=count (usage one of "
                             f"{', '.join(USAGES)}; type an instance type or *)")
        try:
            number = int(count)
        except ValueError:
            raise ValueError(f"{SETTING}: {raw!r}: the count must be a whole number") from None
        if number < 0:
            raise ValueError(f"{SETTING}: {raw!r}: the count cannot be negative")
        entries.append((usage, kind, number))
    return tuple(entries)


def quota_for(quotas: Quotas, usage: str, instance_type: str) -> int:
    """The quota of one type for one usage: the most specific entry, else :data:`DEFAULT_QUOTA`."""
    best: tuple[int, int] | None = None
    for entry_usage, entry_type, count in quotas:
        if entry_usage not in ("*", usage) or entry_type not in ("*", instance_type):
            continue
        rank = (entry_type != "*") * 2 + (entry_usage != "*")
        if best is None or rank >= best[0]:
            best = (rank, count)
    return DEFAULT_QUOTA if best is None else best[1]


def count_by_type(pairs: Iterable[tuple[str | None, int]]) -> dict[str, int]:
    """``{instance type: instances}`` from ``(type, count)`` pairs (None types, serverless, skipped)."""
    totals: dict[str, int] = {}
    for instance_type, count in pairs:
        if instance_type:
            totals[instance_type] = totals.get(instance_type, 0) + int(count)
    return totals


def check_instance_quota(quotas: Quotas, usage: str, requested: Mapping[str, int],
                         in_use: Mapping[str, int]) -> None:
    """ResourceLimitExceeded, in AWS's words, when a request would take a type past its quota."""
    for instance_type, delta in sorted(requested.items()):
        limit = quota_for(quotas, usage, instance_type)
        current = int(in_use.get(instance_type, 0))
        if current + delta > limit:
            raise ResourceLimitExceeded(
                f"The account-level service limit '{instance_type} for {USAGES[usage]}' is {limit} Instances, "
                f"with current utilization of {current} Instances and a request delta of {delta} Instances. "
                "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is "
                "not available, contact AWS support to request an increase for this quota. (sagemaker-emulator: "
                f"the quota is set by {SETTING})"
            )


def check_jobs_quota(quotas: Quotas, usage: str, wanted: Iterable[tuple[str | None, int]],
                     running: Iterable[Iterable[tuple[str | None, int]]]) -> None:
    """:func:`check_instance_quota` for a job: ``wanted`` ``(type, count)`` pairs against those of running jobs."""
    in_use = count_by_type(pair for pairs in running for pair in pairs)
    check_instance_quota(quotas, usage, count_by_type(wanted), in_use)
