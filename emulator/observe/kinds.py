"""The kinds of resource the emulator runs, as one table of data.

Each store kind that is also an ARN resource type (``training-job``, ``endpoint``, ...) says
where its name, status, failure reason and timeline live in its Describe-shaped record, where
SageMaker writes its logs and metrics, and which statuses are final. ``smemu status``, ``smemu
logs`` and the dashboard read only this table, so a kind whose records appear in the store is
shown without code of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FINISHED_JOB = frozenset({"Completed", "Failed", "Stopped"})


@dataclass(frozen=True)
class Kind:
    """Where a kind's facts are in its record, and where SageMaker puts its logs and metrics."""

    key: str
    """The store kind, which is also the ARN resource type (``training-job``)."""
    label: str
    """What a person calls it (``training job``)."""
    cli_name: str
    """``smemu logs --kind`` spelling (``training``)."""
    name_field: str
    arn_field: str
    status_field: str
    terminal: frozenset[str]
    """Statuses after which nothing more happens (``smemu logs -f`` stops there)."""
    is_job: bool = True
    secondary_field: str | None = None
    timeline_field: str | None = None
    """A list of ``{Status, StartTime, EndTime, StatusMessage}`` (SecondaryStatusTransitions)."""
    failure_field: str = "FailureReason"
    started_field: str | None = None
    ended_field: str | None = None
    instance_field: str | None = None
    """The request member holding InstanceType/InstanceCount (``ResourceConfig``)."""
    log_group: str | None = None
    """CloudWatch Logs group; ``{name}`` is replaced by the resource's name."""
    stream_prefix: str = "{name}/"
    """Streams of the resource in that group start with this (``{name}`` replaced)."""
    children: tuple[str, str] | None = None
    """``(child kind, child field holding this resource's ARN)``: logs and metrics come from the
    children (a tuning job's training jobs)."""
    metric_namespace: str | None = None
    metric_dimension: str | None = None
    """CloudWatch dimension whose value is the resource's name."""

    def name(self, record: Mapping[str, Any]) -> str:
        """The resource's name."""
        return str(record.get(self.name_field, ""))

    def status(self, record: Mapping[str, Any]) -> str:
        """The resource's status ("" when the record has none yet)."""
        return str(record.get(self.status_field) or "")

    def is_terminal(self, record: Mapping[str, Any]) -> bool:
        """Whether nothing more will happen to the resource."""
        return self.status(record) in self.terminal

    def group_for(self, name: str) -> str | None:
        """The resource's CloudWatch Logs group (None when its logs come from children)."""
        return None if self.log_group is None else self.log_group.format(name=name)

    def prefix_for(self, name: str) -> str:
        """The prefix of the resource's log streams in its group."""
        return self.stream_prefix.format(name=name)

    def instances(self, record: Mapping[str, Any]) -> str:
        """``ml.m5.large x 2`` from the record's resource configuration, or ""."""
        config = record.get(self.instance_field) if self.instance_field else None
        if isinstance(config, Mapping):
            cluster = config.get("ClusterConfig", config)
            if isinstance(cluster, Mapping) and cluster.get("InstanceType"):
                return f"{cluster['InstanceType']} x {cluster.get('InstanceCount', 1)}"
        return ""


KINDS: tuple[Kind, ...] = (
    Kind(
        key="training-job", label="training job", cli_name="training",
        name_field="TrainingJobName", arn_field="TrainingJobArn", status_field="TrainingJobStatus",
        terminal=FINISHED_JOB, secondary_field="SecondaryStatus", timeline_field="SecondaryStatusTransitions",
        started_field="TrainingStartTime", ended_field="TrainingEndTime", instance_field="ResourceConfig",
        log_group="/aws/sagemaker/TrainingJobs",
        metric_namespace="/aws/sagemaker/TrainingJobs", metric_dimension="TrainingJobName",
    ),
    Kind(
        key="processing-job", label="processing job", cli_name="processing",
        name_field="ProcessingJobName", arn_field="ProcessingJobArn", status_field="ProcessingJobStatus",
        terminal=FINISHED_JOB, started_field="ProcessingStartTime", ended_field="ProcessingEndTime",
        instance_field="ProcessingResources", log_group="/aws/sagemaker/ProcessingJobs",
    ),
    Kind(
        key="transform-job", label="transform job", cli_name="transform",
        name_field="TransformJobName", arn_field="TransformJobArn", status_field="TransformJobStatus",
        terminal=FINISHED_JOB, started_field="TransformStartTime", ended_field="TransformEndTime",
        instance_field="TransformResources", log_group="/aws/sagemaker/TransformJobs",
    ),
    Kind(
        key="hyper-parameter-tuning-job", label="tuning job", cli_name="tuning",
        name_field="HyperParameterTuningJobName", arn_field="HyperParameterTuningJobArn",
        status_field="HyperParameterTuningJobStatus", terminal=FINISHED_JOB,
        ended_field="HyperParameterTuningEndTime", children=("training-job", "TuningJobArn"),
    ),
    Kind(
        key="endpoint", label="endpoint", cli_name="endpoint", is_job=False,
        name_field="EndpointName", arn_field="EndpointArn", status_field="EndpointStatus",
        terminal=frozenset({"Failed", "UpdateRollbackFailed", "OutOfService"}),
        log_group="/aws/sagemaker/Endpoints/{name}", stream_prefix="",
        metric_namespace="AWS/SageMaker", metric_dimension="EndpointName",
    ),
)
"""Every kind the views know, jobs first (the order the dashboard and ``smemu status`` use)."""

_BY_NAME = {spelling: kind for kind in KINDS for spelling in (kind.key, kind.cli_name)}


def find_kind(name: str) -> Kind | None:
    """The kind called ``name`` (store key such as ``training-job``, or CLI name such as ``training``)."""
    return _BY_NAME.get(name.strip().lower())


def job_kinds() -> tuple[Kind, ...]:
    """The kinds that are jobs (they finish)."""
    return tuple(k for k in KINDS if k.is_job)


def region_and_account(arn: str) -> tuple[str, str]:
    """``(region, account)`` from an ARN (``arn:aws:sagemaker:<region>:<account>:...``)."""
    parts = arn.split(":")
    if len(parts) < 6:
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[3], parts[4]
