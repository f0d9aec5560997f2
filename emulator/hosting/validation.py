"""The rules of CreateModel, CreateEndpointConfig and the endpoint updates that botocore's
model cannot express (shapes, lengths and enums are checked by the gateway already).

Pure functions over request dicts; each raises :class:`ValidationException` with a message a
user can act on. Not-found messages use the exact wording SageMaker sends (the SDK and
botocore's waiters match on "Could not find").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from emulator.errors import ValidationException, could_not_find
from emulator.hosting.multi_model import MultiModelPlan

Request = dict[str, Any]

SERIAL = "Serial"
DIRECT = "Direct"
SINGLE = "Single"
"""Our name for a model with a PrimaryContainer (no InferenceExecutionConfig applies)."""


def model_containers(request: Request) -> tuple[list[Request], str]:
    """The container definitions of a CreateModel request and its execution mode.

    ``PrimaryContainer`` gives mode :data:`SINGLE`; ``Containers`` gives
    ``InferenceExecutionConfig.Mode`` (Serial by default, as on AWS).
    """
    primary = request.get("PrimaryContainer")
    containers = request.get("Containers")
    if primary is not None and containers:
        raise ValidationException("Specify either PrimaryContainer or Containers, not both.")
    if primary is not None:
        if request.get("InferenceExecutionConfig"):
            raise ValidationException(
                "InferenceExecutionConfig applies only to models defined with Containers."
            )
        return [primary], SINGLE
    if not containers:
        raise ValidationException("Either PrimaryContainer or Containers must be specified.")
    mode = (request.get("InferenceExecutionConfig") or {}).get("Mode", SERIAL)
    return list(containers), mode


def validate_model(request: Request) -> None:
    """Everything CreateModel checks beyond the shape."""
    containers, mode = model_containers(request)
    for index, container in enumerate(containers, start=1):
        _validate_container(container, index)
    if mode == SINGLE:
        return
    if any(c.get("Mode") == "MultiModel" for c in containers):
        raise ValidationException(
            "A multi-model container (Mode MultiModel) in an inference pipeline is not supported by the "
            "emulator; use it as the PrimaryContainer."
        )
    hostnames = [c.get("ContainerHostname") for c in containers]
    named = [h for h in hostnames if h]
    if mode == DIRECT and len(named) != len(containers):
        raise ValidationException(
            "ContainerHostname must be specified for every container when "
            "InferenceExecutionConfig.Mode is Direct."
        )
    if named and len(named) != len(containers):
        raise ValidationException(
            "ContainerHostname must be specified for all containers of a serial inference "
            "pipeline, or for none of them."
        )
    duplicates = sorted({h for h in named if named.count(h) > 1})
    if duplicates:
        raise ValidationException(
            f"ContainerHostname values must be unique; repeated: {', '.join(duplicates)}."
        )


def _validate_container(container: Request, index: int) -> None:
    where = f"container {index}"
    if container.get("ModelPackageName"):
        raise ValidationException(
            f"ModelPackageName ({where}) is not supported by the emulator; give the Image and "
            "ModelDataUrl of the package instead."
        )
    if not container.get("Image"):
        raise ValidationException(f"Image is required ({where}).")
    if container.get("Mode") == "MultiModel":
        _validate_multi_model(container, where)
    if container.get("ModelDataUrl") and container.get("ModelDataSource"):
        raise ValidationException(f"Specify either ModelDataUrl or ModelDataSource ({where}), not both.")
    url = container.get("ModelDataUrl")
    if url and not url.startswith("s3://"):
        raise ValidationException(f"ModelDataUrl must be an S3 URI (s3://bucket/key), got {url!r}.")
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    if source:
        uri = source.get("S3Uri", "")
        if not uri.startswith("s3://"):
            raise ValidationException(f"ModelDataSource.S3DataSource.S3Uri must be an S3 URI, got {uri!r}.")
        if source.get("S3DataType") == "S3Prefix":
            if source.get("CompressionType") != "None":
                raise ValidationException(
                    "ModelDataSource with S3DataType S3Prefix requires CompressionType None."
                )
            if not uri.endswith("/"):
                raise ValidationException(
                    f"ModelDataSource.S3DataSource.S3Uri {uri} must end with '/' when S3DataType is S3Prefix."
                )


def _validate_multi_model(container: Request, where: str) -> None:
    """Mode MultiModel: ModelDataUrl is the S3 prefix of the models (ModelDataSource cannot be used)."""
    if container.get("ModelDataSource"):
        raise ValidationException(f"Multi-model containers cannot use ModelDataSource ({where}); give ModelDataUrl.")
    url = container.get("ModelDataUrl")
    if not url:
        raise ValidationException(
            f"Multi-model containers need ModelDataUrl, the S3 prefix under which the models are ({where})."
        )
    try:
        MultiModelPlan.from_definition(container)
    except ValueError as exc:
        raise ValidationException(f"{exc} ({where}).") from None


def validate_endpoint_config(
    request: Request, find_model: Callable[[str], Request | None], model_arn: Callable[[str], str]
) -> None:
    """Everything CreateEndpointConfig checks beyond the shape.

    ``find_model`` returns a model's record (or None); ``model_arn`` builds the ARN that the
    not-found message quotes.
    """
    variants = request["ProductionVariants"]
    _unique_variant_names(v["VariantName"] for v in variants)
    if request.get("ShadowProductionVariants"):
        raise ValidationException("ShadowProductionVariants are not supported by the emulator.")
    for variant in variants:
        name = variant["VariantName"]
        model_name = variant.get("ModelName")
        if not model_name:
            raise ValidationException(f"ModelName is required for production variant {name}.")
        if find_model(model_name) is None:
            raise could_not_find("model", model_arn(model_name))
        if variant.get("ServerlessConfig"):
            model = find_model(model_name) or {}
            if (model.get("PrimaryContainer") or {}).get("Mode") == "MultiModel":
                raise ValidationException(
                    f"Production variant {name} is serverless; serverless endpoints do not support "
                    "multi-model endpoints."
                )
            if variant.get("InstanceType") or variant.get("InitialInstanceCount"):
                raise ValidationException(
                    f"Production variant {name} has a ServerlessConfig and so must not specify "
                    "InstanceType or InitialInstanceCount."
                )
        else:
            if not variant.get("InstanceType"):
                raise ValidationException(f"InstanceType is required for production variant {name}.")
            if not variant.get("InitialInstanceCount"):
                raise ValidationException(f"InitialInstanceCount is required for production variant {name}.")
    async_config = request.get("AsyncInferenceConfig")
    if async_config:
        if not (async_config.get("OutputConfig") or {}).get("S3OutputPath"):
            raise ValidationException("AsyncInferenceConfig.OutputConfig.S3OutputPath is required.")
        if any(v.get("ServerlessConfig") for v in variants):
            raise ValidationException("Asynchronous inference is not available for serverless variants.")
    capture = request.get("DataCaptureConfig")
    if capture and not str(capture.get("DestinationS3Uri", "")).startswith("s3://"):
        raise ValidationException("DataCaptureConfig.DestinationS3Uri must be an S3 URI.")


def _unique_variant_names(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise ValidationException(f'The variant name "{name}" was non-unique within the request.')
        seen.add(name.lower())


def validate_weights_update(request: Request, variant_names: Iterable[str], config_name: str) -> None:
    """UpdateEndpointWeightsAndCapacities: known, unique variants and something to change."""
    desired = request["DesiredWeightsAndCapacities"]
    _unique_variant_names(d["VariantName"] for d in desired)
    known = set(variant_names)
    missing = [d["VariantName"] for d in desired if d["VariantName"] not in known]
    if missing:
        raise ValidationException(
            f'The variant name(s) "{", ".join(missing)}" is/are not present within endpoint '
            f'configuration "{config_name}".'
        )
    for item in desired:
        if "DesiredWeight" not in item and "DesiredInstanceCount" not in item:
            raise ValidationException(
                f"Specify DesiredWeight or DesiredInstanceCount for variant {item['VariantName']}."
            )
        if item.get("DesiredInstanceCount") == 0:
            raise ValidationException(
                f"DesiredInstanceCount for variant {item['VariantName']} must be at least 1."
            )
