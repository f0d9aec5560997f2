"""InvokeEndpoint served by a front: routing-table look-up, one exchange with the container.

The fast path accepts a request only when it is certain to answer it exactly as the control
process would; everything else returns ``False`` and the request is forwarded unchanged, so
the control process words every validation error, serves every mode the front does not
(see ``emulator/hosting/publication.py``), and stays the one authority. Accepted means:

* ``POST /endpoints/<name>/invocations`` signed for ``sagemaker``, no header repeated, and
  the edge's request policy (``emulator/gateway/http_policy.py``) lets it through;
* every ``X-Amzn-SageMaker-*`` header is one the front knows, and each modelled header
  satisfies the botocore model's length and pattern rules (handed over by the control
  process, compiled once), the body is 1 byte to 6 MiB, in memory;
* the endpoint has a route here, the chosen variant is one a front may serve, and the
  request's TargetVariant / TargetContainerHostname / TargetModel fit it (a TargetModel
  only when an instance has it loaded).

A failing container gets SageMaker's ModelError, built by the same functions the control
process uses (``emulator/hosting/runtime_errors.py``). A multi-model container that no
longer has the model (404) or is out of memory (507) did not run the request: it is then
forwarded to the control process, which reloads or makes room as it always does.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from emulator.context import CallContext
from emulator.edge.connection import ClientConnection, Request
from emulator.edge.table import FrontContainer, FrontRoute, FrontVariant
from emulator.edge.upstream import ContainerPool, UpstreamResponse
from emulator.errors import InternalFailure, ServiceError
from emulator.gateway.wire_errors import error_response
from emulator.hosting.data_plane import SERVE_DIRECT, SERVE_MULTI_MODEL, SERVE_SINGLE
from emulator.hosting.runtime_errors import broken_error, model_error, timeout_error

if TYPE_CHECKING:
    from emulator.edge.front import Front

log = logging.getLogger(__name__)

MAX_PAYLOAD = 6 * 1024 * 1024
"""BodyBlob's limit: request and response bodies of real-time endpoints."""
TARGET_MODEL = b"x-amzn-sagemaker-target-model"
TARGET_VARIANT = b"x-amzn-sagemaker-target-variant"
TARGET_HOSTNAME = b"x-amzn-sagemaker-target-container-hostname"
CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
INFERENCE_ID = b"x-amzn-sagemaker-inference-id"
SERVED_HEADERS = frozenset(
    {b"content-type", b"accept", TARGET_MODEL, TARGET_VARIANT, TARGET_HOSTNAME, CUSTOM_ATTRIBUTES, INFERENCE_ID}
)
"""Modelled headers the fast path handles; other X-Amzn-SageMaker-* headers (inference
components, sessions, explanations) are the control process's to answer."""
_PREFIX = b"/endpoints/"
_SUFFIX = b"/invocations"
_SAGEMAKER_PREFIX = b"x-amzn-sagemaker-"
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}


class InvokeFastPath:
    """Serves the invocations a front can answer by itself."""

    def __init__(self, front: Front, header_rules: list[tuple[bytes, int, int, Any]]) -> None:
        self.front = front
        self.settings = front.settings
        self.table = front.table
        self.account_id: str = front.settings.account_id
        self.default_region: str = front.settings.region
        self.timeout: float = front.settings.invocation_timeout_seconds
        self.rules: dict[bytes, tuple[int, int, Any]] = {
            name: (low, high, pattern) for name, low, high, pattern in header_rules if name in SERVED_HEADERS
        }
        """Lower-cased header -> (min length, max length, compiled pattern or None), from the model."""

    def serve(self, request: Request, conn: ClientConnection) -> bool:
        """Start answering ``request``; False when it must go to the control process."""
        if request.method != b"POST" or request.repeated or request.spool is not None:
            return False
        url = request.url
        if not (url.startswith(_PREFIX) and url.endswith(_SUFFIX)):
            return False
        name = url[11:-12]
        if not name or b"/" in name or b"%" in name:
            return False
        headers = request.headers
        if request.service != b"sagemaker" or b"authorization" not in headers:
            return False
        body = request.body
        if not body or len(body) > MAX_PAYLOAD:
            return False
        rules = self.rules
        for header, value in headers.items():
            rule = rules.get(header)
            if rule is None:
                if header.startswith(_SAGEMAKER_PREFIX):
                    return False
                continue
            low, high, pattern = rule
            if not low <= len(value) <= high or (
                pattern is not None and pattern.fullmatch(value.decode("latin-1")) is None
            ):
                return False
        route = self.table.routes.get(name.decode("latin-1").lower())
        if route is None:
            return False
        wanted = headers.get(TARGET_VARIANT)
        variant = route.choose_variant() if wanted is None else route.variants.get(wanted.decode("latin-1"))
        if variant is None or not variant.serve:
            return False
        found = self._target(variant, headers)
        if found is None:
            return False
        if b"origin" in headers:  # a browser's call: the control process adds the CORS headers
            return False
        container, path, who = found
        pool = container.pool
        if pool is None or pool.closed:
            pool = container.pool = self.front.pool(container.address)
        payload = self._container_request(pool, path, headers, body)
        exchange = _Invocation(self, request, conn, route, variant, container, who)
        route.inflight += 1
        pool.request(payload, self.timeout, MAX_PAYLOAD, exchange.done)
        return True

    def _target(self, variant: FrontVariant, headers: dict[bytes, bytes]) -> tuple[FrontContainer, bytes, str] | None:
        """The container, path and how errors name it; None when the control process must decide."""
        serve = variant.serve
        target_model = headers.get(TARGET_MODEL)
        hostname = headers.get(TARGET_HOSTNAME)
        if serve == SERVE_SINGLE:
            if target_model is not None or hostname is not None:
                return None
            instance = variant.next_instance()
            return (instance.containers[0], b"/invocations", "primary") if instance is not None else None
        if serve == SERVE_DIRECT:
            if target_model is not None or not hostname:
                return None
            instance = variant.next_instance()
            if instance is None:
                return None
            text = hostname.decode("latin-1")
            container = instance.by_hostname.get(text)
            return (container, b"/invocations", text) if container is not None else None
        if serve == SERVE_MULTI_MODEL:
            if not target_model or hostname is not None:
                return None
            warm = self.table.warm(variant, target_model.decode("latin-1"))
            if warm is None:
                return None
            container, model = warm
            return container, b"/models/" + model.encode() + b"/invoke", "primary"
        return None

    def _container_request(
        self, pool: ContainerPool, path: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> bytes:
        """The request SageMaker sends a container: its headers, in one piece with the body."""
        parts = [b"POST ", path, b" HTTP/1.1\r\nHost: ", pool.host_header, b"\r\nContent-Length: ",
                 str(len(body)).encode(), b"\r\n"]
        value = headers.get(b"content-type")
        if value:
            parts += (b"Content-Type: ", value, b"\r\n")
        value = headers.get(b"accept")
        if value:
            parts += (b"Accept: ", value, b"\r\n")
        value = headers.get(CUSTOM_ATTRIBUTES)
        if value is not None:
            parts += (b"X-Amzn-SageMaker-Custom-Attributes: ", value, b"\r\n")
        value = headers.get(INFERENCE_ID)
        if value:
            parts += (b"X-Amzn-SageMaker-Inference-Id: ", value, b"\r\n")
        value = headers.get(TARGET_MODEL)
        if value:
            parts += (b"X-Amzn-SageMaker-Target-Model: ", value, b"\r\n")
        parts += (b"\r\n", body)
        return b"".join(parts)


class _Invocation:
    """One invocation in flight: turns the container's answer into the client's."""

    __slots__ = ("conn", "container", "path", "request", "route", "started", "variant", "who")

    def __init__(
        self,
        path: InvokeFastPath,
        request: Request,
        conn: ClientConnection,
        route: FrontRoute,
        variant: FrontVariant,
        container: FrontContainer,
        who: str,
    ) -> None:
        self.path = path
        self.request = request
        self.conn = conn
        self.route = route
        self.variant = variant
        self.container = container
        self.who = who
        self.started = path.front.loop.time()

    def done(self, response: UpstreamResponse | None, error: BaseException | None) -> None:
        self.route.leave()
        try:
            self._done(response, error)
        except Exception as exc:  # a bug of ours must still answer, in AWS's shape
            log.exception("answering an invocation of %s failed", self.route.name)
            failure = InternalFailure(f"internal error: {exc}")
            self.conn.respond(self.request, render_error(failure, self.path.front.request_id(), False), False)

    def _done(self, response: UpstreamResponse | None, error: BaseException | None) -> None:
        conn = self.conn
        if conn.transport is None:
            self.request.discard()
            conn.busy = False
            return
        front = self.path.front
        request_id = front.request_id()
        region = self.request.region.decode("latin-1") or self.path.default_region
        seconds = front.loop.time() - self.started
        if response is not None and 200 <= response.status < 300 and not response.truncated:
            front.report_invocation(region, self.route.name, self.variant.name, seconds, None)
            self._answer(response, request_id)
            return
        multi_model = self.variant.serve == SERVE_MULTI_MODEL
        if response is not None and multi_model and response.status in (404, 507):
            front.forward(self.request, conn)  # not run: the control process loads or makes room
            return
        status = response.status if response is not None and not response.truncated else 500
        front.report_invocation(region, self.route.name, self.variant.name, seconds, status)
        ctx = CallContext(region=region, account_id=self.path.account_id, request_id=request_id)
        err: ServiceError
        if isinstance(error, TimeoutError):
            err = timeout_error(self.route, self.who, self.path.timeout, ctx)
        elif error is not None:
            err = broken_error(self.route, self.who, str(error), ctx)
        else:
            assert response is not None
            if response.truncated:
                err = broken_error(self.route, self.who, f"the response is larger than {MAX_PAYLOAD} bytes", ctx)
            else:
                err = model_error(self.route, self.who, response.status, response.body, ctx)
        conn.respond(self.request, render_error(err, request_id, self.request.keep_alive))

    def _answer(self, response: UpstreamResponse, request_id: str) -> None:
        headers = response.headers
        if self.variant.serve == SERVE_MULTI_MODEL:
            target = self.request.headers[TARGET_MODEL].decode("latin-1")
            self.path.front.report_hit(self.container.container_id, target, time.time())
        body = response.body
        parts = [
            b"HTTP/1.1 200 OK\r\nContent-Type: ", headers.get(b"content-type") or b"application/octet-stream",
            b"\r\nx-Amzn-Invoked-Production-Variant: ", self.variant.name.encode(), b"\r\n",
        ]
        attributes = headers.get(CUSTOM_ATTRIBUTES)
        if attributes is not None:
            parts += (b"X-Amzn-SageMaker-Custom-Attributes: ", attributes, b"\r\n")
        parts += (b"Content-Length: ", str(len(body)).encode(), b"\r\nx-amzn-RequestId: ", request_id.encode())
        parts.append(b"\r\n\r\n" if self.request.keep_alive else b"\r\nConnection: close\r\n\r\n")
        parts.append(body)
        self.conn.respond(self.request, b"".join(parts))


def render_error(err: ServiceError, request_id: str, keep_alive: bool = True) -> bytes:
    """A runtime error as a complete rest-json response."""
    status, headers, body = error_response(err, "rest-json", request_id=request_id)
    lines = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} Error\r\n".encode()]
    lines.extend(f"{name}: {value}\r\n".encode("latin-1", "replace") for name, value in headers)
    lines.append(f"Content-Length: {len(body)}\r\n".encode())
    if not keep_alive:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)
