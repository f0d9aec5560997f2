"""The container gateway: where the emulator's own containers, and nobody else, get in.

The edge listens on 127.0.0.1, which a container cannot reach. Containers reach the emulator
at ``169.254.170.2:<edge port>`` instead: the host side of the shared network
``smemu-containers`` (``emulator.runtime.gateway_network``), to which the runtime attaches every
container it starts with a network. What is served there is not the edge as the host sees it:

1. **Peers**: a connection is answered only when it comes from the emulator's container
   networks: the shared subnet 169.254.170.0/24 and the job networks of its multi-host jobs;
   never from the host itself, another bridge, or a neighbour on the link with a route to the
   address (Linux accepts packets for a local address on any interface, so the address alone
   proves nothing). A foreign peer's connection is answered with a 403 and closed as soon as
   it is accepted, before anything is read from it.
2. **The credentials endpoint** (``GET /_smemu/credentials``): needs a container token that
   this emulator signed.
3. **AWS API calls**, only when signed (SigV4, header or presigned query) with credentials
   this emulator issued (``emulator.credential_store``): the access key must be one it
   issued, the session token the one issued with it, not expired, the date within 15 minutes,
   and the signature recomputed with the issued secret must match (``emulator.sigv4``).
   Anything else is refused with AWS's 403 in the protocol's shape: S3's ``InvalidAccessKeyId``
   / ``SignatureDoesNotMatch``, STS and IAM's ``InvalidClientTokenId``, JSON services'
   ``UnrecognizedClientException`` / ``InvalidSignatureException`` (``emulator.gateway.aws_errors``).
4. With ``SMEMU_IAM_ENFORCE=1`` an admitted call is also evaluated against the role's
   identity policies (``emulator.request_actions``, moto's policy engine via ``emulator.iam``)
   and refused with ``AccessDenied`` as AWS words it.

Admitted requests then reach the edge application unchanged (the edge's Host and Origin
policy applies too), so whatever serves a service behind the edge (moto, an external S3 the
edge signs for) sees only verified calls.
"""

from __future__ import annotations

import datetime as dt
import functools
import http
import io
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from emulator import iam, sigv4
from emulator.credentials import CREDENTIALS_PATH, CredentialBroker, CredentialsMiddleware
from emulator.gateway import aws_errors
from emulator.request_actions import permissions
from emulator.runtime.gateway_network import GATEWAY_ADDRESS, NETWORK_SUBNET

log = logging.getLogger(__name__)

WsgiApp = Callable[..., Iterable[bytes]]


class GatewayAuth:
    """WSGI middleware in front of the edge app: peers, container credentials, signatures, policies."""

    def __init__(self, app: WsgiApp, broker: CredentialBroker, *, iam_enforce: Callable[[], bool] = lambda: False,
                 max_body_bytes: int = 16 * 1024 * 1024,
                 subnets: Callable[[], Iterable[str]] = lambda: (NETWORK_SUBNET,),
                 gateway_address: str = GATEWAY_ADDRESS) -> None:
        self.app = app
        self.broker = broker
        self.iam_enforce = iam_enforce
        """Whether SMEMU_IAM_ENFORCE is on now (read per request: the settings object may be replaced)."""
        self.max_body_bytes = max_body_bytes
        self.subnets = subnets
        """The emulator's container networks now (the runtime's ``container_subnets``)."""
        self.gateway_address = ipaddress.ip_address(gateway_address)
        self.credentials_endpoint = CredentialsMiddleware(self._not_credentials, broker)

    def peer_allowed(self, address: str) -> bool:
        """Whether a connection from ``address`` may be answered (see the module's rule 1)."""
        return _peer_in(address, tuple(self.subnets()), self.gateway_address)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = aws_errors.lower_headers(environ)
        path = str(environ.get("PATH_INFO", ""))
        raw_path, query = _raw_target(environ)
        protocol = aws_errors.JSON if path == CREDENTIALS_PATH else aws_errors.request_protocol(path, headers, query)
        peer = str(environ.get("REMOTE_ADDR", ""))
        if not self.peer_allowed(peer):
            return _refuse(start_response, protocol, "forbidden",
                           f"The container gateway answers only containers on the emulator's networks "
                           f"({', '.join(self.subnets())}); {peer or 'this peer'} is not one.")
        if path == CREDENTIALS_PATH:
            return self.credentials_endpoint(environ, start_response)
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            signature = sigv4.parse(headers, query)
        except sigv4.MalformedSignature as exc:
            return _refuse(start_response, protocol, "bad-signature", f"Incomplete or malformed signature: {exc}.")
        if signature is None:
            return _refuse(start_response, protocol, "missing")
        issued = self.broker.lookup(signature.access_key)
        if issued is None:
            return _refuse(start_response, protocol, "unknown-key", extra={"AWSAccessKeyId": signature.access_key})
        if signature.security_token != issued.session_token:
            return _refuse(start_response, protocol, "bad-token")
        now = dt.datetime.now(dt.timezone.utc)
        if issued.expires < now.timestamp():
            return _refuse(start_response, protocol, "expired-token")
        stale = sigv4.freshness(signature, now)
        if stale is not None:
            return _refuse(start_response, protocol, stale)
        body: bytes | None = None
        payload = sigv4.payload_hash(signature, headers)
        enforce = self.iam_enforce()
        if payload is None or (enforce and _policy_reads_body(signature.service, method, query)):
            body = _read_body(environ, self.max_body_bytes)
            if body is None:
                return _refuse(start_response, protocol, "too-large")
            payload = payload or sigv4.body_hash(body)
        if not sigv4.verify(signature, issued.secret_access_key, method, raw_path, query, headers, payload):
            return _refuse(start_response, protocol, "bad-signature")
        if enforce:
            denial = self._denial(signature, issued.role_arn, issued.account_id, method, raw_path, query, headers,
                                  body or b"")
            if denial is not None:
                return _refuse(start_response, protocol, "forbidden", denial)
        environ["smemu.caller_role"] = issued.role_arn
        return self.app(environ, start_response)

    def _denial(self, signature: sigv4.Signature, role_arn: str, account: str, method: str, raw_path: str,
                query: str, headers: dict[str, str], body: bytes) -> str | None:
        """AWS's AccessDenied text when the role's policies do not allow the call, else None."""
        needed = permissions(signature.service, method, raw_path, query, headers, body, signature.region, account)
        if needed is None:
            return (f"User: {iam.assumed_role_arn(role_arn)} is not authorized to perform this call: the emulator "
                    "cannot tell which IAM action it needs (SMEMU_IAM_ENFORCE is on)")
        for permission in needed:
            decision = iam.evaluate(role_arn, permission.action, permission.resource, account, permission.context,
                                    signature.region)
            if decision != iam.ALLOWED:
                return iam.denial_message(role_arn, permission.action, permission.resource, decision)
        return None

    @staticmethod
    def _not_credentials(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise AssertionError("only the credentials path reaches the credentials endpoint here")


class ContainerGateway:
    """The gateway's own server, on ``169.254.170.2:<port>`` (cheroot, threads)."""

    def __init__(self, app: WsgiApp, port: int, ensure_network: Callable[[], None], *, threads: int = 16,
                 host_ip: str = GATEWAY_ADDRESS, max_body_bytes: int = 0,
                 watch_network: Callable[[], Callable[[], None]] | None = None) -> None:
        self.app = app
        self.port = port
        self.ensure_network = ensure_network
        self.watch_network = watch_network
        self._stop_watching: Callable[[], None] | None = None
        self.threads = threads
        self.host_ip = host_ip
        self.max_body_bytes = max_body_bytes
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The emulator's URL as containers use it."""
        return f"http://{self.host_ip}:{self.port}"

    def start(self) -> ContainerGateway:
        """Make sure the shared network (and so the address) exists, and serve in a background thread."""
        self.ensure_network()
        peer_allowed = getattr(self.app, "peer_allowed", None)
        self._server = _peer_checked_server(peer_allowed)(
            (self.host_ip, self.port), self.app, numthreads=self.threads, server_name="smemu-containers",
            request_queue_size=64, timeout=75, shutdown_timeout=5)
        self._server.max_request_body_size = self.max_body_bytes
        try:
            self._server.prepare()
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {self.host_ip}:{self.port} for containers: {exc}. The emulator "
                               f"must run on the Docker host itself (or on its network) for this") from exc
        self._thread = threading.Thread(target=self._server.serve, name="smemu-container-gateway", daemon=True)
        self._thread.start()
        if self.watch_network is not None:
            self._stop_watching = self.watch_network()
        return self

    def stop(self) -> None:
        """Stop serving (the shared network stays: other emulators use it)."""
        if self._stop_watching is not None:
            self._stop_watching()
            self._stop_watching = None
        if self._server is not None:
            self._server.stop()
            self._server = None


_REFUSED_AT_ACCEPT = aws_errors.render(
    aws_errors.REST_XML, 403, "AccessDenied",
    "The container gateway answers only containers on the emulator's networks; this peer is not one.")


def _peer_checked_server(peer_allowed: Callable[[str], bool] | None) -> Any:
    """A cheroot server class that answers a foreign peer's connection at once, before reading from it.

    Refusing at accept (a short 403 written into a fresh socket, then close) keeps a container
    of another network from holding the gateway's threads with slow requests.
    """
    from cheroot import wsgi

    if peer_allowed is None:
        return wsgi.Server
    status, headers, body = _REFUSED_AT_ACCEPT
    answer = (f"HTTP/1.1 {status} Forbidden\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
              + "Connection: close\r\n\r\n").encode() + body

    class PeerCheckedServer(wsgi.Server):  # type: ignore[misc]
        def process_conn(self, conn: Any) -> None:
            if peer_allowed(str(conn.remote_addr or "")):
                super().process_conn(conn)
                return
            log.info("container gateway refused a connection from %s", conn.remote_addr)
            try:
                conn.socket.settimeout(0.2)
                conn.socket.sendall(answer)
            except OSError:
                pass
            finally:
                conn.close()

    return PeerCheckedServer


@functools.lru_cache(maxsize=4096)
def _peer_in(address: str, subnets: tuple[str, ...], gateway: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` lies in one of ``subnets`` and is not the gateway itself (cached: per request)."""
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return peer != gateway and any(peer in ipaddress.ip_network(subnet, strict=False) for subnet in subnets)


def _raw_target(environ: dict[str, Any]) -> tuple[str, str]:
    """The request path and query exactly as sent (what the client signed)."""
    uri = str(environ.get("REQUEST_URI") or "")
    if uri:
        if "://" in uri.split("?", 1)[0]:  # absolute-form request target
            uri = "/" + uri.split("://", 1)[1].partition("/")[2]
        path, _, query = uri.partition("?")
        return path, query
    return quote(str(environ.get("PATH_INFO", "")), safe="/~%"), str(environ.get("QUERY_STRING", ""))


def _policy_reads_body(service: str, method: str, query: str) -> bool:
    """Whether the IAM check needs the body: every service but S3, and S3's DeleteObjects."""
    return service not in ("s3", "s3express") or (method == "POST" and "delete" in query.split("&"))


def _read_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The body (put back for the app), or None when it is larger than ``limit``."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        if int(length) > limit:
            return None
        body = bytes(stream.read(int(length)))
    elif str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower() == "chunked":
        body = bytes(stream.read(limit + 1))
        if len(body) > limit:
            return None
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _refuse(start_response: Callable[..., Any], protocol: str, reason: str, message: str | None = None,
            extra: dict[str, str] | None = None) -> list[bytes]:
    status, code, default = aws_errors.coded(reason, protocol)
    status, headers, body = aws_errors.render(protocol, status, code, message or default,
                                              extra=extra if protocol == aws_errors.REST_XML else None)
    log.info("container gateway refused a request: %s %s", code, message or default)
    start_response(f"{status} {http.HTTPStatus(status).phrase}", [*headers, ("Connection", "close")])
    return [body]
