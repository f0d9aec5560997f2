"""Every AWS service the emulator does not execute, answered by moto on the edge port.

moto's own WSGI dispatcher already routes a request to the right service by its SigV4
credential scope, so we mount it as it is. Its state lives in memory; :class:`MotoBridge`
sends every request through :class:`emulator.awsstate.AwsState`, which journals the changes
so that a restart (or kill -9) keeps roles, repositories, log groups, topics and the
SageMaker records moto stores.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from emulator.awsstate import AwsState

log = logging.getLogger(__name__)

WsgiApp = Callable[..., Iterable[bytes]]


def create_moto_app() -> WsgiApp:
    """moto's server application: one WSGI callable for every AWS service it knows."""
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    from moto.moto_server import werkzeug_app

    # moto's own CORS answers every preflight and reflects any Origin; the edge's policy
    # (emulator/gateway/http_policy.py) decides instead, before moto sees a request.
    werkzeug_app.DISABLE_GLOBAL_CORS = True
    return werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)  # type: ignore[return-value]


class MotoBridge:
    """The moto application, with its changes journaled when a state is given.

    S3 requests reach moto only with the non-durable ``memory`` store; they are never journaled.
    """

    def __init__(self, state: AwsState | None) -> None:
        self.state = state
        self.app = create_moto_app()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from emulator.objectstore import is_s3_request

        if is_s3_request(environ):  # an S3 body is an object's bytes, not an API request to check
            # moto decodes the path it is given again unless it has the raw one (a key with "%20" in it)
            if "RAW_URI" not in environ and environ.get("REQUEST_URI"):
                environ["RAW_URI"] = environ["REQUEST_URI"]
            return self.app(environ, start_response)
        if "json" in str(environ.get("CONTENT_TYPE", "")):
            refused = _deep_json_refusal(environ)
            if refused is not None:
                return refused(start_response)
        if self.state is None:
            return self.app(environ, start_response)
        return self.state.handle(self.app, environ, start_response)


def _deep_json_refusal(environ: dict[str, Any]) -> Callable[[Callable[..., Any]], Iterable[bytes]] | None:
    """A 400 for a JSON body nested deeper than any AWS shape (moto's parser would answer 500).

    The body is read here (the edge's policy has bounded its size) and put back for moto.
    """
    import io

    from emulator.gateway import aws_errors
    from emulator.gateway.policy_middleware import MAX_JSON_DEPTH, json_too_deep

    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    body = stream.read(int(length)) if length else stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    if not json_too_deep(body):
        return None
    headers = aws_errors.lower_headers(environ)
    protocol = aws_errors.request_protocol(str(environ.get("PATH_INFO", "")), headers)
    status, response_headers, payload = aws_errors.render(
        protocol, 400, "SerializationException", f"The request body nests JSON deeper than {MAX_JSON_DEPTH} levels")

    def answer(start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(f"{status} Bad Request", response_headers)
        return [payload]

    return answer
