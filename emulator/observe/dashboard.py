"""The dashboard at ``/_smemu/`` on the edge port, and the read-only JSON API it uses.

Served by a WSGI middleware in front of the edge application (never on the container
gateway: containers have no business reading other jobs' logs). The page is three static
files shipped inside the package (no CDN, no request leaves the machine) and uses relative
URLs only, so it works behind the edge's Host and Origin checks, which this middleware applies
too (emulator/gateway/http_policy.py). Every answer is a GET; nothing here changes a resource.

API (JSON):

- ``GET /_smemu/api/status``: the emulator, every job and endpoint (``smemu status``)
- ``GET /_smemu/api/resources/<kind>/<name>``: one resource (record, timeline, fleet, ...)
- ``GET /_smemu/api/resources/<kind>/<name>/logs?cursor=...``: new log events and the status
- ``GET /_smemu/api/resources/<kind>/<name>/metrics``: CloudWatch metric series
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from emulator.observe.views import LOG_PAGE, Observer, UnknownKind

log = logging.getLogger(__name__)

PREFIX = "/_smemu"
API = PREFIX + "/api/"
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
"""The only files the dashboard serves, from the package's ``static`` folder."""
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                     ("Cross-Origin-Resource-Policy", "same-origin")]
_REASONS = {200: "OK", 301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 500: "Internal Server Error"}

StartResponse = Callable[..., Any]


def static_file(name: str) -> bytes:
    """One of the dashboard's files, read from the installed package."""
    return (resources.files("emulator.observe") / "static" / name).read_bytes()


class DashboardMiddleware:
    """Answers ``/_smemu/`` (page, assets, API); passes every other request to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], observer: Observer, settings: Any) -> None:
        self.app = app
        self.observer = observer
        self.settings = settings
        self._files = {name: static_file(name) for name in STATIC}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == PREFIX:
            return self._answer(start_response, 301, b"", "text/plain", [("Location", PREFIX + "/")])
        if not (path == PREFIX + "/" or path.startswith(API) or self._asset(path)):
            return self.app(environ, start_response)
        refused = self._refusal(environ, path)
        if refused is not None:
            return self._json(start_response, refused[0], {"__type": refused[1], "message": refused[2]})
        if environ.get("REQUEST_METHOD", "GET") != "GET":
            return self._json(start_response, 405, {"message": "the dashboard and its API are read-only (GET)"})
        if path.startswith(API):
            return self._api(environ, start_response, path[len(API):])
        name = "index.html" if path == PREFIX + "/" else path[len(PREFIX) + 1:]
        headers = [("Content-Security-Policy", CSP), ("Cache-Control", "no-cache")]
        return self._answer(start_response, 200, self._files[name], STATIC[name], headers)

    def _asset(self, path: str) -> bool:
        return path.startswith(PREFIX + "/") and path[len(PREFIX) + 1:] in STATIC

    def _refusal(self, environ: dict[str, Any], path: str) -> tuple[int, str, str] | None:
        """The edge's Host/Origin policy, applied to the dashboard as to every other route."""
        from emulator.gateway import http_policy

        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        found = http_policy.refusal(self.settings, environ.get("REQUEST_METHOD", "GET"), path, headers)
        return None if found is None else (found.status, found.code, found.message)

    # -- API ----------------------------------------------------------------------------------

    def _api(self, environ: dict[str, Any], start_response: StartResponse, rest: str) -> Iterable[bytes]:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        parts = [urllib.parse.unquote(p) for p in rest.split("/")]
        try:
            if parts == ["status"]:
                return self._json(start_response, 200, self.observer.status())
            if len(parts) in (3, 4) and parts[0] == "resources":
                return self._resource(start_response, parts[1], parts[2], parts[3] if len(parts) == 4 else "", query)
        except UnknownKind as exc:
            return self._json(start_response, 400, {"message": str(exc)})
        except ValueError as exc:
            return self._json(start_response, 400, {"message": str(exc)})
        except Exception as exc:  # a bug in a view must answer, and be logged
            log.exception("dashboard API %s failed", rest)
            return self._json(start_response, 500, {"message": f"internal error: {type(exc).__name__}: {exc}"})
        return self._json(start_response, 404, {"message": f"no such API: /_smemu/api/{rest}"})

    def _resource(
        self, start_response: StartResponse, kind_name: str, name: str, aspect: str, query: dict[str, list[str]]
    ) -> Iterable[bytes]:
        if aspect == "":
            found = self.observer.resource(kind_name, name)
        elif aspect == "logs":
            limit = int((query.get("limit") or [str(LOG_PAGE)])[0])
            if not 1 <= limit <= 10000:
                raise ValueError("limit must be between 1 and 10000")
            found = self.observer.logs(kind_name, name, (query.get("cursor") or [""])[0], limit)
        elif aspect == "metrics":
            found = self.observer.metrics(kind_name, name)
        else:
            return self._json(start_response, 404, {"message": f"no such view: {aspect}"})
        if found is None:
            kind = self.observer.kind(kind_name)
            return self._json(start_response, 404, {"__type": "ResourceNotFound",
                                                    "message": f"There is no {kind.label} named {name}."})
        return self._json(start_response, 200, found)

    # -- answers ------------------------------------------------------------------------------

    def _json(self, start_response: StartResponse, status: int, body: Any) -> Iterable[bytes]:
        payload = json.dumps(body, default=str).encode()
        return self._answer(start_response, status, payload, "application/json", [("Cache-Control", "no-store")])

    @staticmethod
    def _answer(
        start_response: StartResponse, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]]
    ) -> Iterable[bytes]:
        start_response(f"{status} {_REASONS.get(status, 'Status')}", [
            ("Content-Type", content_type), ("Content-Length", str(len(body))), *_SECURITY_HEADERS, *headers])
        return [body]
