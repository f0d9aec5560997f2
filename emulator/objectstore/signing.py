"""Which edge requests are S3, and how the proxy signs them again for the store.

A client signs for the edge with whatever credentials it has (a host's ``test`` keys, a
container's role credentials); the store only accepts its own. The proxy therefore drops the
client's signature, whether in the ``Authorization`` header (SigV4 or SigV2) or in the query
(presigned URLs), and signs the request anew with the store's credentials (botocore's SigV4).
The payload hash the client declared is kept and signed, so the store still checks the body.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

_HEADER_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"^[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

PRESIGN_PARAMETERS = frozenset({
    "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires", "x-amz-signedheaders",
    "x-amz-signature", "x-amz-security-token", "awsaccesskeyid", "signature", "expires",
})
"""Query parameters of presigned URLs (SigV4 and SigV2), compared lower-cased."""

NOT_FORWARDED = frozenset({
    "authorization", "host", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "expect",
    "connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length",
})
"""Request headers the proxy sets itself or that belong to one hop (RFC 9110 section 7.6.1)."""

_NEVER_S3_PATHS = ("/_smemu/", "/moto-api")


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of a raw query string, percent-decoded (a '+' stays a '+', as S3 reads it)."""
    pairs = []
    for part in query_string.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """A query string encoded exactly as SigV4's canonical form (so signing it needs no re-encoding)."""
    encoded = sorted((quote(n, safe="-_.~"), quote(v, safe="-_.~")) for n, v in pairs)
    return "&".join(f"{n}={v}" for n, v in encoded)


def is_s3_request(environ: Mapping[str, Any]) -> bool:
    """Whether an edge request is meant for S3.

    Signed for service ``s3`` in the header or the query (presigned URL), signed with SigV2
    (only S3 still takes it), or unsigned and addressed below a bucket (``/bucket/...``).
    """
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith(_NEVER_S3_PATHS):
        return False
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    if authorization:
        match = _HEADER_SCOPE.search(authorization)
        if match is not None:
            return match.group(2).lower() == "s3"
        return authorization.startswith("AWS ")
    query = str(environ.get("QUERY_STRING", ""))
    if "X-Amz-Credential=" in query or "x-amz-credential=" in query.lower():
        for name, value in query_pairs(query):
            if name.lower() == "x-amz-credential":
                match = _QUERY_SCOPE.match(value)
                return match is not None and match.group(1).lower() == "s3"
    if "Signature=" in query and "AWSAccessKeyId=" in query:
        return True
    return path not in ("", "/") and not environ.get("HTTP_X_AMZ_TARGET")


def presign_expired(pairs: list[tuple[str, str]], now: dt.datetime | None = None) -> bool:
    """Whether a presigned URL's validity (X-Amz-Date + X-Amz-Expires, or SigV2's Expires) has passed."""
    values = {name.lower(): value for name, value in pairs}
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        if "x-amz-date" in values and "x-amz-expires" in values:
            signed = dt.datetime.strptime(values["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
            return now > signed + dt.timedelta(seconds=int(values["x-amz-expires"]))
        if "expires" in values and "signature" in values:
            return now.timestamp() > int(values["expires"])
    except ValueError:
        return True
    return False


def client_payload_hash(environ: Mapping[str, Any]) -> str:
    """The payload hash to sign for a plain body: the client's SHA-256 when it sent one, else unsigned."""
    declared = str(environ.get("HTTP_X_AMZ_CONTENT_SHA256", "")).strip().lower()
    return declared if _SHA256_HEX.match(declared) else UNSIGNED_PAYLOAD


class _StoreSigV4(SigV4Auth):
    """SigV4 for S3: the path is signed exactly as sent, and the payload hash is the one we set."""

    def _normalize_url_path(self, path: str) -> str:
        return path

    def payload(self, request: AWSRequest) -> str:
        return str(request.headers["X-Amz-Content-SHA256"])


def sign_for_store(method: str, url: str, headers: dict[str, str], payload_hash: str, access_key: str,
                   secret_key: str, region: str) -> dict[str, str]:
    """``headers`` plus ``Authorization``, ``X-Amz-Date`` and ``X-Amz-Content-SHA256`` for the store.

    ``url`` must already be in canonical form (path URI-encoded as S3 expects, query from
    :func:`canonical_query`): it is signed exactly as it will be sent. Every header given is signed.
    """
    request = AWSRequest(method=method, url=url, headers={**headers, "X-Amz-Content-SHA256": payload_hash})
    _StoreSigV4(Credentials(access_key, secret_key), "s3", region).add_auth(request)
    return dict(request.headers.items())
