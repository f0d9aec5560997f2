"""The edge's request policy applied to a WSGI application (``emulator.gateway.http_policy``).

Every request on the edge port and on the container gateway passes through
:class:`EdgePolicy` first: refused ones are answered in the AWS shape of their protocol
without reaching any service, CORS preflights from allowed origins are answered here, and
responses to allowed cross-origin requests get their CORS headers. It also bounds what a
body may hold that ``Content-Length`` cannot say: JSON nested deeper than any AWS shape
(:func:`json_too_deep`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from emulator.config import Settings
from emulator.gateway.http_policy import cors_headers, preflight_headers, refusal, render

MAX_JSON_DEPTH = 64
"""Deepest JSON nesting a request may have; the deepest AWS request shape is far shallower."""

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")

_POLICY_HEADERS = {
    "HTTP_HOST": "host", "HTTP_ORIGIN": "origin", "HTTP_SEC_FETCH_SITE": "sec-fetch-site",
    "CONTENT_LENGTH": "content-length", "CONTENT_TYPE": "content-type", "HTTP_AUTHORIZATION": "authorization",
    "HTTP_X_AMZ_TARGET": "x-amz-target", "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "access-control-request-method",
    "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "access-control-request-headers",
}
"""The only headers the policy reads, picked from the environ without copying the rest."""


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON document nests deeper than ``limit`` (strings skipped; C-speed scans)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', body)):
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def policy_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request headers the policy reads, lower-cased, from a WSGI environ."""
    return {name: str(environ[key]) for key, name in _POLICY_HEADERS.items() if environ.get(key)}


class EdgePolicy:
    """WSGI middleware: refuse, answer preflights, add CORS headers (see the module's docstring)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", ""))
        headers = policy_headers(environ)
        refused = refusal(self.settings, method, path, headers)
        if refused is not None:
            status, response_headers, body = render(refused)
            start_response(status, response_headers)
            return [body]
        preflight = preflight_headers(self.settings, method, headers)
        if preflight is not None:
            start_response("200 OK", [*preflight, ("Content-Length", "0")])
            return [b""]
        extra = cors_headers(self.settings, headers)
        if not extra:
            return self.app(environ, start_response)
        names = {name.lower() for name, _ in extra}

        def with_cors(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(n, v) for n, v in response_headers if n.lower() not in names]
            return start_response(status, [*kept, *extra], exc_info)

        return self.app(environ, with_cors)
