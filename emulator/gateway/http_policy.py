"""Which requests the edge refuses before any service sees them (DNS rebinding, cross-origin).

One pure function, so that every listener that accepts requests on the edge port (the
control plane's WSGI application and any process serving the invoke path) applies exactly
the same rules. ``headers`` are the request's headers with lower-cased names.

The rules, in order:

1. **Host allow-list** (DNS rebinding): a page on ``evil.example`` whose name re-resolves to
   127.0.0.1 reaches the edge with ``Host: evil.example``. Only localhost (and its
   subdomains, which never reach DNS: S3 virtual-hosted buckets), 127.0.0.1, ::1, the container
   gateway's address, the address the edge binds to and the names in ``SMEMU_ALLOWED_HOSTS``
   are answered.
2. **Origin** (browser cross-origin requests): a request carrying an ``Origin`` other than
   the edge's own (``http://<Host>``, what the dashboard's pages send) is refused unless the
   origin is in ``SMEMU_ALLOWED_ORIGINS``. A request without ``Origin`` that a browser marks
   ``Sec-Fetch-Site: cross-site``/``same-site`` (a form, an image, a navigation from another
   site) is refused too. Tools (boto3, the CLI, curl) send neither and are unaffected.
3. ``/moto-api`` (moto's reset and state API) only with ``SMEMU_MOTO_API=1``.
4. **Sizes**, from ``Content-Length`` before a byte is read: S3 objects up to 5 GiB (S3's
   single-PUT and part limit), invocations up to 6 MiB (InvokeEndpoint's payload limit),
   everything else up to ``SMEMU_MAX_REQUEST_BYTES``.

:func:`preflight_headers` answers CORS preflights for allowed origins and
:func:`cors_headers` adds the CORS headers to their responses; :func:`render` turns a refusal
into the bytes to send.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from emulator.config import Settings
from emulator.gateway import aws_errors

GATEWAY_ADDRESS = "169.254.170.2"
"""The container gateway's address (emulator.credentials.CONTAINER_HOST_IP), answered as a Host."""
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", GATEWAY_ADDRESS})
S3_MAX_BODY = 5 * 1024**3
"""S3's largest single PUT and largest part."""
INVOKE_MAX_BODY = 6 * 1024 * 1024
"""InvokeEndpoint's payload limit (emulator.hosting.invoke.MAX_PAYLOAD)."""
EXPOSED_HEADERS = ("x-amzn-RequestId", "x-amzn-ErrorType", "x-amz-request-id", "x-amz-id-2", "ETag",
                   "x-amz-version-id", "x-amz-delete-marker", "Content-Type", "Content-Length",
                   "x-Amzn-Invoked-Production-Variant", "X-Amzn-SageMaker-Custom-Attributes")
"""Response headers a page from an allowed origin may read (what the AWS SDKs for JavaScript read)."""


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, in the shape the edge answers it (status, AWS error code, message)."""

    status: int
    code: str
    message: str
    protocol: str = aws_errors.JSON
    """The protocol family to render it in (``emulator.gateway.aws_errors``)."""
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Additional members of the error (S3's ``MaxSizeAllowed``...)."""


def refusal(settings: Settings, method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
    """The refusal for a request, or None when the edge may serve it."""
    host = headers.get("host", "")
    if not host_allowed(settings, host):
        shown = host[:100] or "(none)"
        return _refuse("forbidden", path, headers, f"Host '{shown}' is not a name of this emulator, so the request "
                       "is refused (DNS rebinding protection). Add the name to SMEMU_ALLOWED_HOSTS to allow it.")
    origin = headers.get("origin")
    if origin is not None:
        if not (_same_origin(origin, host) or origin_allowed(settings, origin)):
            return _refuse("forbidden", path, headers, f"Origin '{origin[:100]}' may not call this emulator from a "
                           "browser. Add it to SMEMU_ALLOWED_ORIGINS to allow it.")
    elif headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        return _refuse("forbidden", path, headers, "A page of another site may not call this emulator.")
    if path.startswith("/moto-api") and not settings.moto_api:
        return _refuse("not-found", path, headers, "moto's /moto-api is not served by this emulator. Start it "
                       "with SMEMU_MOTO_API=1 to turn it on.")
    return _size_refusal(settings, method, path, headers)


def host_allowed(settings: Settings, host: str) -> bool:
    """Whether a Host header names this emulator (see the module's rule 1)."""
    allowed = settings.allowed_hosts
    if "*" in allowed:
        return True
    name = _host_name(host)
    if not name:
        return False
    if name in LOCAL_HOSTS or name.endswith(".localhost"):
        return True
    if settings.host not in ("0.0.0.0", "::", "") and name == settings.host.lower():
        return True
    return name in allowed or (not _is_ip(name) and any(name.endswith("." + a) for a in allowed))


def origin_allowed(settings: Settings, origin: str) -> bool:
    """Whether ``SMEMU_ALLOWED_ORIGINS`` lets this origin call the edge from a browser."""
    allowed = settings.allowed_origins
    return "*" in allowed or origin.rstrip("/").lower() in allowed


def preflight_headers(settings: Settings, method: str, headers: Mapping[str, str]) -> list[tuple[str, str]] | None:
    """The answer's headers when this is a CORS preflight from an allowed origin, else None.

    Call it after :func:`refusal` (which refuses preflights from other origins).
    """
    origin = headers.get("origin")
    if method != "OPTIONS" or origin is None or "access-control-request-method" not in headers:
        return None
    if not origin_allowed(settings, origin):
        return None
    answer = [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Methods", "GET, PUT, POST, DELETE, HEAD, PATCH"),
        ("Access-Control-Max-Age", "600"),
        ("Vary", "Origin"),
    ]
    requested = headers.get("access-control-request-headers")
    if requested:
        answer.append(("Access-Control-Allow-Headers", requested))
    return answer


def cors_headers(settings: Settings, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Headers to add to a response for a cross-origin request from an allowed origin (else none)."""
    origin = headers.get("origin")
    if origin is None or _same_origin(origin, headers.get("host", "")) or not origin_allowed(settings, origin):
        return []
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Expose-Headers", ", ".join(EXPOSED_HEADERS)),
            ("Vary", "Origin")]


def render(refused: Refusal, request_id: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
    """``(status line, headers, body)`` of a refusal, for ``start_response``."""
    status, headers, body = aws_errors.render(refused.protocol, refused.status, refused.code, refused.message,
                                              request_id=request_id, extra=dict(refused.extra))
    return f"{status} {_REASONS.get(status, 'Error')}", [*headers, ("Connection", "close")], body


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Request Entity Too Large"}


def _size_refusal(settings: Settings, method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
    try:
        length = int(headers.get("content-length") or 0)
    except ValueError:
        return Refusal(400, "BadRequest", "Content-Length is not a number.", aws_errors.request_protocol(path, headers))
    if length <= INVOKE_MAX_BODY:
        return None
    protocol = aws_errors.request_protocol(path, headers)
    if protocol == aws_errors.REST_XML:
        if length <= S3_MAX_BODY:
            return None
        status, code, message = aws_errors.coded("too-large", protocol)
        return Refusal(status, code, message, protocol, (("ProposedSize", str(length)),
                                                          ("MaxSizeAllowed", str(S3_MAX_BODY))))
    if protocol == aws_errors.REST_JSON and path.startswith("/endpoints/"):
        return Refusal(400, "ValidationError", f"Request has oversize body: {length} bytes, more than the "
                       f"{INVOKE_MAX_BODY} bytes InvokeEndpoint accepts.", protocol)
    if length <= settings.max_request_bytes:
        return None
    status, code, _message = aws_errors.coded("too-large", protocol)
    return Refusal(status, code, f"Request entity too large: {length} bytes, more than the "
                   f"{settings.max_request_bytes} bytes this emulator reads (SMEMU_MAX_REQUEST_BYTES).", protocol)


def _refuse(reason: str, path: str, headers: Mapping[str, str], message: str) -> Refusal:
    protocol = aws_errors.request_protocol(path, headers)
    status, code, _ = aws_errors.coded(reason, protocol)
    return Refusal(status, code, message, protocol)


def _host_name(host: str) -> str:
    """The name or address of a Host header, lower-cased, without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") > 1:  # a bare IPv6 address
        return host
    return host.split(":", 1)[0].rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``Origin`` is the edge itself as the browser addressed it (``http://<Host>``)."""
    origin = origin.strip().lower().rstrip("/")
    host = host.strip().lower()
    return bool(host) and origin in (f"http://{host}", f"https://{host}")
