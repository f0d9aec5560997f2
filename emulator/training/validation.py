"""CreateTrainingJob checks beyond botocore's model, each a ValidationException.

The gateway has already checked types, lengths, ranges, patterns and enums against the
model. What is left are the rules SageMaker applies across members (spot needs
MaxWaitTimeInSeconds >= MaxRuntimeInSeconds, Gzip only in Pipe mode, FastFile only with
S3Prefix, ...) and members that a container job needs although the current model marks them
optional (serverless jobs made them so): AlgorithmSpecification.TrainingImage and
ResourceConfig.
"""

from __future__ import annotations

from typing import Any

from emulator.errors import ValidationException
from emulator.training.layout import OPT_ML, channel_input_mode

#: Where a job may keep its checkpoints: anywhere but the platform's own /opt/ml folders.
_RESERVED_CHECKPOINT_PREFIXES = (f"{OPT_ML}/input", f"{OPT_ML}/model", f"{OPT_ML}/output")


def validate_create_request(request: dict[str, Any]) -> None:
    """Raise ValidationException for the first rule the request breaks."""
    problems = (
        _algorithm_problems(request)
        + _resource_problems(request)
        + _stopping_problems(request)
        + _channel_problems(request)
        + _output_problems(request)
    )
    if problems:
        raise ValidationException(problems[0])


def _algorithm_problems(request: dict[str, Any]) -> list[str]:
    algorithm = request.get("AlgorithmSpecification")
    if not algorithm:
        return ["AlgorithmSpecification is required: the emulator runs training jobs in containers."]
    if algorithm.get("AlgorithmName"):
        return [(
            "AlgorithmName (SageMaker and Marketplace algorithms) is not supported by the emulator; "
            "give the algorithm's container image as AlgorithmSpecification.TrainingImage."
        )]
    if not algorithm.get("TrainingImage"):
        return ["AlgorithmSpecification.TrainingImage is required."]
    return []


def _resource_problems(request: dict[str, Any]) -> list[str]:
    resources = request.get("ResourceConfig")
    if not resources:
        return ["ResourceConfig is required: it says how many instances of which type run the job."]
    groups = resources.get("InstanceGroups")
    if groups:
        if resources.get("InstanceType") or resources.get("InstanceCount"):
            return ["ResourceConfig: give either InstanceType and InstanceCount, or InstanceGroups, not both."]
        names = [g["InstanceGroupName"] for g in groups]
        if len(set(names)) != len(names):
            return [f"ResourceConfig.InstanceGroups: instance group names must be unique ({', '.join(names)})."]
        if any(int(g.get("InstanceCount", 0)) < 1 for g in groups):
            return ["ResourceConfig.InstanceGroups: every group needs an InstanceCount of at least 1."]
        return []
    if not resources.get("InstanceType"):
        return ["ResourceConfig.InstanceType is required."]
    if int(resources.get("InstanceCount", 0)) < 1:
        return ["ResourceConfig.InstanceCount must be at least 1."]
    return []


def _stopping_problems(request: dict[str, Any]) -> list[str]:
    stopping = request.get("StoppingCondition") or {}
    max_runtime = int(stopping.get("MaxRuntimeInSeconds", 86400))
    max_wait = stopping.get("MaxWaitTimeInSeconds")
    if request.get("EnableManagedSpotTraining"):
        if max_wait is None:
            return ["StoppingCondition.MaxWaitTimeInSeconds is required when EnableManagedSpotTraining is true."]
        if int(max_wait) < max_runtime:
            return [(
                f"StoppingCondition.MaxWaitTimeInSeconds ({max_wait}) must be greater than or equal to "
                f"MaxRuntimeInSeconds ({max_runtime})."
            )]
    elif max_wait is not None:
        return ["StoppingCondition.MaxWaitTimeInSeconds is only valid when EnableManagedSpotTraining is true."]
    return []


def _channel_problems(request: dict[str, Any]) -> list[str]:
    channels = request.get("InputDataConfig") or []
    algorithm = request.get("AlgorithmSpecification") or {}
    names = [c["ChannelName"] for c in channels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        return [f"InputDataConfig: channel names must be unique; duplicated: {', '.join(duplicates)}."]
    groups = {g["InstanceGroupName"] for g in (request.get("ResourceConfig") or {}).get("InstanceGroups") or []}
    problems: list[str] = []
    for channel in channels:
        problems += _one_channel_problems(channel, channel_input_mode(channel, algorithm), groups)
    return problems


def _one_channel_problems(channel: dict[str, Any], mode: str, groups: set[str]) -> list[str]:
    name = channel["ChannelName"]
    source = channel.get("DataSource") or {}
    s3 = source.get("S3DataSource")
    if not s3:
        return [f"Channel '{name}': only S3DataSource is supported by the emulator (no EFS or FSx)."]
    uri = str(s3.get("S3Uri", ""))
    data_type = s3.get("S3DataType", "S3Prefix")
    if not uri.startswith(("s3://", "file://")):
        return [f"Channel '{name}': S3Uri must be an s3:// URI (or file:// for a folder on this machine), got {uri}."]
    if uri.startswith("file://") and data_type != "S3Prefix":
        return [f"Channel '{name}': a file:// URI names a folder and needs S3DataType S3Prefix."]
    if channel.get("CompressionType", "None") == "Gzip" and mode != "Pipe":
        return [f"Channel '{name}': CompressionType Gzip is only supported in Pipe input mode."]
    if mode == "FastFile" and data_type != "S3Prefix":
        return [f"Channel '{name}': FastFile input mode requires S3DataType S3Prefix."]
    if data_type == "AugmentedManifestFile":
        if mode != "Pipe":
            return [f"Channel '{name}': AugmentedManifestFile requires Pipe input mode."]
        if not s3.get("AttributeNames"):
            return [f"Channel '{name}': AugmentedManifestFile requires AttributeNames."]
    elif s3.get("AttributeNames"):
        return [f"Channel '{name}': AttributeNames is only valid with S3DataType AugmentedManifestFile."]
    if data_type == "Converse":
        return [f"Channel '{name}': S3DataType Converse is not supported by the emulator."]
    unknown = sorted(set(s3.get("InstanceGroupNames") or []) - groups)
    if unknown:
        return [f"Channel '{name}': InstanceGroupNames {', '.join(unknown)} are not instance groups of the job."]
    return []


def _output_problems(request: dict[str, Any]) -> list[str]:
    output = request.get("OutputDataConfig") or {}
    if not str(output.get("S3OutputPath", "")).startswith("s3://"):
        return [f"OutputDataConfig.S3OutputPath must be an s3:// URI, got {output.get('S3OutputPath')}."]
    checkpoint = request.get("CheckpointConfig")
    if checkpoint:
        if not str(checkpoint.get("S3Uri", "")).startswith("s3://"):
            return [f"CheckpointConfig.S3Uri must be an s3:// URI, got {checkpoint.get('S3Uri')}."]
        local = str(checkpoint.get("LocalPath") or f"{OPT_ML}/checkpoints")
        if not local.startswith("/") or local.rstrip("/") in ("", OPT_ML):
            return [f"CheckpointConfig.LocalPath must be an absolute folder below /, got {local}."]
        if any(local == p or local.startswith(p + "/") for p in _RESERVED_CHECKPOINT_PREFIXES):
            return [f"CheckpointConfig.LocalPath {local} lies inside a folder SageMaker manages; choose another."]
    return []
