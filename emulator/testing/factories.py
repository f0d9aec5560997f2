"""Training jobs and endpoints for tests, created through the emulator and removed afterwards.

The factories take local files where SageMaker takes S3 URIs (channels, model artifacts) and
upload them to the session's bucket, so a test reads like the job or deployment it checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from emulator.contract import endpoints
from emulator.contract.endpoints import Deployment
from emulator.contract.inputs import stage_channel, upload_model
from emulator.contract.session import EmulatorTarget, unique_name, wait_for

log = logging.getLogger(__name__)

TERMINAL = ("Completed", "Failed", "Stopped")


class TrainingJobs:
    """``jobs(image, hyperparameters=..., channels=...)`` runs a job and returns its Describe answer."""

    def __init__(self, target: EmulatorTarget) -> None:
        self.target = target
        self.created: list[str] = []

    def __call__(self, image: str, *, hyperparameters: dict[str, str] | None = None,
                 channels: dict[str, str] | None = None, environment: dict[str, str] | None = None,
                 instance_type: str = "ml.m5.large", instance_count: int = 1, wait: bool = True,
                 timeout: float = 600.0, name: str | None = None, **request: Any) -> dict[str, Any]:
        """Create a training job; ``channels`` maps names to local files/folders or s3:// prefixes.

        With ``wait`` (the default) it returns once the job is Completed, Failed or Stopped.
        Other keyword arguments are CreateTrainingJob members and win over the defaults.
        """
        sm = self.target.client("sagemaker")
        name = name or unique_name("job")
        bucket = self.target.bucket()
        s3 = self.target.client("s3")
        staged = [stage_channel(s3, bucket, f"{name}/input", channel, source)
                  for channel, source in sorted((channels or {}).items())]
        body: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "RoleArn": self.target.role_arn(),
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{name}/output"},
            "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": instance_count, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": max(1, int(timeout))},
            "HyperParameters": dict(hyperparameters or {}),
        }
        if staged:
            body["InputDataConfig"] = [{"ChannelName": c.name, "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": c.uri}}} for c in staged]
        if environment:
            body["Environment"] = dict(environment)
        body.update(request)
        sm.create_training_job(**body)
        self.created.append(name)
        if not wait:
            return dict(sm.describe_training_job(TrainingJobName=name))
        return dict(wait_for(f"training job {name} to end", lambda: _ended(sm, name), timeout + 180.0))

    def close(self) -> None:
        """Stop the jobs that are still running (training jobs cannot be deleted)."""
        sm = self.target.client("sagemaker")
        for name in self.created:
            try:
                if sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress":
                    sm.stop_training_job(TrainingJobName=name)
            except sm.exceptions.ClientError as exc:
                log.debug("stopping %s: %s", name, exc)


def _ended(sm: Any, name: str) -> dict[str, Any] | None:
    record: dict[str, Any] = sm.describe_training_job(TrainingJobName=name)
    return record if record["TrainingJobStatus"] in TERMINAL else None


class EndpointFailed(RuntimeError):
    """An endpoint the factory deployed did not reach InService; the message is its FailureReason."""


@dataclass
class Endpoint:
    """A deployed endpoint: invoke it, describe it."""

    name: str
    target: EmulatorTarget
    status: str
    failure_reason: str | None = None
    deployment: Deployment | None = field(default=None, repr=False)

    def invoke(self, body: bytes | str, content_type: str = "application/json", **kwargs: Any) -> bytes:
        """InvokeEndpoint through the emulator's runtime API; the response body."""
        runtime = self.target.client("sagemaker-runtime")
        data = body.encode() if isinstance(body, str) else body
        answer = runtime.invoke_endpoint(EndpointName=self.name, Body=data, ContentType=content_type, **kwargs)
        return bytes(answer["Body"].read())

    def describe(self) -> dict[str, Any]:
        """DescribeEndpoint."""
        return dict(self.target.client("sagemaker").describe_endpoint(EndpointName=self.name))


class Endpoints:
    """``endpoints(image, model=...)`` deploys a single-model (or multi-model) endpoint; all are deleted at close."""

    def __init__(self, target: EmulatorTarget) -> None:
        self.target = target
        self.created: list[Deployment] = []

    def __call__(self, image: str, *, model: str | None = None, environment: dict[str, str] | None = None,
                 instance_type: str = "ml.m5.large", multi_model: bool = False, timeout: float = 600.0,
                 check: bool = True, name: str | None = None) -> Endpoint:
        """Deploy ``image``; ``model`` is a model.tar.gz, a folder (packed) or an s3:// URI.

        For ``multi_model`` the archive becomes ``model.tar.gz`` under the endpoint's model
        prefix (invoke with ``TargetModel="model.tar.gz"``). With ``check`` (the default) an
        endpoint that does not reach InService raises :class:`EndpointFailed` with its reason.
        """
        name = name or unique_name("endpoint")
        definition: dict[str, Any] = {"Image": image}
        if environment:
            definition["Environment"] = dict(environment)
        s3, bucket = self.target.client("s3"), self.target.bucket()
        if multi_model:
            upload_model(s3, bucket, f"{name}/models/model.tar.gz", model, name)
            definition.update(Mode="MultiModel", ModelDataUrl=f"s3://{bucket}/{name}/models/")
        elif model:
            definition["ModelDataUrl"] = upload_model(s3, bucket, f"{name}/model.tar.gz", model, name)
        deployment, start = endpoints.deploy(self.target, name, {"PrimaryContainer": definition}, instance_type,
                                             timeout)
        self.created.append(deployment)
        if check and not start.in_service:
            raise EndpointFailed(f"endpoint {name} ended {start.status}: {start.failure_reason}")
        return Endpoint(name, self.target, start.status, start.failure_reason, deployment)

    def close(self) -> None:
        """Delete every endpoint, configuration and model the factory made."""
        grace = self.target.endpoint_stop_grace or 30.0
        for deployment in reversed(self.created):
            endpoints.delete(self.target, deployment, grace + 60.0)
        self.created.clear()


class ContractChecks:
    """``smemu check`` as a fixture: the same rules, run through the session's emulator."""

    def __init__(self, target: EmulatorTarget) -> None:
        self.target = target

    def check(self, image: str, kind: str, **options: Any) -> Any:
        """The :class:`~emulator.contract.Report` of ``image`` as a ``kind`` container.

        ``options`` are :class:`~emulator.contract.CheckOptions` fields: ``channels``,
        ``hyperparameters``, ``error_hyperparameters``, ``error_channels``,
        ``stop_hyperparameters``, ``environment``, ``model``, ``content_types``, ``payloads``...
        """
        from emulator.contract import CheckOptions, run_check

        values: dict[str, Any] = {k: tuple(v) if k in ("content_types", "payloads") else v for k, v in options.items()}
        return run_check(self.target, image, kind, CheckOptions(**values))

    def assert_conforms(self, image: str, kind: str, **options: Any) -> Any:
        """Check, and fail with the whole table when a rule fails; returns the report."""
        from emulator.contract import render_table

        report = self.check(image, kind, **options)
        assert not report.failed, "\n" + render_table(report)
        return report
