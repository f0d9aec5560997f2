"""The pytest plugin's public surface: its fixtures and options are a contract with users' suites."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import pytest_plugin
from emulator.testing.clients import EmulatorBoto3Session, sdk_config

pytest_plugins = ["pytester"]

FIXTURES = {
    "smemu_emulator_env", "smemu_session_env", "smemu_emulator", "smemu_endpoint_url", "smemu_boto3_session",
    "smemu_sagemaker_client", "smemu_runtime_client", "smemu_s3_client", "smemu_iam_client", "smemu_logs_client",
    "smemu_role_arn", "smemu_bucket", "smemu_sagemaker_session", "smemu_training_job", "smemu_endpoint",
    "smemu_contract", "smemu_docker", "smemu_minio", "smemu_s3_endpoint", "smemu_emulator_image",
    "smemu_emulator_container",
}


def _is_fixture(value: Any) -> bool:
    return type(value).__name__ == "FixtureFunctionDefinition" or hasattr(value, "_pytestfixturefunction")


def test_the_plugin_offers_exactly_the_documented_fixtures() -> None:
    offered = {name for name, value in vars(pytest_plugin).items() if _is_fixture(value)}
    assert offered == FIXTURES
    for name in FIXTURES - {"smemu_session_env"}:
        assert f"``{name}``" in (pytest_plugin.__doc__ or "") or name in (pytest_plugin.__doc__ or ""), name


def test_the_boto3_session_keeps_every_client_on_the_emulator() -> None:
    session = EmulatorBoto3Session("http://127.0.0.1:4999")
    assert session.client("sagemaker").meta.endpoint_url == "http://127.0.0.1:4999"
    assert session.client("s3").meta.endpoint_url == "http://127.0.0.1:4999"
    # the SageMaker SDK passes AWS's STS address explicitly; a test session must not reach it
    sts = session.client("sts", endpoint_url="https://sts.us-east-1.amazonaws.com")
    assert sts.meta.endpoint_url == "http://127.0.0.1:4999"
    assert session.client("s3", endpoint_url="http://localhost:9000").meta.endpoint_url == "http://localhost:9000"
    assert session.resource("s3").meta.client.meta.endpoint_url == "http://127.0.0.1:4999"
    credentials = session.get_credentials()
    assert (credentials.access_key, credentials.secret_key) == ("test", "test")


def test_the_sdk_defaults_turn_telemetry_off_and_name_the_bucket() -> None:
    modules = sdk_config("b")["SageMaker"]["PythonSDK"]["Modules"]
    assert modules == {"Session": {"DefaultS3Bucket": "b"}, "TelemetryOptOut": True}


def test_an_unknown_emulator_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(smemu_endpoint_url):\n    pass\n")
    result = pytester.runpytest("--smemu-emulator=vm")
    assert "--smemu-emulator must be process, in-process or container" in result.stdout.str() + result.stderr.str()
