"""The edge: one WSGI application on one port that answers as every AWS service.

Routing, in order (DESIGN.md decision 1):

1. ``/moto-api/...``                                   -> moto (only with SMEMU_MOTO_API=1; http_policy.py)
2. SigV4 scope ``sagemaker`` (or unsigned) and ``X-Amz-Target: SageMaker.<Op>``
                                                       -> the control plane (Flask)
3. scope ``sagemaker`` and a path under ``/endpoints/`` -> the runtime (Flask)
4. S3 (signed for ``s3``, presigned, or unsigned below a bucket) -> the object store's proxy
   (objectstore/proxy.py), or moto when the store is moto's in-memory S3
5. scope ``iam`` and an action moto lacks (the policy simulator)
                                                       -> iam_query.py
6. everything else (IAM, STS, ECR, Logs, SNS)          -> moto

A SageMaker operation no platform service executes is answered by moto only when moto stores
it faithfully (coverage.STORED); every other one is refused at once (coverage.py).

S3 is recognised by its credential scope before any path is looked at, so a bucket named
``endpoints`` is still S3.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Response, request

from emulator.answers import StreamedAnswer
from emulator.context import CallContext
from emulator.errors import InternalFailure, ServiceError, ValidationError
from emulator.gateway import coverage
from emulator.gateway.aws import MotoBridge
from emulator.gateway.control import ControlPlane
from emulator.gateway.iam_query import IamExtensions
from emulator.gateway.protocol import JsonRpcProtocol, RestJsonProtocol, error_response
from emulator.objectstore.signing import is_s3_request

log = logging.getLogger(__name__)

HEALTH_PATH = "/_smemu/health"
"""The emulator's own status page (outside every AWS API's path space)."""
ENDPOINT_MODELS_PATH = "/_smemu/endpoints/<name>/models"
"""Read-only: what a multi-model endpoint has loaded, with hits, misses, loads and evictions."""

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")

RuntimeHandler = Callable[[str, dict[str, Any], CallContext], Mapping[str, Any]]
"""``(operation name, parsed request, ctx) -> result`` for sagemaker-runtime operations."""

StreamingHandler = Callable[[str, dict[str, Any], CallContext], StreamedAnswer]
"""Handlers whose answer streams (InvokeEndpointWithResponseStream): the edge writes it out."""


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 424: "Failed Dependency",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _environ_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """Request headers from a WSGI environ, names lower-cased (what the protocol reads)."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _read_body(environ: Mapping[str, Any]) -> bytes:
    """The request body, by Content-Length (chunked uploads are read to the end)."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return bytes(stream.read(int(length)))
    return bytes(stream.read()) if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" else b""


def credential_scope(environ: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(region, service)`` from a SigV4 Authorization header, or ``(None, None)``."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        return None, None
    return match.group(1), match.group(2).lower()


class EdgeApplication:
    """The WSGI callable served on the edge port."""

    def __init__(
        self,
        control: ControlPlane,
        moto: MotoBridge,
        default_region: str,
        account_id: str,
        runtime: RuntimeHandler | None = None,
        streaming: dict[str, StreamingHandler] | None = None,
        views: Mapping[str, Callable[[str], Any]] | None = None,
        s3: Callable[..., Iterable[bytes]] | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.control = control
        self.moto = moto
        self.default_region = default_region
        self.account_id = account_id
        self.runtime = runtime
        self.streaming = streaming or {}
        self.views = views if views is not None else {}
        self.s3 = s3
        """What serves S3: the proxy to the object store, or moto behind the edge's S3 checks; None: moto."""
        self.status = status or (lambda: {})
        """Extra fields of ``/_smemu/health`` (the object store, the AWS state journal)."""
        self.json_protocol = JsonRpcProtocol("sagemaker")
        self.rest_protocol = RestJsonProtocol("sagemaker-runtime")
        self.iam = IamExtensions(account_id)
        self.flask = self._create_flask()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH or path.startswith("/_smemu/endpoints/"):
            return self.flask(environ, start_response)
        if self.s3 is not None and is_s3_request(environ):
            return self.s3(environ, start_response)
        region, service = credential_scope(environ)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not path.startswith("/moto-api") and service in (None, "sagemaker"):
            environ["smemu.region"] = region or self.default_region
            if target.startswith("SageMaker.") or (service == "sagemaker" and path == "/"):
                return self.flask(environ, start_response)
            if service == "sagemaker" and path.startswith("/endpoints/"):
                return self._runtime(environ, start_response)
        if service == "iam":
            answered = self.iam(environ, start_response, region)
            if answered is not None:
                return answered
        return self.moto(environ, start_response)

    # -- Flask side ---------------------------------------------------------------------

    def _create_flask(self) -> Flask:
        app = Flask("emulator")
        app.add_url_rule("/", "control", self._control, methods=["POST"])
        app.add_url_rule(HEALTH_PATH, "health", self._health, methods=["GET"])
        app.add_url_rule(ENDPOINT_MODELS_PATH, "endpoint_models", self._endpoint_models, methods=["GET"])
        return app

    def _endpoint_models(self, name: str) -> Response:
        view = self.views.get("endpoint-models")
        found = view(name) if view is not None else None
        status, body = (200, found) if found is not None else (404, {"message": f"Endpoint {name} is not serving."})
        return Response(json.dumps(body), status=status, headers={"Content-Type": "application/json"})

    def _health(self) -> Response:
        body = {"status": "ok", "operations": self.control.operations, **self.status()}
        data_plane = self.views.get("data-plane")
        if data_plane is not None:
            body["data_plane"] = data_plane("")
        return Response(json.dumps(body), status=200, headers={"Content-Type": "application/json"})

    def _context(self) -> CallContext:
        return CallContext(region=request.environ["smemu.region"], account_id=self.account_id)

    def _control(self) -> Response:
        ctx = self._context()
        body = request.get_data(cache=True)
        try:
            operation = self.json_protocol.operation_from_target(request.headers.get("X-Amz-Target"))
            executed = self.control.handles(operation.name)
            if not executed and operation.name not in coverage.STORED:
                raise coverage.refusal(operation.name)  # at once: not even parsed
            params = self.json_protocol.parse(operation, body)
            if not executed:
                return self._stored_by_moto(operation.name, params, body)
            try:
                result = self.control.call(operation.name, params, ctx)
            except NotImplementedError:  # not about the platform's own resources
                if operation.name not in coverage.STORED:
                    raise coverage.refusal(operation.name) from None
                return self._stored_by_moto(operation.name, params, body)
            payload = self.json_protocol.serialize(operation, result)
        except ServiceError as err:
            return self._error(err, "json", ctx)
        except Exception as exc:  # a bug must still answer in AWS's shape, and be logged
            log.exception("%s failed", request.headers.get("X-Amz-Target"))
            return self._error(InternalFailure(f"internal error: {exc}"), "json", ctx)
        return Response(
            payload,
            status=200,
            headers={"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": ctx.request_id},
        )

    def _runtime(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """sagemaker-runtime calls, served without Flask: this is the hot invoke path."""
        ctx = CallContext(region=environ["smemu.region"], account_id=self.account_id)
        try:
            found = self.rest_protocol.operation_for(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
            if found is None:
                raise ValidationError(f"Unknown runtime path {str(environ.get('PATH_INFO'))[:200]}")
            operation, uri_params = found
            params = self.rest_protocol.parse(operation, uri_params, _environ_headers(environ), _read_body(environ))
            streaming = self.streaming.get(operation.name)
            if streaming is not None:
                answer = streaming(operation.name, params, ctx)
                start_response(f"{answer.status} {_REASONS.get(answer.status, 'Status')}", list(answer.headers.items()))
                return answer.body
            if self.runtime is None:
                raise ValidationError(
                    f"Endpoint {params.get('EndpointName')} of account {self.account_id} not found."
                )
            result = self.runtime(operation.name, params, ctx)
            status, headers, payload = self.rest_protocol.serialize(operation, result)
        except ServiceError as err:
            status, headers, payload = error_response(err, "rest-json", request_id=ctx.request_id)
        except Exception as exc:
            log.exception("runtime call %s failed", environ.get("PATH_INFO"))
            err = InternalFailure(f"internal error: {exc}")
            status, headers, payload = error_response(err, "rest-json", request_id=ctx.request_id)
        headers = [*headers, ("Content-Length", str(len(payload))), ("x-amzn-RequestId", ctx.request_id)]
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [payload]

    def _error(self, err: ServiceError, protocol: str, ctx: CallContext) -> Response:
        status, headers, payload = error_response(err, protocol, request_id=ctx.request_id)
        response = Response(payload, status=status)
        for name, value in headers:
            response.headers[name] = value
        return response

    def _stored_by_moto(self, operation: str, params: dict[str, Any], body: bytes) -> Response:
        """A stored operation (emulator/gateway/coverage.py): moto keeps the record, unless it asks for work."""
        refused = coverage.stored_refusal(operation, params)
        if refused is not None:
            raise refused
        return self._forward_to_moto(body)

    def _forward_to_moto(self, body: bytes) -> Response:
        """Hand the current request, body restored, to moto and relay its answer."""
        environ = dict(request.environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = headers

        chunks = self.moto(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        response = Response(payload, status=captured.get("status", 500))
        for name, value in captured.get("headers", []):
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                response.headers[name] = value
        return response
