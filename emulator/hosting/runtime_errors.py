"""The runtime's error answers for a container's failure, in SageMaker's words.

Shared by the control process's invoker and the data-plane front processes, so both answer
a failing container identically; it imports nothing heavier than the error classes, because
a front process starts with as little as it can.
"""

from __future__ import annotations

from typing import Protocol

from emulator.context import CallContext
from emulator.errors import ModelError, ValidationError


class Named(Protocol):
    """Anything that carries an endpoint's name (a route of the control process or of a front)."""

    @property
    def name(self) -> str: ...


def log_group(endpoint_name: str) -> str:
    """The endpoint's CloudWatch log group."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def log_group_arn(region: str, account_id: str, endpoint_name: str) -> str:
    """What ModelError's LogStreamArn carries (the group's ARN, as AWS sends it)."""
    return f"arn:aws:logs:{region}:{account_id}:log-group:{log_group(endpoint_name)}"


def not_found(name: str, ctx: CallContext) -> ValidationError:
    """The runtime's answer for an endpoint that does not exist (or is not serving)."""
    return ValidationError(f"Endpoint {name} of account {ctx.account_id} not found.")


def model_error(route: Named, who: str, status: int, body: bytes, ctx: CallContext) -> ModelError:
    """SageMaker's ModelError for a container that answered ``status`` (research §2.4)."""
    text = body.decode("utf-8", "replace")
    kind = "client" if 400 <= status < 500 else "server"
    return ModelError(
        f'Received {kind} error ({status}) from {who} with message "{text[:4096]}". See {_logs_url(route, ctx)} '
        f"in account {ctx.account_id} for more information.",
        original_status_code=status,
        original_message=text,
        log_stream_arn=log_group_arn(ctx.region, ctx.account_id, route.name),
    )


def timeout_error(route: Named, who: str, timeout: float, ctx: CallContext) -> ModelError:
    """The 60 s invocation timeout (OriginalStatusCode 0, as AWS reports it)."""
    text = (
        f"Your invocation timed out while waiting for a response from container {who}. Review the latency "
        "metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
    )
    return ModelError(
        f'Received server error (0) from {who} with message "{text}". See {_logs_url(route, ctx)} in account '
        f"{ctx.account_id} for more information.",
        original_status_code=0,
        original_message=text,
        log_stream_arn=log_group_arn(ctx.region, ctx.account_id, route.name),
    )


def broken_error(route: Named, who: str, detail: str, ctx: CallContext) -> ModelError:
    """The container closed the connection (or crashed) without a complete answer."""
    return ModelError(
        f"Received server error (500) from {who} and could not load the entire response body ({detail}). "
        f"See {_logs_url(route, ctx)} in account {ctx.account_id} for more information.",
        original_status_code=500,
        original_message=detail,
        log_stream_arn=log_group_arn(ctx.region, ctx.account_id, route.name),
    )


def _logs_url(route: Named, ctx: CallContext) -> str:
    region = ctx.region
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group=/aws/sagemaker/Endpoints/{route.name}"
    )
