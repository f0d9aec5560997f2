"""CreateTransformJob checks beyond botocore's model, each a ValidationException.

SageMaker's cross-member rules (MaxPayloadInMB at most 100 and, times MaxConcurrentTransforms,
at most 100; JoinSource needs CSV or JSON and SplitType matching AssembleWith), plus what the
emulator does not run and refuses rather than fake: augmented manifests and Converse data,
data capture from transform jobs, models with several containers or Mode MultiModel.
"""

from __future__ import annotations

from typing import Any

from emulator.errors import ValidationException
from emulator.transform.filters import CSV, JSON_TYPES, is_default

_JOINABLE = (CSV, *JSON_TYPES)


def validate_create_request(request: dict[str, Any], model: dict[str, Any]) -> None:
    """Raise ValidationException for the first rule the request (or its model) breaks."""
    problems = _limits(request) + _data(request) + _processing(request) + _model(model)
    if problems:
        raise ValidationException(problems[0])


def _limits(request: dict[str, Any]) -> list[str]:
    payload = request.get("MaxPayloadInMB")
    concurrent = request.get("MaxConcurrentTransforms")
    if payload is not None and int(payload) > 100:
        return [f"MaxPayloadInMB must be at most 100, got {payload}."]
    if payload and concurrent and int(payload) * int(concurrent) > 100:
        return [f"MaxConcurrentTransforms * MaxPayloadInMB must be at most 100 MB, got {concurrent} * {payload}."]
    return []


def _data(request: dict[str, Any]) -> list[str]:
    source = request["TransformInput"]["DataSource"].get("S3DataSource") or {}
    if not source:
        return ["TransformInput.DataSource.S3DataSource is required."]
    data_type = source.get("S3DataType")
    if data_type not in ("S3Prefix", "ManifestFile"):
        return [f"S3DataType {data_type} is not supported by the emulator's batch transform; use S3Prefix or "
                "ManifestFile."]
    if not str(source.get("S3Uri", "")).startswith(("s3://", "file://")):
        return ["TransformInput.DataSource.S3DataSource.S3Uri must be an s3:// URI."]
    if not str(request["TransformOutput"].get("S3OutputPath", "")).startswith("s3://"):
        return ["TransformOutput.S3OutputPath must be an s3:// URI."]
    if request.get("DataCaptureConfig"):
        return ["DataCaptureConfig is not supported by the emulator's batch transform."]
    return []


def _processing(request: dict[str, Any]) -> list[str]:
    processing = request.get("DataProcessing") or {}
    filtering = not (is_default(processing.get("InputFilter")) and is_default(processing.get("OutputFilter")))
    joining = processing.get("JoinSource") == "Input"
    if not (filtering or joining):
        return []
    content_type = (request["TransformInput"].get("ContentType") or "").split(";")[0].strip().lower()
    accept = (request["TransformOutput"].get("Accept") or content_type).split(";")[0].strip().lower()
    if content_type not in _JOINABLE or accept not in _JOINABLE:
        return ["DataProcessing filters and joins need ContentType and Accept to be text/csv, application/json or "
                f"application/jsonlines (got {content_type or 'none'} and {accept or 'none'})."]
    split = request["TransformInput"].get("SplitType", "None")
    assemble = request["TransformOutput"].get("AssembleWith", "None")
    if joining and (split, assemble) not in (("Line", "Line"), ("None", "None")):
        return [f"JoinSource Input needs SplitType and AssembleWith to match (Line and Line, or None and None); "
                f"got {split} and {assemble}."]
    return []


def _model(model: dict[str, Any]) -> list[str]:
    containers = model.get("Containers") or []
    if len(containers) > 1:
        return [f"Model {model['ModelName']} has {len(containers)} containers; the emulator's batch transform runs "
                "single-container models only."]
    definition = model.get("PrimaryContainer") or (containers[0] if containers else {})
    if definition.get("Mode") == "MultiModel":
        return [f"Model {model['ModelName']} is a multi-model container, which batch transform cannot use."]
    return []
