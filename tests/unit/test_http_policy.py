"""The edge's request policy (emulator/gateway/http_policy.py): Host, Origin, /moto-api, sizes."""

from __future__ import annotations

import json

import pytest

from emulator.config import Settings, load_settings
from emulator.gateway import aws_errors
from emulator.gateway.http_policy import cors_headers, preflight_headers, refusal, render
from emulator.gateway.policy_middleware import json_too_deep

SIGNED_S3 = "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x"
SIGNED_STS = "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=x"
SAGEMAKER = {"x-amz-target": "SageMaker.ListTrainingJobs", "content-type": "application/x-amz-json-1.1"}


def _settings(**env: str) -> Settings:
    return load_settings({f"SMEMU_{k}": v for k, v in env.items()})


@pytest.mark.parametrize("host", ["localhost:4570", "127.0.0.1:4570", "[::1]:4570", "169.254.170.2:5000",
                                  "my-bucket.localhost:4570", "LOCALHOST", "localhost"])
def test_own_names_are_answered(host: str) -> None:
    assert refusal(_settings(), "POST", "/", {"host": host, **SAGEMAKER}) is None


@pytest.mark.parametrize("host", ["evil.example:4570", "127.0.0.1.nip.io:4570", "192.168.1.5:4570", "", "localhostx"])
def test_foreign_host_is_refused_in_the_protocols_shape(host: str) -> None:
    refused = refusal(_settings(), "POST", "/", {"host": host, **SAGEMAKER})
    assert refused is not None and refused.status == 403
    assert (refused.code, refused.protocol) == ("AccessDeniedException", "json")
    assert "SMEMU_ALLOWED_HOSTS" in refused.message
    s3 = refusal(_settings(), "GET", "/bucket", {"host": host, "authorization": SIGNED_S3})
    assert s3 is not None and (s3.code, s3.protocol) == ("AccessDenied", "rest-xml")
    sts = refusal(_settings(), "POST", "/", {"host": host, "authorization": SIGNED_STS,
                                            "content-type": "application/x-www-form-urlencoded"})
    assert sts is not None and (sts.code, sts.protocol) == ("AccessDenied", "query")


def test_names_the_user_adds_and_their_subdomains_are_answered() -> None:
    settings = _settings(ALLOWED_HOSTS="emulator, Sm.Internal")
    for host in ("emulator:4570", "sm.internal", "bucket.sm.internal:4570"):
        assert refusal(settings, "GET", "/", {"host": host}) is None, host
    assert refusal(settings, "GET", "/", {"host": "emulator.evil.example"}) is not None
    assert refusal(_settings(ALLOWED_HOSTS="*"), "GET", "/", {"host": "anything"}) is None


def test_the_bind_address_is_answered_when_it_is_specific() -> None:
    assert refusal(_settings(HOST="192.168.1.5"), "GET", "/", {"host": "192.168.1.5:4570"}) is None
    assert refusal(_settings(HOST="0.0.0.0"), "GET", "/", {"host": "0.0.0.0:4570"}) is not None


def test_same_origin_pages_are_served_and_get_no_cors_headers() -> None:
    headers = {"host": "localhost:4570", "origin": "http://localhost:4570", **SAGEMAKER}
    assert refusal(_settings(), "POST", "/", headers) is None
    assert cors_headers(_settings(), headers) == []


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:3000", "null", "http://127.0.0.1:4570"])
def test_cross_origin_requests_and_preflights_are_refused(origin: str) -> None:
    simple = {"host": "localhost:4570", "origin": origin, "content-type": "text/plain"}
    assert refusal(_settings(), "POST", "/moto-api/reset", simple) is not None
    preflight = {"host": "localhost:4570", "origin": origin, "access-control-request-method": "POST",
                 "access-control-request-headers": "x-amz-target,authorization"}
    refused = refusal(_settings(), "OPTIONS", "/", preflight)
    assert refused is not None and refused.status == 403
    assert preflight_headers(_settings(), "OPTIONS", preflight) is None


def test_no_origin_but_a_cross_site_fetch_is_refused() -> None:
    for site in ("cross-site", "same-site"):
        assert refusal(_settings(), "GET", "/", {"host": "localhost:4570", "sec-fetch-site": site}) is not None
    for site in ("same-origin", "none"):
        assert refusal(_settings(), "GET", "/", {"host": "localhost:4570", "sec-fetch-site": site}) is None


def test_allowed_origins_get_preflights_and_cors_headers() -> None:
    settings = _settings(ALLOWED_ORIGINS="http://localhost:3000")
    preflight = {"host": "localhost:4570", "origin": "http://localhost:3000", "access-control-request-method": "POST",
                 "access-control-request-headers": "x-amz-target,authorization"}
    assert refusal(settings, "OPTIONS", "/", preflight) is None
    answer = dict(preflight_headers(settings, "OPTIONS", preflight) or [])
    assert answer["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert answer["Access-Control-Allow-Headers"] == "x-amz-target,authorization"
    actual = dict(cors_headers(settings, {"host": "localhost:4570", "origin": "http://localhost:3000"}))
    assert actual["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "x-amzn-RequestId" in actual["Access-Control-Expose-Headers"]
    assert refusal(settings, "OPTIONS", "/", {**preflight, "origin": "http://localhost:3001"}) is not None


def test_allowed_origins_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        _settings(ALLOWED_ORIGINS="localhost:3000/app")
    assert _settings(ALLOWED_ORIGINS="HTTP://Localhost:3000/, *").allowed_origins == ("http://localhost:3000", "*")


def test_moto_api_is_off_unless_turned_on() -> None:
    refused = refusal(_settings(), "POST", "/moto-api/reset", {"host": "localhost:4570"})
    assert refused is not None and refused.status == 404 and "SMEMU_MOTO_API=1" in refused.message
    assert refusal(_settings(MOTO_API="1"), "POST", "/moto-api/reset", {"host": "localhost:4570"}) is None


def test_sizes_are_refused_from_content_length_per_protocol() -> None:
    settings = _settings(MAX_REQUEST_BYTES="1000000")
    big = str(50 * 1024 * 1024)
    control = refusal(settings, "POST", "/", {"host": "localhost", "content-length": big, **SAGEMAKER})
    assert control is not None and (control.status, control.code) == (413, "RequestEntityTooLargeException")
    assert "SMEMU_MAX_REQUEST_BYTES" in control.message
    assert refusal(settings, "POST", "/", {"host": "localhost", "content-length": "999999", **SAGEMAKER}) is None
    s3 = {"host": "localhost", "authorization": SIGNED_S3}
    assert refusal(settings, "PUT", "/b/k", {**s3, "content-length": str(4 * 1024**3)}) is None
    too_big = refusal(settings, "PUT", "/b/k", {**s3, "content-length": str(6 * 1024**3)})
    assert too_big is not None and (too_big.status, too_big.code) == (400, "EntityTooLarge")
    assert dict(too_big.extra)["MaxSizeAllowed"] == str(5 * 1024**3)
    invoke = {"host": "localhost", "content-length": str(7 * 1024 * 1024),
              "authorization": SIGNED_S3.replace("/s3/", "/sagemaker/")}
    refused = refusal(settings, "POST", "/endpoints/ep/invocations", invoke)
    assert refused is not None and (refused.code, refused.protocol) == ("ValidationError", "rest-json")


def test_render_gives_botocore_parsable_bodies() -> None:
    refused = refusal(_settings(), "POST", "/", {"host": "evil", **SAGEMAKER})
    assert refused is not None
    status, headers, body = render(refused)
    assert status.startswith("403 ")
    assert json.loads(body)["__type"] == "AccessDeniedException"
    assert dict(headers)["x-amzn-ErrorType"] == "AccessDeniedException"
    _status, _headers, xml = aws_errors.render("rest-xml", 403, "InvalidAccessKeyId", "a <b> & c")
    assert b"<Code>InvalidAccessKeyId</Code><Message>a &lt;b&gt; &amp; c</Message>" in xml


def test_protocols_follow_botocores_models() -> None:
    assert aws_errors.service_protocol("sts") == "query"
    assert aws_errors.service_protocol("logs") == "json"
    assert aws_errors.service_protocol("s3") == "rest-xml"
    assert aws_errors.service_protocol("no-such-service") is None
    assert aws_errors.request_protocol("/", {}, "Action=GetCallerIdentity&Version=2011-06-15") == "query"


def test_json_depth() -> None:
    assert not json_too_deep(b'{"a": [[{"b": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}]]}')
    assert json_too_deep(b"[" * 65 + b"]" * 65)
    assert not json_too_deep(b"[" * 64 + b"]" * 64)
    assert json_too_deep(b'{"a":' * 1000 + b"1" + b"}" * 1000)
