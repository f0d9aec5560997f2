"""S3 on the edge port: every S3 request is relayed to the configured store, signed for it.

``S3Proxy(endpoint)`` is a plain WSGI callable, so it can be mounted wherever the edge's
requests are handled; :func:`emulator.objectstore.signing.is_s3_request` says which requests
are its. It does not depend on the client's credentials (a container signs with its role's
temporary keys, a host client with anything): the client's signature is dropped and the
request signed again with the store's own credentials. Checking who may call is the
listener's business (the container gateway verifies containers' signatures before this).

Bodies stream both ways in blocks, never whole: uploads of any size go through with constant
memory. Handled on the way:

* presigned URLs (SigV4 and SigV2): expiry is checked here (``AccessDenied``, "Request has
  expired"), then the request is signed in the header instead;
* aws-chunked uploads (signed chunks, unsigned chunks with checksum trailers): see chunked.py;
* virtual-hosted addressing (``<bucket>.localhost:<port>``) becomes path addressing;
* ``CreateBucket`` on a bucket you own answers 200 in us-east-1, as AWS does there for legacy
  reasons (stores such as MinIO answer ``BucketAlreadyOwnedByYou``);
* the store's errors (XML) are relayed as they are; a store that does not answer gives 503
  ``ServiceUnavailable``, which SDKs retry.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import urllib3

from emulator.objectstore import chunked
from emulator.objectstore.minio import StoreEndpoint
from emulator.objectstore.signing import (
    NOT_FORWARDED,
    PRESIGN_PARAMETERS,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    canonical_query,
    client_payload_hash,
    presign_expired,
    query_pairs,
    sign_for_store,
)

log = logging.getLogger(__name__)

BLOCK = 1024 * 1024
"""Bytes read from one side and written to the other at a time."""
_HOP_BY_HOP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                                  "proxy-authenticate"})
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.localhost(:\d+)?$")
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 503: "Service Unavailable"}

StartResponse = Callable[..., Any]


def error_body(code: str, message: str, resource: str = "") -> bytes:
    """An S3 error document."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource></Error>").encode()


def _answer(start_response: StartResponse, status: int, body: bytes,
            content_type: str = "application/xml") -> list[bytes]:
    start_response(f"{status} {_REASONS.get(status, 'Error')}",
                   [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def memory_store_edge(moto: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """moto's S3 (the in-memory store) behind the same edge rules as the proxy.

    Presigned URLs expire, and aws-chunked uploads arrive decoded with their trailing checksum
    as a header, which moto records (it ignores trailers). The body is decoded in memory: this
    store keeps every object in memory anyway.
    """

    def edge(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        pairs = query_pairs(str(environ.get("QUERY_STRING", "")))
        if any(name.lower() in PRESIGN_PARAMETERS for name, _ in pairs) and presign_expired(pairs):
            return _answer(start_response, 403, error_body("AccessDenied", "Request has expired",
                                                           str(environ.get("PATH_INFO", ""))))
        encodings = [e.strip() for e in str(environ.get("HTTP_CONTENT_ENCODING", "")).split(",") if e.strip()]
        if "aws-chunked" in encodings and environ.get("wsgi.input") is not None:
            stream = environ["wsgi.input"]
            reader = chunked.ChunkedReader(lambda n: stream.read(n))
            try:
                body = b"".join(reader.chunks())
            except chunked.ChunkedBodyError as exc:
                return _answer(start_response, 400, error_body("InvalidRequest", str(exc)))
            for name in ("HTTP_X_AMZ_TRAILER", "HTTP_X_AMZ_DECODED_CONTENT_LENGTH", "HTTP_CONTENT_ENCODING"):
                environ.pop(name, None)
            if len(encodings) > 1:
                environ["HTTP_CONTENT_ENCODING"] = ",".join(e for e in encodings if e != "aws-chunked")
            for name, value in reader.trailers.items():
                environ["HTTP_" + name.upper().replace("-", "_")] = value
                if name.startswith("x-amz-checksum-"):
                    environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = name[len("x-amz-checksum-"):].upper()
            environ["HTTP_X_AMZ_CONTENT_SHA256"] = UNSIGNED_PAYLOAD
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input"] = io.BytesIO(body)
        return moto(environ, start_response)

    return edge


class _Relay:
    """The store's answer as a WSGI body: streamed in blocks, the connection released at the end."""

    def __init__(self, response: Any) -> None:
        self.response = response

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.response.stream(BLOCK, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # the store went away mid-body
            log.warning("relaying an S3 response body failed: %s", exc)

    def close(self) -> None:
        self.response.release_conn()


class S3Proxy:
    """WSGI application relaying S3 requests to one store (managed MinIO or an external S3)."""

    def __init__(self, endpoint: Callable[[], StoreEndpoint], *, pool_size: int = 64) -> None:
        self._endpoint = endpoint
        self._pool_size = pool_size
        self._pools: dict[str, urllib3.PoolManager] = {}

    def _pool(self) -> tuple[StoreEndpoint, urllib3.PoolManager]:
        endpoint = self._endpoint()
        pool = self._pools.get(endpoint.url)
        if pool is None:  # one pool per store URL (a restarted store may have moved)
            pool = urllib3.PoolManager(num_pools=2, maxsize=self._pool_size, block=False)
            self._pools[endpoint.url] = pool
        return endpoint, pool

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = _bucket_path(environ)
        pairs = query_pairs(str(environ.get("QUERY_STRING", "")))
        if any(name.lower() in PRESIGN_PARAMETERS for name, _ in pairs) and presign_expired(pairs):
            return _answer(start_response, 403, error_body("AccessDenied", "Request has expired", path))
        pairs = [(n, v) for n, v in pairs if n.lower() not in PRESIGN_PARAMETERS]
        endpoint, pool = self._pool()
        base = urlsplit(endpoint.url)
        url = quote(path.encode("latin-1"), safe="/~") + (f"?{canonical_query(pairs)}" if pairs else "")
        headers = _forwarded_headers(environ)
        headers["host"] = base.netloc
        try:
            body, payload_hash, length = _request_body(environ, headers)
        except chunked.ChunkedBodyError as exc:
            return _answer(start_response, 400, error_body("InvalidRequest", str(exc), path))
        if length is not None:
            headers["content-length"] = str(length)
        signed = headers if _anonymous(environ) else sign_for_store(
            method, f"{base.scheme}://{base.netloc}{url}", headers, payload_hash,
            endpoint.access_key, endpoint.secret_key, endpoint.region)
        try:
            response = pool.urlopen(
                method, f"{base.scheme}://{base.netloc}{url}", body=body, headers=signed, redirect=False,
                retries=urllib3.Retry(total=1, connect=1, read=0, status=0, other=0) if body is None else False,
                preload_content=False, decode_content=False, assert_same_host=False, chunked=False,
                timeout=urllib3.Timeout(connect=5.0, read=600.0))
        except (urllib3.exceptions.HTTPError, OSError, chunked.ChunkedBodyError) as exc:
            if isinstance(exc, chunked.ChunkedBodyError) or isinstance(
                    getattr(exc, "reason", None), chunked.ChunkedBodyError):
                return _answer(start_response, 400, error_body("InvalidRequest", str(exc), path))
            log.warning("the S3 store at %s did not answer %s %s: %s", endpoint.url, method, path, exc)
            return _answer(start_response, 503, error_body(
                "ServiceUnavailable", f"The S3 store is not answering right now ({type(exc).__name__}); retry.", path))
        response_headers = [(name, value) for name, value in response.headers.items()
                            if name.lower() not in _HOP_BY_HOP_RESPONSE]
        if _may_recreate_own_bucket(method, path, pairs, response.status, environ):
            error = response.read()
            response.release_conn()
            if b"<Code>BucketAlreadyOwnedByYou</Code>" in error:
                start_response("200 OK", [("Location", path), ("Content-Length", "0")])
                return [b""]
            start_response(f"{response.status} {response.reason or ''}".strip(), response_headers)
            return [error]
        if method == "POST" and response.status == 200 and any(name == "uploadId" for name, _ in pairs):
            return _completed_upload(response, response_headers, f"{base.scheme}://{base.netloc}", environ,
                                     start_response)
        start_response(f"{response.status} {response.reason or ''}".strip(), response_headers)
        if method == "HEAD":
            response.release_conn()
            return [b""]
        return _Relay(response)


def _completed_upload(response: Any, headers: list[tuple[str, str]], store_base: str, environ: dict[str, Any],
                      start_response: StartResponse) -> Iterable[bytes]:
    """CompleteMultipartUpload's answer with its ``Location`` on the edge, not on the store.

    The store names the object at its own address (MinIO's private port, which the client
    never talks to); the client gets the address it used, in path style, as the other S3
    answers it sees. The body is a short XML document (possibly after keep-alive spaces).
    """
    try:
        body = response.read()
    finally:
        response.release_conn()
    host = str(environ.get("HTTP_HOST", ""))
    virtual = _VIRTUAL_HOST.match(host.lower())
    if virtual is not None:  # <bucket>.localhost:<port>: the bucket is already in the path
        host = host[virtual.end("bucket") + 1:]
    client_base = f"{environ.get('wsgi.url_scheme', 'http')}://{host}"
    body = body.replace(f"<Location>{store_base}/".encode(), f"<Location>{client_base}/".encode())
    kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
    start_response(f"{response.status} {response.reason or ''}".strip(), [*kept, ("Content-Length", str(len(body)))])
    return [body]


def _bucket_path(environ: dict[str, Any]) -> str:
    """The request path in path-style addressing (a virtual-hosted bucket moves into the path)."""
    path = str(environ.get("PATH_INFO", "")) or "/"
    match = _VIRTUAL_HOST.match(str(environ.get("HTTP_HOST", "")).lower())
    if match is not None:
        path = f"/{match.group('bucket')}{path}"
    return path


def _anonymous(environ: dict[str, Any]) -> bool:
    """An unsigned request: it goes to the store unsigned too, and the store's policies decide."""
    if environ.get("HTTP_AUTHORIZATION"):
        return False
    query = str(environ.get("QUERY_STRING", "")).lower()
    return "x-amz-signature=" not in query and "signature=" not in query


def _forwarded_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
            if name not in NOT_FORWARDED:
                headers[name] = str(value)
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


def _read_blocks(read: Callable[[int], bytes], length: int | None) -> Iterator[bytes]:
    left = length
    while left is None or left > 0:
        block = read(BLOCK if left is None else min(BLOCK, left))
        if not block:
            return
        if left is not None:
            left -= len(block)
        yield block


def _request_body(environ: dict[str, Any], headers: dict[str, str]) -> tuple[Iterator[bytes] | None, str, int | None]:
    """``(body blocks, payload hash to sign, content length)``, adjusting ``headers`` for aws-chunked."""
    stream = environ.get("wsgi.input")
    length_text = environ.get("CONTENT_LENGTH") or ""
    length = int(length_text) if str(length_text).isdigit() else None
    chunked_transfer = str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower() == "chunked"
    if stream is None or (not length and not chunked_transfer):
        return None, client_payload_hash(environ), None if not length_text else 0
    encodings = [e.strip() for e in headers.get("content-encoding", "").split(",") if e.strip()]
    declared = str(environ.get("HTTP_X_AMZ_CONTENT_SHA256", ""))
    if "aws-chunked" not in encodings and not declared.startswith("STREAMING-"):
        return _read_blocks(stream.read, length), client_payload_hash(environ), length
    decoded = int(headers.pop("x-amz-decoded-content-length", "") or -1)
    if decoded < 0:
        raise chunked.ChunkedBodyError("an aws-chunked upload needs x-amz-decoded-content-length")
    other_encodings = [e for e in encodings if e != "aws-chunked"]
    trailers = chunked.trailer_names(headers.get("x-amz-trailer"))
    reader = chunked.ChunkedReader(lambda n: stream.read(n))
    if not trailers:
        headers.pop("x-amz-trailer", None)
        _set_encodings(headers, other_encodings)
        return reader.chunks(), UNSIGNED_PAYLOAD, decoded
    _set_encodings(headers, ["aws-chunked", *other_encodings])
    headers["x-amz-decoded-content-length"] = str(decoded)
    headers["x-amz-trailer"] = ",".join(trailers)
    body = chunked.frame(reader.chunks(), trailers, lambda: reader.trailers)
    return body, STREAMING_UNSIGNED_TRAILER, chunked.framed_length(decoded, trailers)


def _set_encodings(headers: dict[str, str], encodings: list[str]) -> None:
    if encodings:
        headers["content-encoding"] = ",".join(encodings)
    else:
        headers.pop("content-encoding", None)


def _may_recreate_own_bucket(method: str, path: str, pairs: list[tuple[str, str]], status: int,
                             environ: dict[str, Any]) -> bool:
    """A CreateBucket in us-east-1 that the store refused with 409 (maybe: the caller owns it already)."""
    if method != "PUT" or status != 409 or path.strip("/").count("/") or pairs:
        return False
    region = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", str(environ.get("HTTP_AUTHORIZATION", "")))
    return region is None or region.group(1) == "us-east-1"
