"""InvokeEndpoint: choose a variant and an instance, call its container(s), map failures.

The path reads only the routing table and a connection pool: no store query, no Docker
call. A container's failure is always ``ModelError`` (424) with SageMaker's message, never a
5xx, because botocore retries 5xx and would silently run the model again. Serial pipelines
pass each container's answer (and its Content-Type) to the next; Direct invocation picks a
container by TargetContainerHostname.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.context import CallContext
from emulator.errors import ModelError, ServiceUnavailable, ValidationError
from emulator.hosting.container_http import ContainerResponse, ContainerUnreachable
from emulator.hosting.logs import log_group_arn
from emulator.hosting.routing import (
    ContainerTarget,
    EndpointRoute,
    InstanceRoute,
    RoutingTable,
    VariantRoute,
)
from emulator.hosting.validation import DIRECT, SERIAL

MAX_PAYLOAD = 6 * 1024 * 1024
"""Request and response Body limit of real-time endpoints (BodyBlob max, 6 MiB)."""
MAX_SERVERLESS_PAYLOAD = 4 * 1024 * 1024
"""Serverless endpoints take at most 4 MB."""
MAX_PIPELINE_HOP = 5 * 1024 * 1024
"""A serial pipeline refuses more than 5 MB between two containers."""
DEFAULT_TIMEOUT = 60.0

ColdStart = Callable[[EndpointRoute, VariantRoute], InstanceRoute]
MultiModelCall = Callable[
    [EndpointRoute, VariantRoute, str, "Invocation", CallContext, float], ContainerResponse
]
"""``(route, variant, TargetModel, invocation, ctx, timeout)``: a multi-model invocation."""


@dataclass(frozen=True)
class Invocation:
    """What the client asked for, in the container's terms."""

    body: bytes
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    target_hostname: str | None = None
    target_model: str | None = None

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> Invocation:
        """From a parsed InvokeEndpoint (or streaming / async) request."""
        body = request.get("Body") or b""
        if isinstance(body, str):
            body = body.encode()
        return cls(
            body=body,
            content_type=request.get("ContentType"),
            accept=request.get("Accept"),
            custom_attributes=request.get("CustomAttributes"),
            inference_id=request.get("InferenceId"),
            target_hostname=request.get("TargetContainerHostname"),
            target_model=request.get("TargetModel"),
        )

    def headers(self, content_type: str | None, accept: str | None) -> dict[str, str]:
        """The headers SageMaker forwards to a container."""
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        if self.custom_attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = self.custom_attributes
        if self.inference_id:
            headers["X-Amzn-SageMaker-Inference-Id"] = self.inference_id
        if self.target_model:
            headers["X-Amzn-SageMaker-Target-Model"] = self.target_model
        return headers


class InvocationMetrics:
    """Invocations, errors and ModelLatency per endpoint and variant, where SageMaker puts them
    (namespace ``AWS/SageMaker``, dimensions EndpointName and VariantName), through a
    :class:`~.multi_model_metrics.MetricsPublisher` that aggregates in memory and puts once a
    second: an invocation pays a dictionary update, never a CloudWatch call."""

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher

    def record(self, region: str, endpoint: str, variant: str, seconds: float, error_status: int | None) -> None:
        """One invocation that reached a container: its latency, or the status of its error."""
        record = self.publisher.record
        record(region, endpoint, variant, "Invocations", 1.0, "None")
        if error_status is None:
            record(region, endpoint, variant, "ModelLatency", seconds * 1e6, "Microseconds")
        elif 400 <= error_status < 500:
            record(region, endpoint, variant, "Invocation4XXErrors", 1.0, "None")
        else:
            record(region, endpoint, variant, "Invocation5XXErrors", 1.0, "None")


def no_instance(route: EndpointRoute, variant: VariantRoute) -> ServiceUnavailable:
    """AWS's answer while a variant has no healthy instance (a failed one is being replaced).

    A 5xx is right here, unlike for a container's own failure: no container saw the request,
    so botocore's retries cannot run the model twice.
    """
    return ServiceUnavailable(
        "A transient exception occurred while retrieving variant instances. Please try your request again. "
        f"(sagemaker-emulator: variant {variant.name} of endpoint {route.name} has no healthy instance right now.)"
    )


def not_found(name: str, ctx: CallContext) -> ValidationError:
    """The runtime's answer for an endpoint that does not exist (or is not serving)."""
    return ValidationError(f"Endpoint {name} of account {ctx.account_id} not found.")


def model_error(route: EndpointRoute, who: str, status: int, body: bytes, ctx: CallContext) -> ModelError:
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


def timeout_error(route: EndpointRoute, who: str, timeout: float, ctx: CallContext) -> ModelError:
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


def broken_error(route: EndpointRoute, who: str, detail: str, ctx: CallContext) -> ModelError:
    """The container closed the connection (or crashed) without a complete answer."""
    return ModelError(
        f"Received server error (500) from {who} and could not load the entire response body ({detail}). "
        f"See {_logs_url(route, ctx)} in account {ctx.account_id} for more information.",
        original_status_code=500,
        original_message=detail,
        log_stream_arn=log_group_arn(ctx.region, ctx.account_id, route.name),
    )


def _logs_url(route: EndpointRoute, ctx: CallContext) -> str:
    region = ctx.region
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group=/aws/sagemaker/Endpoints/{route.name}"
    )


def choose_variant(route: EndpointRoute, target_variant: str | None) -> VariantRoute:
    """TargetVariant when given, else a weighted draw."""
    if target_variant:
        variant = route.variants.get(target_variant)
        if variant is None:
            raise ValidationError(
                f'The variant "{target_variant}" is not present in endpoint "{route.name}".'
            )
        return variant
    chosen = route.choose_variant()
    if chosen is None:
        raise ValidationError(
            f"Endpoint {route.name} has no variant with a weight above 0; use TargetVariant to reach one."
        )
    return chosen


def check_hostname(route: EndpointRoute, variant: VariantRoute, hostname: str | None) -> None:
    """TargetContainerHostname is required for Direct endpoints and refused elsewhere."""
    mode = variant.plan.mode
    if mode == DIRECT:
        if not hostname:
            raise ValidationError(
                f"Endpoint {route.name} uses direct invocation; specify TargetContainerHostname "
                f"({', '.join(c.hostname for c in variant.plan.containers)})."
            )
        if all(c.hostname != hostname for c in variant.plan.containers):
            raise ValidationError(
                f"TargetContainerHostname {hostname} is not a container of endpoint {route.name} "
                f"(containers: {', '.join(c.hostname for c in variant.plan.containers)})."
            )
    elif hostname:
        raise ValidationError(
            f"Endpoint {route.name} is not configured for direct invocation and does not support the "
            "target container hostname header."
        )


class Invoker:
    """Runs invocations against the routing table."""

    def __init__(
        self,
        table: RoutingTable,
        timeout: float = DEFAULT_TIMEOUT,
        cold_start: ColdStart | None = None,
        multi_model: MultiModelCall | None = None,
        metrics: InvocationMetrics | None = None,
    ) -> None:
        self.table = table
        self.timeout = timeout
        self.cold_start = cold_start
        self.multi_model = multi_model
        self.metrics = metrics

    def route_for(self, name: str, ctx: CallContext, asynchronous: bool = False) -> EndpointRoute:
        """The live route of an endpoint; ValidationError when there is none or the kind is wrong."""
        route = self.table.get(name)
        if route is None:
            raise not_found(name, ctx)
        if asynchronous and not route.async_config:
            raise ValidationError(f"Endpoint {name} is not configured for asynchronous inference.")
        if not asynchronous and route.async_config:
            raise ValidationError(
                f"Endpoint {name} is an asynchronous inference endpoint; use InvokeEndpointAsync."
            )
        return route

    def acquire(self, name: str, ctx: CallContext, asynchronous: bool = False) -> EndpointRoute:
        """The live route, counted in; the caller must call ``route.leave()`` when done.

        A route retired by an update between the lookup and the count is left again and the
        lookup repeated, so no request reaches a fleet that is being stopped.
        """
        while True:
            route = self.route_for(name, ctx, asynchronous)
            route.enter()
            if not route.retired:
                return route
            route.leave()

    def instance_for(self, route: EndpointRoute, variant: VariantRoute) -> InstanceRoute:
        """The next instance of a variant, cold-starting a serverless one if none runs."""
        if variant.plan.multi_model is not None:  # only InvokeEndpoint carries TargetModel
            raise ValidationError(
                f"Endpoint {route.name} is a multi-model endpoint; invoke it with InvokeEndpoint and a "
                "target model header."
            )
        variant.last_used = time.monotonic()
        instance = variant.next_instance()
        if instance is None:
            if not variant.plan.is_serverless:
                raise no_instance(route, variant)
            if self.cold_start is None:
                raise ValidationError(
                    f"Endpoint {route.name} has no running instance of variant {variant.name}."
                )
            instance = self.cold_start(route, variant)
        return instance

    def invoke_endpoint(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """InvokeEndpoint."""
        route = self.acquire(request["EndpointName"], ctx)
        try:
            invocation = Invocation.from_request(request)
            variant = choose_variant(route, request.get("TargetVariant"))
            multi_model = variant.plan.multi_model is not None and self.multi_model is not None
            if invocation.target_model and not multi_model:
                raise ValidationError(
                    f"Endpoint {route.name} is not a multi-model endpoint and does not support target model header."
                )
            limit = MAX_SERVERLESS_PAYLOAD if variant.plan.is_serverless else MAX_PAYLOAD
            if len(invocation.body) > limit:
                raise ValidationError(f"Request {ctx.request_id} has oversize body.")
            check_hostname(route, variant, invocation.target_hostname)
            if multi_model and not invocation.target_model:
                raise ValidationError(f"Request {ctx.request_id} is missing a target model header.")
            started = time.monotonic()
            try:
                if multi_model:
                    assert self.multi_model is not None and invocation.target_model
                    response = self.multi_model(
                        route, variant, invocation.target_model, invocation, ctx, self.timeout
                    )
                else:
                    response = self.call(route, variant, invocation, ctx, self.timeout)
            except ModelError as err:
                self._measure(ctx, route, variant, started, err.original_status_code or 500)
                raise
            self._measure(ctx, route, variant, started, None)
        finally:
            route.leave()
        content_type = response.headers.get("Content-Type") or "application/octet-stream"
        if route.capture is not None:
            route.capture.record(route.name, variant.name, invocation, content_type, response.body)
        result: dict[str, Any] = {
            "Body": response.body,
            "ContentType": content_type,
            "InvokedProductionVariant": variant.name,
        }
        attributes = response.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attributes is not None:
            result["CustomAttributes"] = attributes
        return result

    def _measure(
        self, ctx: CallContext, route: EndpointRoute, variant: VariantRoute, started: float, error: int | None
    ) -> None:
        if self.metrics is not None:
            self.metrics.record(ctx.region, route.name, variant.name, time.monotonic() - started, error)

    def call(
        self,
        route: EndpointRoute,
        variant: VariantRoute,
        invocation: Invocation,
        ctx: CallContext,
        timeout: float,
    ) -> ContainerResponse:
        """Run one invocation on the next instance of ``variant`` (any mode)."""
        instance = self.instance_for(route, variant)
        mode = variant.plan.mode
        if mode == DIRECT:
            target = instance.container(invocation.target_hostname or "")
            assert target is not None  # check_hostname ran
            return self.forward(
                route,
                target,
                target.hostname,
                invocation,
                invocation.content_type,
                invocation.accept,
                ctx,
                timeout,
            )
        if mode == SERIAL:
            return self.pipeline(route, instance, invocation, ctx, timeout)
        target = instance.containers[0]
        return self.forward(
            route, target, "primary", invocation, invocation.content_type, invocation.accept, ctx, timeout
        )

    def pipeline(
        self,
        route: EndpointRoute,
        instance: InstanceRoute,
        invocation: Invocation,
        ctx: CallContext,
        timeout: float,
    ) -> ContainerResponse:
        """A serial inference pipeline: each answer, with its Content-Type, is the next request.

        Only the last container sees the client's Accept (intermediate ones answer in their
        default type, as observed on AWS).
        """
        containers = instance.containers
        payload, content_type = invocation.body, invocation.content_type
        response: ContainerResponse | None = None
        for index, target in enumerate(containers):
            last = index == len(containers) - 1
            step = Invocation(
                payload,
                content_type,
                invocation.accept if last else None,
                invocation.custom_attributes,
                invocation.inference_id,
            )
            response = self.forward(
                route, target, target.hostname, step, content_type, step.accept, ctx, timeout
            )
            if not last and len(response.body) > MAX_PIPELINE_HOP:
                nxt = containers[index + 1].hostname
                raise ModelError(
                    f"Received response from {target.hostname} with status code {response.status}. However, the "
                    f"request payload from {target.hostname} to {nxt} is {len(response.body)} bytes, which has "
                    "exceeded the maximum limit of 5 MB.",
                    original_status_code=response.status,
                    log_stream_arn=log_group_arn(ctx.region, ctx.account_id, route.name),
                )
            payload, content_type = response.body, response.headers.get("Content-Type")
        assert response is not None
        return response

    def forward(
        self,
        route: EndpointRoute,
        target: ContainerTarget,
        who: str,
        invocation: Invocation,
        content_type: str | None,
        accept: str | None,
        ctx: CallContext,
        timeout: float,
    ) -> ContainerResponse:
        """POST /invocations to one container; any failure becomes ModelError."""
        headers = invocation.headers(content_type, accept)
        try:
            response = target.pool.request(
                "POST", "/invocations", invocation.body, headers, timeout, max_body=MAX_PAYLOAD
            )
        except TimeoutError:
            raise timeout_error(route, who, timeout, ctx) from None
        except ContainerUnreachable as exc:
            raise broken_error(route, who, str(exc), ctx) from None
        if response.truncated:
            raise broken_error(route, who, f"the response is larger than {MAX_PAYLOAD} bytes", ctx)
        if not 200 <= response.status < 300:
            raise model_error(route, who, response.status, response.body, ctx)
        return response
