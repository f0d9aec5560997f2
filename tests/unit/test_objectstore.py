"""The S3 proxy's pure parts: aws-chunked framing, request classification, presign expiry, settings."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from emulator.config import Settings, load_settings
from emulator.objectstore import chunked
from emulator.objectstore.minio import find_minio_binary, load_or_create_credentials, missing_binary_message
from emulator.objectstore.signing import canonical_query, is_s3_request, presign_expired, query_pairs
from emulator.objectstore.stores import MemoryStore, StoreUnavailable, open_store


def _decode(body: bytes, read_size: int = 7) -> tuple[bytes, dict[str, str]]:
    stream = io.BytesIO(body)
    reader = chunked.ChunkedReader(lambda n: stream.read(min(n, read_size)))
    return b"".join(reader.chunks()), reader.trailers


@pytest.mark.parametrize("signature", [None, "ab" * 32])
def test_aws_chunked_bodies_decode_with_and_without_signatures(signature: str | None) -> None:
    payload = bytes(range(256)) * 100
    body = chunked.encode_for_test(payload, {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-trailer-signature": "x"},
                                   chunk=1000, signature=signature)
    decoded, trailers = _decode(body)
    assert decoded == payload
    assert trailers == {"x-amz-checksum-crc32": "AAAAAA=="}  # the trailer's signature is dropped


def test_an_aws_chunked_body_cut_short_is_an_error() -> None:
    body = chunked.encode_for_test(b"x" * 5000, chunk=4096)
    with pytest.raises(chunked.ChunkedBodyError):
        _decode(body[:4200])
    with pytest.raises(chunked.ChunkedBodyError):
        _decode(b"zz\r\nabc")


@pytest.mark.parametrize("size", [0, 1, chunked.CHUNK - 1, chunked.CHUNK, 3 * chunked.CHUNK + 17])
def test_reframing_produces_exactly_the_announced_length(size: int) -> None:
    trailers = ["x-amz-checksum-crc32", "x-amz-checksum-sha256"]
    values = {"x-amz-checksum-crc32": "A" * 8, "x-amz-checksum-sha256": "B" * 44}
    payload = b"p" * size
    framed = b"".join(chunked.frame(iter([payload[i:i + 5000] for i in range(0, size, 5000)]), trailers,
                                    lambda: values))
    assert len(framed) == chunked.framed_length(size, trailers)
    decoded, seen = _decode(framed, read_size=65536)
    assert decoded == payload and seen == values


def test_reframing_refuses_a_malformed_trailer_after_the_data() -> None:
    with pytest.raises(chunked.ChunkedBodyError, match="malformed"):
        list(chunked.frame(iter([b"abc"]), ["x-amz-checksum-crc32"], lambda: {"x-amz-checksum-crc32": "short"}))
    with pytest.raises(chunked.ChunkedBodyError, match="unsupported"):
        chunked.trailer_names("x-amz-checksum-md5")


def _environ(path: str = "/", auth: str = "", query: str = "", target: str = "") -> dict[str, str]:
    return {"PATH_INFO": path, "HTTP_AUTHORIZATION": auth, "QUERY_STRING": query, "HTTP_X_AMZ_TARGET": target}


def test_which_requests_are_s3() -> None:
    sigv4 = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=x"
    assert is_s3_request(_environ("/endpoints", sigv4.format("s3")))  # a bucket named endpoints
    assert not is_s3_request(_environ("/", sigv4.format("iam")))
    assert not is_s3_request(_environ("/endpoints/e/invocations", sigv4.format("sagemaker")))
    assert is_s3_request(_environ("/b/k", "AWS AKID:signature"))  # SigV2
    assert is_s3_request(_environ("/b/k", query="X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"))
    assert not is_s3_request(_environ("/x", query="X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fsts%2Faws4_request"))
    assert is_s3_request(_environ("/b/k", query="AWSAccessKeyId=AKID&Signature=s&Expires=1"))
    assert is_s3_request(_environ("/public-bucket/key"))  # unsigned, below a bucket
    assert not is_s3_request(_environ("/"))
    assert not is_s3_request(_environ("/_smemu/health"))
    assert not is_s3_request(_environ("/moto-api/reset"))


def test_queries_are_decoded_without_plus_to_space_and_encoded_canonically() -> None:
    pairs = query_pairs("prefix=a%2Fb+c&uploads&delimiter=%2F&list-type=2")
    assert pairs == [("prefix", "a/b+c"), ("uploads", ""), ("delimiter", "/"), ("list-type", "2")]
    assert canonical_query(pairs) == "delimiter=%2F&list-type=2&prefix=a%2Fb%2Bc&uploads="


def test_presigned_expiry_sigv4_and_sigv2() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    fresh = [("X-Amz-Date", "20260101T115930Z"), ("X-Amz-Expires", "60")]
    stale = [("X-Amz-Date", "20260101T115800Z"), ("X-Amz-Expires", "60")]
    assert not presign_expired(fresh, now) and presign_expired(stale, now)
    assert presign_expired([("Expires", str(int(now.timestamp()) - 1)), ("Signature", "s")], now)
    assert not presign_expired([("Expires", str(int(now.timestamp()) + 5)), ("Signature", "s")], now)
    assert presign_expired([("X-Amz-Date", "garbage"), ("X-Amz-Expires", "60")], now)


def test_store_settings() -> None:
    assert load_settings({}).s3_kind == "minio"
    assert load_settings({"SMEMU_S3_STORE": "memory"}).s3_kind == "memory"
    assert load_settings({"SMEMU_S3_ENDPOINT": "http://127.0.0.1:9000"}).s3_kind == "external"
    with pytest.raises(ValueError, match="SMEMU_S3_STORE"):
        load_settings({"SMEMU_S3_STORE": "disk"})
    with pytest.raises(ValueError, match="goes with SMEMU_S3_ENDPOINT"):
        load_settings({"SMEMU_S3_STORE": "memory", "SMEMU_S3_ENDPOINT": "http://127.0.0.1:9000"})
    assert load_settings({"SMEMU_S3_SYNC": "1"}).s3_sync is True


def test_without_a_minio_binary_the_default_store_refuses_and_says_what_to_do(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache")
    assert find_minio_binary(settings) is None
    with pytest.raises(StoreUnavailable) as refused:
        open_store(settings)
    message = str(refused.value)
    assert message == missing_binary_message(settings)
    for remedy in ("scripts/build-minio --binary-only", "SMEMU_MINIO_BINARY", "SMEMU_S3_ENDPOINT",
                   "SMEMU_S3_STORE=memory", "NOT durable"):
        assert remedy in message
    assert isinstance(open_store(Settings(home=tmp_path, s3_store="memory")), MemoryStore)
    binary = tmp_path / "bin" / "minio"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert find_minio_binary(Settings(minio_binary=binary, cache_dir=tmp_path / "cache")) == binary


def test_store_credentials_are_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "s3-credentials.json"
    first = load_or_create_credentials(path)
    assert load_or_create_credentials(path) == first
    assert len(first[1]) >= 30 and path.stat().st_mode & 0o777 == 0o600
