"""AWS error responses in the shape of whichever protocol a request speaks.

The edge refuses some requests before any service sees them (a foreign Host, a foreign
Origin, an oversized body) and the container gateway refuses unsigned or wrongly signed ones.
Those refusals must read as the service's own errors, so that boto3 and the CLI show
``UnrecognizedClientException`` for a JSON service, ``InvalidClientTokenId`` for STS and IAM
(query protocol) and ``InvalidAccessKeyId`` for S3 (REST-XML). Which protocol a request
speaks comes from botocore's model of the service its SigV4 credential scope names.

:data:`CODES` names each refusal per protocol family, with the status and message AWS uses.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from xml.sax.saxutils import escape

JSON, REST_JSON, QUERY, REST_XML = "json", "rest-json", "query", "rest-xml"
"""Protocol families as botocore's models name them (``ec2`` answers like ``query``)."""

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"(?:^|&)X-Amz-Credential=[^&]*?%2F\d{8}%2F[^%&]+%2F([^%&]+)%2Faws4_request", re.IGNORECASE)

_SIGNING_NAMES = {"monitoring": "cloudwatch", "email": "ses", "states": "stepfunctions", "es": "opensearch",
                  "execute-api": "apigateway", "s3express": "s3"}
"""SigV4 signing names whose botocore service model has another name."""

_INVALID_TOKEN = "The security token included in the request is invalid."
_EXPIRED_TOKEN = "The security token included in the request is expired"
_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
             "Secret Access Key and signing method. Consult the service documentation for details.")
_S3_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your key "
                "and signing method.")
_STALE = "Signature expired: the request's date is more than 15 minutes away from the current time."
_EXPIRED_URL = "Signature expired: the presigned request has expired."
_SKEWED = "The difference between the request time and the current time is too large."


Coded = tuple[int, str, str]
"""``(status, code, message)``."""


def _row(json_: Coded, query: Coded, s3: Coded) -> dict[str, Coded]:
    return {JSON: json_, QUERY: query, REST_XML: s3}


CODES: dict[str, dict[str, Coded]] = {
    "missing": _row((403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
                    (403, "MissingAuthenticationToken", "Request is missing Authentication Token"),
                    (403, "AccessDenied", "Access Denied")),
    "unknown-key": _row((403, "UnrecognizedClientException", _INVALID_TOKEN),
                        (403, "InvalidClientTokenId", _INVALID_TOKEN),
                        (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")),
    "bad-token": _row((403, "UnrecognizedClientException", _INVALID_TOKEN),
                      (403, "InvalidClientTokenId", _INVALID_TOKEN),
                      (400, "InvalidToken", "The provided token is malformed or otherwise invalid.")),
    "expired-token": _row((403, "ExpiredTokenException", _EXPIRED_TOKEN), (403, "ExpiredToken", _EXPIRED_TOKEN),
                          (400, "ExpiredToken", "The provided token has expired.")),
    "bad-signature": _row((403, "InvalidSignatureException", _MISMATCH), (403, "SignatureDoesNotMatch", _MISMATCH),
                          (403, "SignatureDoesNotMatch", _S3_MISMATCH)),
    "stale": _row((403, "InvalidSignatureException", _STALE), (403, "SignatureDoesNotMatch", _STALE),
                  (403, "RequestTimeTooSkewed", _SKEWED)),
    "expired-url": _row((403, "InvalidSignatureException", _EXPIRED_URL), (403, "SignatureDoesNotMatch", _EXPIRED_URL),
                        (403, "AccessDenied", "Request has expired")),
    "forbidden": _row((403, "AccessDeniedException", "Access denied."), (403, "AccessDenied", "Access denied."),
                      (403, "AccessDenied", "Access Denied")),
    "too-large": _row((413, "RequestEntityTooLargeException", "Request entity too large"),
                      (413, "RequestEntityTooLargeException", "Request entity too large"),
                      (400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")),
    "not-found": _row((404, "NotFound", "Not found."), (404, "NotFound", "Not found."), (404, "NotFound", "Not found.")),
}
"""``reason -> protocol family -> (status, code, AWS's message)``; rest-json uses the JSON row."""


def credential_service(headers: Mapping[str, str], query: str = "") -> str | None:
    """The service (SigV4 signing name) a request's Authorization header or presigned query names."""
    match = _SCOPE.search(headers.get("authorization", ""))
    if match is not None:
        return match.group(2).lower()
    found = _QUERY_SCOPE.search(query) if query else None
    return found.group(1).lower() if found else None


@functools.lru_cache(maxsize=64)
def service_protocol(signing_name: str) -> str | None:
    """The protocol family of the service botocore signs as ``signing_name`` (None: unknown)."""
    import botocore.session

    name = _SIGNING_NAMES.get(signing_name, signing_name)
    try:
        protocol = str(botocore.session.get_session().get_service_model(name).protocol)
    except Exception:  # an unknown service: the caller guesses from the request instead
        return None
    if protocol == "ec2":
        return QUERY
    return protocol if protocol in (JSON, REST_JSON, QUERY, REST_XML) else JSON


def request_protocol(path: str, headers: Mapping[str, str], query: str = "") -> str:
    """Which protocol family a request speaks, so its error can be rendered in that shape."""
    if headers.get("x-amz-target"):
        return JSON
    service = credential_service(headers, query)
    if service == "sagemaker" and path.startswith("/endpoints/"):
        return REST_JSON
    if service is not None:
        known = service_protocol(service)
        if known is not None:
            return known
    if "x-www-form-urlencoded" in headers.get("content-type", "") or re.search(r"(?:^|&)Action=", query):
        return QUERY
    if path.startswith("/endpoints/"):
        return REST_JSON
    return JSON if service is not None else REST_XML


def coded(reason: str, protocol: str) -> tuple[int, str, str]:
    """``(status, code, message)`` of a refusal ``reason`` in ``protocol``."""
    row = CODES[reason]
    return row.get(protocol) or row[JSON]


def render(protocol: str, status: int, code: str, message: str, *, request_id: str | None = None,
           extra: Mapping[str, str] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` of an AWS error in ``protocol``'s shape."""
    request_id = request_id or str(uuid.uuid4())
    if protocol == REST_XML:
        members = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in (extra or {}).items())
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code><Message>'
                f"{escape(message)}</Message>{members}<RequestId>{request_id}</RequestId></Error>").encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    elif protocol == QUERY:
        body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    else:
        document = {"__type": code, "message": message, **(extra or {})}
        content_type = "application/x-amz-json-1.1" if protocol == JSON else "application/json"
        body = json.dumps(document).encode()
        headers = [("Content-Type", content_type), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code)]
    return status, [*headers, ("Content-Length", str(len(body)))], body


def lower_headers(environ: Mapping[str, object]) -> dict[str, str]:
    """A WSGI environ's request headers, names lower-cased with dashes (``x-amz-target``)."""
    headers = {key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items()
               if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = str(environ["CONTENT_LENGTH"])
    return headers
