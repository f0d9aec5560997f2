"""S3 as the platform sees it: one boto3 client for whichever store is in use.

The platform talks to the store directly with the store's own credentials (the managed
MinIO's, or ``SMEMU_S3_ENDPOINT``'s); only moto's in-memory store is reached through the edge
port. Transfers use boto3's managed transfers (s3transfer), so large objects move in parallel
multipart pieces without code of our own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from emulator.config import Settings

if TYPE_CHECKING:
    from emulator.objectstore import ObjectStore

_EMBEDDED_KEY = "smemu"


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/key`` URI."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Split an S3 URI; raises ValueError for anything that is not ``s3://bucket[/key]``."""
        if not uri.startswith("s3://"):
            raise ValueError(f"not an S3 URI: {uri!r}")
        bucket, _, key = uri[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"S3 URI without a bucket: {uri!r}")
        return cls(bucket, key)

    def join(self, *parts: str) -> S3Location:
        """A location below this one, with exactly one '/' between the parts."""
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Location(self.bucket, key)

    @property
    def uri(self) -> str:
        """Back to ``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


class S3Store:
    """Hands out thread-local boto3 S3 clients for the configured store."""

    def __init__(self, settings: Settings, store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.store = store
        self._local = threading.local()

    @property
    def endpoint_url(self) -> str:
        """Where the emulator itself reaches S3."""
        endpoint = self.store.endpoint if self.store is not None else None
        if endpoint is not None:
            return endpoint.url
        return self.settings.s3_endpoint or f"http://127.0.0.1:{self.settings.port}"

    @property
    def credentials(self) -> tuple[str, str]:
        """Access key and secret for the store (any pair works for moto's)."""
        endpoint = self.store.endpoint if self.store is not None else None
        if endpoint is not None:
            return endpoint.access_key, endpoint.secret_key
        if self.settings.s3_endpoint:
            return self.settings.s3_access_key, self.settings.s3_secret_key
        return _EMBEDDED_KEY, _EMBEDDED_KEY

    def make_durable(self) -> None:
        """Return once every object the store acknowledged survives a power loss (call before Completed)."""
        if self.store is not None:
            self.store.make_durable()

    def client(self) -> Any:
        """A boto3 S3 client for this thread (clients are not safe to share while configuring)."""
        client = getattr(self._local, "client", None)
        if client is not None and client.meta.endpoint_url != self.endpoint_url:
            client = None  # the store moved (a restarted MinIO on a new port)
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
