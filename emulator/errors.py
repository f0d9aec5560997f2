"""Errors the emulator answers with, named after the error shapes of the service models.

Each class carries the wire ``code`` (what botocore shows as ``Error.Code``) and the HTTP
``status``. Statuses come from the model's ``error.httpStatusCode`` where it declares one
(sagemaker-runtime does), and are 400 where it is silent (the sagemaker control plane
declares none). The gateway renders them with ``emulator.gateway.protocol.error_response``.

Hierarchy::

    Exception
     └── ServiceError                       code, status, message; to_body(), members()
          │   control plane (sagemaker, AWS JSON 1.1)
          ├── ValidationException           400  shape violations, not-found, duplicates
          ├── ResourceNotFound              400  modelled, but AWS mostly answers
          │                                      ValidationException instead (see helpers)
          ├── ResourceInUse                 400  e.g. a training job name already taken
          ├── ResourceLimitExceeded         400
          ├── ConflictException             400
          ├── UnknownOperationException     400  X-Amz-Target missing or unknown
          ├── SerializationException        400  body is not JSON, or a member has the wrong type
          ├── AccessDeniedException         400
          ├── ThrottlingException           400  (boto3 retries it)
          ├── OperationNotSupported         501  code NotImplemented: a refused operation (never retried)
          ├── InternalFailure               500  both services: a bug of ours
          │   runtime (sagemaker-runtime, rest-json)
          ├── ValidationError               400  note: not ValidationException
          ├── ModelError                    424  the container failed; carries its answer
          ├── ModelNotReadyException        429  (legacy retry mode retries 429)
          ├── ServiceUnavailable            503
          ├── InternalDependencyException   530
          │   in-stream only (InvokeEndpointWithResponseStream event frames)
          ├── ModelStreamError              ErrorCode: ModelInvocationTimeExceeded | StreamBroken
          └── InternalStreamFailure

Container failures must never map to 5xx: boto3 would silently re-invoke the model.

The helpers at the bottom build the messages AWS really sends for the cases the SDKs match
on (research/sdk-compat.md §4.3): the SageMaker Python SDK looks for "Could not find" and
"Cannot create already existing", and the boto3 waiters expect ValidationException for a
missing job or endpoint.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """An error that reaches the client as an AWS error response."""

    code: ClassVar[str] = "ServiceError"
    """The error code on the wire (``__type`` / ``x-amzn-ErrorType``); every subclass sets its own."""
    status: ClassVar[int] = 400
    """The HTTP status of the error response."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message: str = message
        """Human-readable text; botocore shows it as ``Error.Message``."""

    def members(self) -> dict[str, Any]:
        """The error shape's modelled members, named as in the model (``Message``, ...).

        rest-json and event-stream bodies use these names, so botocore's modelled-error
        parsing puts them into ``e.response`` exactly as AWS's answers do.
        """
        return {"Message": self.message}

    def to_body(self) -> dict[str, Any]:
        """The AWS JSON 1.1 error body: ``{"__type", "message"}`` plus any extra members."""
        body: dict[str, Any] = {"__type": self.code, "message": self.message}
        body.update((k, v) for k, v in self.members().items() if k != "Message")
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# -- control plane (sagemaker) -----------------------------------------------------------


class ValidationException(ServiceError):
    """Bad input, and also SageMaker's answer for most "not found" and "already exists"."""

    code = "ValidationException"


class ResourceNotFound(ServiceError):
    """Modelled for some operations; AWS sends ValidationException for jobs and endpoints."""

    code = "ResourceNotFound"


class ResourceInUse(ServiceError):
    """A name is taken, or the resource is busy."""

    code = "ResourceInUse"


class ResourceLimitExceeded(ServiceError):
    """A quota would be exceeded."""

    code = "ResourceLimitExceeded"


class ConflictException(ServiceError):
    """A concurrent modification, used by newer APIs."""

    code = "ConflictException"


class UnknownOperationException(ServiceError):
    """``X-Amz-Target`` is missing or names no operation of the service."""

    code = "UnknownOperationException"


class SerializationException(ServiceError):
    """The body is not a JSON object, or a member's JSON type does not fit its shape."""

    code = "SerializationException"


class AccessDeniedException(ServiceError):
    """The caller may not do this. AWS JSON services answer it with 400."""

    code = "AccessDeniedException"


class ThrottlingException(ServiceError):
    """Too many requests; boto3's retry handlers retry this code."""

    code = "ThrottlingException"


class OperationNotSupported(ServiceError):
    """An operation the emulator neither executes nor stores faithfully: refused at once.

    501 with code ``NotImplemented`` (S3's name for the same answer): botocore retries 500,
    502, 503 and 504 and throttling codes, never 501, so a refused call costs one round trip
    instead of five attempts with back-off.
    """

    code = "NotImplemented"
    status = 501


class InternalFailure(ServiceError):
    """Something failed inside the emulator. Both services model it with status 500."""

    code = "InternalFailure"
    status = 500


# -- runtime (sagemaker-runtime) ---------------------------------------------------------


class ValidationError(ServiceError):
    """The runtime's validation error (the control plane says ValidationException)."""

    code = "ValidationError"


class ModelError(ServiceError):
    """The model container answered with an error, timed out or broke the connection.

    ``original_status_code`` is the container's status (0 for a timeout),
    ``original_message`` its body, ``log_stream_arn`` the CloudWatch stream to look at.
    """

    code = "ModelError"
    status = 424

    def __init__(
        self,
        message: str,
        *,
        original_status_code: int | None = None,
        original_message: str | None = None,
        log_stream_arn: str | None = None,
    ) -> None:
        super().__init__(message)
        self.original_status_code = original_status_code
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn

    def members(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "Message": self.message,
            "OriginalStatusCode": self.original_status_code,
            "OriginalMessage": self.original_message,
            "LogStreamArn": self.log_stream_arn,
        }
        return {k: v for k, v in found.items() if v is not None}


class ModelNotReadyException(ServiceError):
    """A serverless variant or a multi-model target is still loading."""

    code = "ModelNotReadyException"
    status = 429


class ServiceUnavailable(ServiceError):
    """The service cannot answer now."""

    code = "ServiceUnavailable"
    status = 503


class InternalDependencyException(ServiceError):
    """A service the runtime depends on failed."""

    code = "InternalDependencyException"
    status = 530


class ModelStreamError(ServiceError):
    """A failure after a response stream has started; sent as an exception event frame.

    ``error_code`` is ``ModelInvocationTimeExceeded`` or ``StreamBroken`` on AWS. ``status`` is
    nominal: an event frame has no HTTP status (botocore reports such frames as 400).
    """

    code = "ModelStreamError"

    def __init__(self, message: str, *, error_code: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code

    def members(self) -> dict[str, Any]:
        found: dict[str, Any] = {"Message": self.message}
        if self.error_code is not None:
            found["ErrorCode"] = self.error_code
        return found


class InternalStreamFailure(ServiceError):
    """An internal failure after a response stream has started (exception event frame)."""

    code = "InternalStreamFailure"


# -- AWS's exact messages for the cases clients match on ---------------------------------


def resource_not_found_job() -> ValidationException:
    """A missing training, processing or transform job (aws/aws-sdk#165)."""
    return ValidationException("Requested resource not found.")


def could_not_find(kind_label: str, arn: str) -> ValidationException:
    """A missing model, endpoint configuration or endpoint.

    ``kind_label`` is ``"model"``, ``"endpoint configuration"`` or ``"endpoint"``; ``arn`` is the
    resource's ARN (AWS lower-cases the name in it).
    """
    return ValidationException(f'Could not find {kind_label} "{arn}".')


def already_exists(kind_label: str, arn: str) -> ValidationException:
    """Create* of a model, endpoint configuration or endpoint whose name is taken."""
    return ValidationException(f'Cannot create already existing {kind_label} "{arn}".')


def job_name_in_use(kind_label: str, arn: str) -> ResourceInUse:
    """Create*Job with a name already used in this account and region.

    AWS's wording for ``kind_label="training job"``: "Training job names must be unique within
    an AWS account and region, and a training job with this name already exists (<arn>)". The
    same sentence is used for other job kinds (processing, transform), whose exact text was not
    found in any source.
    """
    return ResourceInUse(
        f"{kind_label[:1].upper()}{kind_label[1:]} names must be unique within an AWS account and "
        f"region, and a {kind_label} with this name already exists ({arn})"
    )


def training_job_exists(arn: str) -> ResourceInUse:
    """CreateTrainingJob with a name that is already taken."""
    return job_name_in_use("training job", arn)


__all__ = [
    "AccessDeniedException",
    "ConflictException",
    "InternalDependencyException",
    "InternalFailure",
    "InternalStreamFailure",
    "ModelError",
    "ModelNotReadyException",
    "ModelStreamError",
    "OperationNotSupported",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFound",
    "SerializationException",
    "ServiceError",
    "ServiceUnavailable",
    "ThrottlingException",
    "UnknownOperationException",
    "ValidationError",
    "ValidationException",
    "already_exists",
    "could_not_find",
    "job_name_in_use",
    "resource_not_found_job",
    "training_job_exists",
]
