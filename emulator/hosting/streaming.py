"""InvokeEndpointWithResponseStream: the container's chunked answer as AWS event-stream frames.

Each chunk the container sends becomes one ``PayloadPart`` event, in the binary framing
botocore's ``EventStreamBuffer`` parses (prelude, headers, payload, two CRC32s; encoded by
:mod:`emulator.gateway.protocol`). Failures
before the first byte are ordinary JSON errors (ModelError, ValidationError); failures
after it are ``ModelStreamError`` exception frames, as on AWS.

The container is asked on ``POST /invocations-response-stream``; a container that answers
that path with 404 is asked again on ``POST /invocations`` (the plain contract, which
AWS uses for streaming too), so both kinds of streaming server work.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

from emulator.answers import StreamedAnswer
from emulator.context import CallContext
from emulator.errors import ModelStreamError, ValidationError
from emulator.eventstream import payload_part_frame, stream_error_frame
from emulator.hosting.container_http import ContainerUnreachable, open_stream
from emulator.hosting.invoke import MAX_PAYLOAD, Invocation, Invoker, check_hostname, choose_variant
from emulator.hosting.routing import ContainerTarget, EndpointRoute
from emulator.hosting.runtime_errors import broken_error, model_error, timeout_error
from emulator.hosting.validation import DIRECT, SERIAL

STREAM_PATH = "/invocations-response-stream"
_READ = 64 * 1024


class StreamInvoker:
    """Serves InvokeEndpointWithResponseStream as a :class:`StreamedAnswer` the edge writes out."""

    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    def handle(self, operation: str, request: dict[str, Any], ctx: CallContext) -> StreamedAnswer:
        """Open the container's stream, or raise a ServiceError before any byte is sent."""
        invoker = self.invoker
        route = invoker.acquire(request["EndpointName"], ctx)
        try:
            invocation = Invocation.from_request(request)
            variant = choose_variant(route, request.get("TargetVariant"))
            if len(invocation.body) > MAX_PAYLOAD:
                raise ValidationError(f"Request {ctx.request_id} has oversize body.")
            check_hostname(route, variant, invocation.target_hostname)
            instance = invoker.instance_for(route, variant)
            mode = variant.plan.mode
            if mode == DIRECT:
                target = instance.container(invocation.target_hostname or "")
                assert target is not None
                who = target.hostname
            elif mode == SERIAL:
                # Earlier stages answer whole; the last container streams.
                if len(instance.containers) > 1:
                    head = type(instance)(instance.instance_id, instance.containers[:-1])
                    first = invoker.pipeline(
                        route,
                        head,
                        Invocation(
                            invocation.body,
                            invocation.content_type,
                            None,
                            invocation.custom_attributes,
                            invocation.inference_id,
                        ),
                        ctx,
                        invoker.timeout,
                    )
                    invocation = Invocation(
                        first.body,
                        first.headers.get("Content-Type"),
                        invocation.accept,
                        invocation.custom_attributes,
                        invocation.inference_id,
                    )
                target = instance.containers[-1]
                who = target.hostname
            else:
                target, who = instance.containers[0], "primary"
            conn, response = self._open(route, target, who, invocation, ctx)
        except BaseException:
            route.leave()
            raise
        headers = {
            "Content-Type": "application/vnd.amazon.eventstream",
            "X-Amzn-SageMaker-Content-Type": response.headers.get("Content-Type")
            or "application/octet-stream",
            "x-Amzn-Invoked-Production-Variant": variant.name,
            "x-amzn-RequestId": ctx.request_id,
        }
        attributes = response.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
        frames = self._frames(route, conn, response, who)
        return StreamedAnswer(200, headers, frames)

    def _open(
        self,
        route: EndpointRoute,
        target: ContainerTarget,
        who: str,
        invocation: Invocation,
        ctx: CallContext,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        timeout = self.invoker.timeout
        headers = invocation.headers(invocation.content_type, invocation.accept)
        pool = target.pool
        try:
            for path in (STREAM_PATH, "/invocations"):
                conn, response = open_stream(
                    pool.host, pool.port, "POST", path, invocation.body, headers, timeout
                )
                if response.status == 404 and path == STREAM_PATH:
                    conn.close()
                    continue
                if not 200 <= response.status < 300:
                    body = response.read(MAX_PAYLOAD)
                    conn.close()
                    raise model_error(route, who, response.status, body, ctx)
                return conn, response
        except TimeoutError:
            raise timeout_error(route, who, timeout, ctx) from None
        except ContainerUnreachable as exc:
            raise broken_error(route, who, str(exc), ctx) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _frames(
        self,
        route: EndpointRoute,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        who: str,
    ) -> Iterator[bytes]:
        """Relay chunks as PayloadPart events; a failure mid-stream becomes a ModelStreamError frame."""
        try:
            while True:
                chunk = response.read1(_READ)
                if not chunk:
                    break
                yield payload_part_frame(chunk)
        except TimeoutError:
            yield stream_error_frame(
                ModelStreamError(
                    f"Your invocation timed out while waiting for a response from container {who}.",
                    error_code="ModelInvocationTimeExceeded",
                )
            )
        except (OSError, http.client.HTTPException) as exc:
            yield stream_error_frame(
                ModelStreamError(
                    f"The stream from container {who} broke: {exc or type(exc).__name__}.",
                    error_code="StreamBroken",
                )
            )
        finally:
            conn.close()
            route.leave()
