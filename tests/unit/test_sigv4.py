"""SigV4 verification (emulator/sigv4.py) against requests signed by botocore itself."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from emulator import sigv4

CREDENTIALS = Credentials("ASIAEXAMPLEKEY000001", "secret/with+chars", "session-token==")
WRONG = "another-secret"


def _wire(request: AWSRequest) -> tuple[str, str, str, dict[str, str], bytes]:
    """What the server sees: method, raw path, raw query, lower-cased headers, body."""
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = {k.lower(): v for k, v in prepared.headers.items()}
    headers.setdefault("host", parts.netloc)
    body = prepared.body or b""
    return prepared.method, parts.path, parts.query, headers, body if isinstance(body, bytes) else body.encode()


def _check(request: AWSRequest, secret: str = CREDENTIALS.secret_key) -> bool:
    method, path, query, headers, body = _wire(request)
    signature = sigv4.parse(headers, query)
    assert signature is not None
    payload = sigv4.payload_hash(signature, headers) or sigv4.body_hash(body)
    return sigv4.verify(signature, secret, method, path, query, headers, payload)


def test_query_protocol_post_signed_in_the_header() -> None:
    request = AWSRequest("POST", "http://169.254.170.2:4570/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(CREDENTIALS, "sts", "us-east-1").add_auth(request)
    assert _check(request)
    assert not _check(request, WRONG)
    method, path, query, headers, _body = _wire(request)
    signature = sigv4.parse(headers, query)
    assert signature is not None and signature.security_token == "session-token=="
    tampered = sigv4.body_hash(b"Action=DeleteRole&RoleName=x")
    assert not sigv4.verify(signature, CREDENTIALS.secret_key, method, path, query, headers, tampered)


def test_json_protocol_with_a_path_to_normalise() -> None:
    request = AWSRequest("POST", "http://169.254.170.2:4570/endpoints/my%20ep/./invocations//", data=b'{"a": 1}',
                         headers={"Content-Type": "application/json", "X-Amz-Target": "SageMaker.ListModels"})
    SigV4Auth(CREDENTIALS, "sagemaker", "eu-west-1").add_auth(request)
    assert _check(request)


def test_s3_keys_are_signed_unnormalised_with_their_query() -> None:
    url = "http://169.254.170.2:4570/bucket/a/../b%20c/%E2%9C%93/x~y?uploads&prefix=a%2Fb&list-type=2"
    request = AWSRequest("PUT", url, data=b"object body", headers={"x-amz-meta-who": "caf\u00e9"})
    S3SigV4Auth(CREDENTIALS, "s3", "us-east-1").add_auth(request)
    assert _check(request)
    assert not _check(request, WRONG)


def test_presigned_s3_url_and_its_expiry() -> None:
    request = AWSRequest("GET", "http://169.254.170.2:4570/bucket/key%2Bplus.txt")
    S3SigV4QueryAuth(CREDENTIALS, "s3", "us-east-1", expires=60).add_auth(request)
    assert _check(request)
    assert not _check(request, WRONG)
    _method, _path, query, headers, _body = _wire(request)
    signature = sigv4.parse(headers, query)
    assert signature is not None and signature.presigned and signature.expires == 60
    assert signature.security_token == "session-token=="
    now = signature.time()
    assert sigv4.freshness(signature, now + dt.timedelta(seconds=30)) is None
    assert sigv4.freshness(signature, now + dt.timedelta(seconds=61)) == "expired-url"


def test_header_signed_requests_older_than_15_minutes_are_stale() -> None:
    request = AWSRequest("POST", "http://169.254.170.2:4570/", data=b"{}")
    SigV4Auth(CREDENTIALS, "logs", "us-east-1").add_auth(request)
    _method, _path, query, headers, _body = _wire(request)
    signature = sigv4.parse(headers, query)
    assert signature is not None
    assert sigv4.freshness(signature, signature.time() + dt.timedelta(minutes=14)) is None
    assert sigv4.freshness(signature, signature.time() + dt.timedelta(minutes=16)) == "stale"


def test_unsigned_and_malformed_requests() -> None:
    assert sigv4.parse({}, "prefix=a") is None
    for authorization in ("AWS4-HMAC-SHA256 Credential=x", "Bearer abc",
                          "AWS4-HMAC-SHA256 Credential=AK/2026/us/s3/aws4_request, SignedHeaders=host, Signature=zz"):
        with pytest.raises(sigv4.MalformedSignature):
            sigv4.parse({"authorization": authorization, "x-amz-date": "20260101T000000Z"}, "")
    with pytest.raises(sigv4.MalformedSignature):
        sigv4.parse({}, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=999999999")
