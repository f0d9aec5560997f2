"""boto3 and SageMaker SDK sessions whose every client talks to the emulator, and only to it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import boto3

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class EmulatorBoto3Session(boto3.session.Session):  # type: ignore[misc]  # boto3 has no type hints
    """A ``boto3.Session`` with dummy credentials whose clients and resources go to the emulator.

    An explicit ``endpoint_url`` is honoured only when it is on this machine: the SageMaker SDK
    passes AWS's regional STS address explicitly (research: sdk-compat §1.4), and a test
    session must never reach AWS.
    """

    def __init__(self, endpoint_url: str, region_name: str = "us-east-1") -> None:
        super().__init__(aws_access_key_id="test", aws_secret_access_key="test", region_name=region_name)
        self.endpoint_url = endpoint_url

    def _endpoint(self, given: str | None) -> str:
        if given and (urlparse(given).hostname or "") in LOOPBACK:
            return given
        return self.endpoint_url

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        """A client for ``service_name`` on the emulator (same arguments as boto3's)."""
        kwargs["endpoint_url"] = self._endpoint(kwargs.get("endpoint_url"))
        return super().client(service_name, *args, **kwargs)

    def resource(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        """A resource for ``service_name`` on the emulator (same arguments as boto3's)."""
        kwargs["endpoint_url"] = self._endpoint(kwargs.get("endpoint_url"))
        return super().resource(service_name, *args, **kwargs)


def sdk_config(bucket: str) -> dict[str, Any]:
    """The SageMaker SDK defaults a test session needs: telemetry off, a default bucket (no STS)."""
    return {"SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"Session": {"DefaultS3Bucket": bucket},
                                                    "TelemetryOptOut": True}}}}


def sagemaker_session(boto_session: EmulatorBoto3Session, bucket: str) -> Any:
    """A ``sagemaker.Session`` (SDK v2) on the emulator: telemetry off, ``bucket`` as default bucket."""
    import sagemaker

    return sagemaker.Session(
        boto_session=boto_session,
        sagemaker_client=boto_session.client("sagemaker"),
        sagemaker_runtime_client=boto_session.client("sagemaker-runtime"),
        default_bucket=bucket,
        sagemaker_config=sdk_config(bucket),
    )
