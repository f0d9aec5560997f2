"""CreateProcessingJob checks beyond botocore's model, each a ValidationException.

The gateway has checked types, lengths, patterns and enums. Left are SageMaker's rules across
members (LocalPath under /opt/ml/processing/, Gzip only in Pipe mode, unique names and
paths) and the inputs and outputs the emulator cannot serve honestly: Athena and Redshift
dataset definitions and Feature Store outputs are refused with a clear message rather than
run without their data.
"""

from __future__ import annotations

from typing import Any

from emulator.errors import ValidationException

PROCESSING_ROOT = "/opt/ml/processing/"


def validate_create_request(request: dict[str, Any]) -> None:
    """Raise ValidationException for the first rule the request breaks."""
    problems = _app_problems(request) + _input_problems(request) + _output_problems(request)
    if problems:
        raise ValidationException(problems[0])


def _app_problems(request: dict[str, Any]) -> list[str]:
    if not (request.get("AppSpecification") or {}).get("ImageUri"):
        return ["AppSpecification.ImageUri is required."]
    cluster = (request.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    if not cluster.get("InstanceType") or int(cluster.get("InstanceCount", 0)) < 1:
        return ["ProcessingResources.ClusterConfig needs an InstanceType and an InstanceCount of at least 1."]
    return []


def _local_path_problem(what: str, path: str | None) -> str | None:
    if not path:
        return f"{what}: LocalPath is required unless AppManaged is true."
    if not path.startswith(PROCESSING_ROOT) or path.rstrip("/") + "/" == PROCESSING_ROOT:
        return f"{what}: LocalPath must be a folder below {PROCESSING_ROOT}, got {path}."
    if ".." in path.split("/"):
        return f"{what}: LocalPath must not contain '..', got {path}."
    return None


def _input_problems(request: dict[str, Any]) -> list[str]:
    inputs = request.get("ProcessingInputs") or []
    names = [i["InputName"] for i in inputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        return [f"ProcessingInputs: input names must be unique; duplicated: {', '.join(duplicates)}."]
    for item in inputs:
        what = f"ProcessingInput '{item['InputName']}'"
        if item.get("DatasetDefinition"):
            return [f"{what}: DatasetDefinition (Athena or Redshift queries) is not supported by the emulator; "
                    "export the data to S3 and use S3Input."]
        source = item.get("S3Input")
        if not source:
            return [f"{what}: S3Input is required."]
        if item.get("AppManaged"):
            continue
        problem = _local_path_problem(what, source.get("LocalPath"))
        if problem:
            return [problem]
        if not str(source.get("S3Uri", "")).startswith(("s3://", "file://")):
            return [f"{what}: S3Uri must be an s3:// URI (or file:// for a folder on this machine)."]
        if source.get("S3CompressionType", "None") == "Gzip" and source.get("S3InputMode", "File") != "Pipe":
            return [f"{what}: S3CompressionType Gzip is only supported with S3InputMode Pipe."]
    return []


def _output_problems(request: dict[str, Any]) -> list[str]:
    outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    names = [o["OutputName"] for o in outputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        return [f"ProcessingOutputConfig: output names must be unique; duplicated: {', '.join(duplicates)}."]
    paths: list[str] = [str((i.get("S3Input") or {}).get("LocalPath", "")).rstrip("/")
                        for i in request.get("ProcessingInputs") or [] if not i.get("AppManaged")]
    for item in outputs:
        what = f"ProcessingOutput '{item['OutputName']}'"
        if item.get("FeatureStoreOutput"):
            return [f"{what}: FeatureStoreOutput is not supported by the emulator; write the features to S3."]
        target = item.get("S3Output")
        if not target:
            return [f"{what}: S3Output is required."]
        if item.get("AppManaged"):
            continue
        problem = _local_path_problem(what, target.get("LocalPath"))
        if problem:
            return [problem]
        if not str(target.get("S3Uri", "")).startswith("s3://"):
            return [f"{what}: S3Uri must be an s3:// URI, got {target.get('S3Uri')}."]
        paths.append(str(target["LocalPath"]).rstrip("/"))
    clashes = sorted({p for p in paths if paths.count(p) > 1})
    if clashes:
        return [f"ProcessingInputs and Outputs must use different LocalPaths; used twice: {', '.join(clashes)}."]
    return []
