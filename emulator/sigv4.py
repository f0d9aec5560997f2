"""Verifying AWS Signature Version 4, as an AWS service does, from the request on the wire.

The container gateway admits an AWS API call only when it is signed with a secret the
emulator issued. Verifying means recomputing the signature from the request exactly as the
client computed it, and comparing:

* the **canonical request**: method; the path as sent for S3 (S3 signs its paths
  unnormalised) or, for every other service, with dot segments and double slashes removed and
  each character percent-encoded again; the query parameters decoded, re-encoded with the
  unreserved set and sorted (``X-Amz-Signature`` left out of a presigned URL); the signed
  headers, values trimmed and inner whitespace collapsed; the payload hash;
* the **payload hash**: the ``x-amz-content-sha256`` header where the client sent one (S3
  always does; also ``UNSIGNED-PAYLOAD`` and the ``STREAMING-...`` markers of chunked
  uploads), ``UNSIGNED-PAYLOAD`` for a presigned S3 URL, else the SHA-256 of the body;
* the **key**: HMAC chain of the secret over date, region, service and ``aws4_request``.

Both header signing (``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
Signature=...``) and query-string signing (presigned URLs) are handled. Everything here is
pure, so the unit tests check it against botocore's own signer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_SKEW_SECONDS = 15 * 60
"""How far a header-signed request's date may be from now, as on AWS."""
MAX_PRESIGNED_SECONDS = 7 * 24 * 3600

_AUTH = re.compile(r"AWS4-HMAC-SHA256\s+(.*)", re.DOTALL)
_CREDENTIAL = re.compile(r"^([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request$")
_S3_SERVICES = frozenset({"s3", "s3-object-lambda", "s3-outposts", "s3express"})


class MalformedSignature(ValueError):
    """The request claims SigV4 but its fields do not parse (AWS: IncompleteSignature)."""


@dataclass(frozen=True)
class Signature:
    """The SigV4 fields of one request."""

    access_key: str
    date: str
    """``X-Amz-Date``: ``20260101T120000Z``."""
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    security_token: str | None
    presigned: bool
    expires: int | None = None
    """Presigned URLs: ``X-Amz-Expires`` seconds after :attr:`date`."""

    @property
    def scope(self) -> str:
        """``<date>/<region>/<service>/aws4_request``."""
        return f"{self.scope_date}/{self.region}/{self.service}/aws4_request"

    def time(self) -> dt.datetime:
        """:attr:`date` as an aware datetime (``_signature`` checked its format)."""
        d = self.date
        return dt.datetime(int(d[0:4]), int(d[4:6]), int(d[6:8]), int(d[9:11]), int(d[11:13]), int(d[13:15]),
                           tzinfo=dt.timezone.utc)


def parse(headers: Mapping[str, str], query: str) -> Signature | None:
    """The request's SigV4 fields (``headers`` lower-cased, ``query`` raw); None when it is unsigned."""
    authorization = headers.get("authorization", "")
    if authorization:
        return _from_header(authorization, headers)
    params = {unquote(k): unquote(v) for k, v in _pairs(query)}
    if params.get("X-Amz-Algorithm") is None and params.get("X-Amz-Signature") is None:
        return None
    return _from_query(params)


def _from_header(authorization: str, headers: Mapping[str, str]) -> Signature:
    match = _AUTH.match(authorization.strip())
    if match is None:
        raise MalformedSignature("the Authorization header is not AWS4-HMAC-SHA256")
    fields = {}
    for part in match.group(1).split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise MalformedSignature("the Authorization header lacks Credential, SignedHeaders or Signature")
    date = headers.get("x-amz-date", "")
    return _signature(fields["Credential"], fields["SignedHeaders"], fields["Signature"], date,
                      headers.get("x-amz-security-token"), presigned=False)


def _from_query(params: Mapping[str, str]) -> Signature:
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise MalformedSignature("X-Amz-Algorithm is not AWS4-HMAC-SHA256")
    try:
        expires = int(params.get("X-Amz-Expires", ""))
    except ValueError:
        raise MalformedSignature("X-Amz-Expires is not a number of seconds") from None
    if not 0 < expires <= MAX_PRESIGNED_SECONDS:
        raise MalformedSignature("X-Amz-Expires must be between 1 and 604800 seconds")
    return _signature(params.get("X-Amz-Credential", ""), params.get("X-Amz-SignedHeaders", ""),
                      params.get("X-Amz-Signature", ""), params.get("X-Amz-Date", ""),
                      params.get("X-Amz-Security-Token"), presigned=True, expires=expires)


def _signature(credential: str, signed_headers: str, signature: str, date: str, token: str | None, *,
               presigned: bool, expires: int | None = None) -> Signature:
    found = _CREDENTIAL.match(credential)
    if found is None:
        raise MalformedSignature("the Credential is not <key>/<date>/<region>/<service>/aws4_request")
    if not re.fullmatch(r"\d{8}T\d{6}Z", date) or not date.startswith(found.group(2)):
        raise MalformedSignature("X-Amz-Date is missing, malformed or not the credential's date")
    if not signed_headers or not re.fullmatch(r"[0-9a-f]{64}", signature):
        raise MalformedSignature("SignedHeaders or Signature is missing or malformed")
    return Signature(access_key=found.group(1), date=date, scope_date=found.group(2), region=found.group(3),
                     service=found.group(4), signed_headers=tuple(signed_headers.lower().split(";")),
                     signature=signature, security_token=token, presigned=presigned, expires=expires)


def payload_hash(signature: Signature, headers: Mapping[str, str]) -> str | None:
    """The payload hash the signature covers, when the headers say it (None: hash the body)."""
    declared = headers.get("x-amz-content-sha256")
    if declared:
        return declared
    if signature.presigned and signature.service in _S3_SERVICES:
        return UNSIGNED_PAYLOAD
    return None


def body_hash(body: bytes) -> str:
    """The hex SHA-256 of a body (the payload hash of requests that do not declare one)."""
    return hashlib.sha256(body).hexdigest()


def canonical_request(signature: Signature, method: str, raw_path: str, query: str,
                      headers: Mapping[str, str], payload: str) -> str:
    """The canonical request the client signed (see the module's docstring)."""
    if signature.service in _S3_SERVICES:
        path = raw_path or "/"
    else:
        from botocore.utils import normalize_url_path

        path = quote(normalize_url_path(raw_path), safe="/~")
    pairs = [(quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
             for k, v in _pairs(query) if not (signature.presigned and k == "X-Amz-Signature")]
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    canonical_headers = "".join(f"{name}:{' '.join(_utf8(headers.get(name, '')).split())}\n"
                                for name in signature.signed_headers)
    return "\n".join([method.upper(), path, canonical_query, canonical_headers,
                      ";".join(signature.signed_headers), payload])


def expected_signature(signature: Signature, secret: str, canonical: str) -> str:
    """The signature of ``canonical`` under ``secret`` for this request's scope."""
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{signature.date}\n{signature.scope}\n{digest}"
    key = ("AWS4" + secret).encode()
    for part in (signature.scope_date, signature.region, signature.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify(signature: Signature, secret: str, method: str, raw_path: str, query: str,
           headers: Mapping[str, str], payload: str) -> bool:
    """Whether the request was signed with ``secret`` (constant-time comparison)."""
    canonical = canonical_request(signature, method, raw_path, query, headers, payload)
    return hmac.compare_digest(expected_signature(signature, secret, canonical), signature.signature)


def freshness(signature: Signature, now: dt.datetime) -> str | None:
    """``stale`` / ``expired-url`` when the request's date rules it out (AWS's 15 minutes), else None."""
    when = signature.time()
    if signature.presigned:
        if now > when + dt.timedelta(seconds=signature.expires or 0) or when - now > dt.timedelta(minutes=15):
            return "expired-url"
        return None
    if abs((now - when).total_seconds()) > MAX_SKEW_SECONDS:
        return "stale"
    return None


def _pairs(query: str) -> list[tuple[str, str]]:
    """Raw ``key=value`` pairs of a query string, in order (values still percent-encoded)."""
    found = []
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        found.append((key, value))
    return found


def _utf8(value: str) -> str:
    """A WSGI header value (bytes decoded as latin-1) as the text the client signed.

    Python's http.client sends header text as latin-1 (what WSGI hands over unchanged); other
    clients send UTF-8, which reads as valid UTF-8 once re-encoded.
    """
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
