"""S3 as the platform sees it: one boto3 client for whichever store is in use.

With ``SMEMU_S3_ENDPOINT`` unset the store is the embedded one on the edge port itself;
set, it is that endpoint (MinIO). Transfers use boto3's managed transfers (s3transfer),
so large objects move in parallel multipart pieces without code of our own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from emulator.config import Settings

_EMBEDDED_KEY = "smemu"


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/key`` URI."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> "S3Location":
        """Split an S3 URI; raises ValueError for anything that is not ``s3://bucket[/key]``."""
        if not uri.startswith("s3://"):
            raise ValueError(f"not an S3 URI: {uri!r}")
        bucket, _, key = uri[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"S3 URI without a bucket: {uri!r}")
        return cls(bucket, key)

    def join(self, *parts: str) -> "S3Location":
        """A location below this one, with exactly one '/' between the parts."""
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Location(self.bucket, key)

    @property
    def uri(self) -> str:
        """Back to ``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


class S3Store:
    """Hands out thread-local boto3 S3 clients for the configured store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()

    @property
    def endpoint_url(self) -> str:
        """Where the emulator itself reaches S3."""
        return self.settings.s3_endpoint or f"http://127.0.0.1:{self.settings.port}"

    @property
    def credentials(self) -> tuple[str, str]:
        """Access key and secret for the store (any pair works for the embedded one)."""
        if self.settings.s3_endpoint:
            return self.settings.s3_access_key, self.settings.s3_secret_key
        return _EMBEDDED_KEY, _EMBEDDED_KEY

    def client(self) -> Any:
        """A boto3 S3 client for this thread (clients are not safe to share while configuring)."""
        client = getattr(self._local, "client", None)
        if client is None:
            key, secret = self.credentials
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                region_name=self.settings.region,
                config=Config(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 3, "mode": "standard"},
                    max_pool_connections=32,
                ),
            )
            self._local.client = client
        return client
