"""Settings are parsed explicitly from SMEMU_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.config import Settings, load_settings, parse_bool


def test_defaults_bind_loopback_on_4570() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port) == ("127.0.0.1", 4570)
    assert settings.s3_endpoint is None
    assert settings.endpoint_url == "http://localhost:4570"


def test_variables_override_defaults(tmp_path: Path) -> None:
    settings = load_settings({
        "SMEMU_PORT": "5000", "SMEMU_HOST": "0.0.0.0", "SMEMU_HOME": str(tmp_path),
        "SMEMU_S3_ENDPOINT": "http://127.0.0.1:9000", "SMEMU_RESOURCE_LIMITS": "no",
    })
    assert settings.port == 5000
    assert settings.home == tmp_path
    assert settings.state_dir == tmp_path / "state"
    assert settings.s3_endpoint == "http://127.0.0.1:9000"
    assert settings.resource_limits is False


def test_region_falls_back_to_aws_default_region() -> None:
    assert load_settings({"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert load_settings({"AWS_DEFAULT_REGION": "eu-west-1", "SMEMU_REGION": "ap-south-1"}).region == "ap-south-1"


@pytest.mark.parametrize(("word", "value"), [("1", True), ("TRUE", True), ("yes", True), ("0", False),
                                             ("off", False), ("", False)])
def test_parse_bool(word: str, value: bool) -> None:
    assert parse_bool(word) is value


def test_parse_bool_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")


def test_with_overrides_ignores_unset_flags() -> None:
    settings = Settings().with_overrides(port=None, host="0.0.0.0")
    assert settings.port == 4570 and settings.host == "0.0.0.0"


def test_the_edge_has_a_front_per_cpu_and_its_transport_limits_are_settings() -> None:
    import os

    defaults = load_settings({})
    assert defaults.edge_workers == max(1, min(os.cpu_count() or 1, 8))
    assert (defaults.max_header_bytes, defaults.max_request_bytes) == (65536, 16 * 1024 * 1024)
    tuned = load_settings({
        "SMEMU_EDGE_WORKERS": "0", "SMEMU_MAX_HEADER_BYTES": "8192", "SMEMU_MAX_REQUEST_BYTES": "1000",
        "SMEMU_REQUEST_HEADER_TIMEOUT_SECONDS": "2.5", "SMEMU_REQUEST_BODY_TIMEOUT_SECONDS": "4",
        "SMEMU_KEEPALIVE_TIMEOUT_SECONDS": "9",
    })
    assert (tuned.edge_workers, tuned.max_header_bytes, tuned.max_request_bytes) == (0, 8192, 1000)
    assert (tuned.request_header_timeout_seconds, tuned.request_body_timeout_seconds,
            tuned.keepalive_timeout_seconds) == (2.5, 4.0, 9.0)
    with pytest.raises(ValueError, match="SMEMU_EDGE_WORKERS"):
        load_settings({"SMEMU_EDGE_WORKERS": "-1"})


def test_hold_seconds_may_be_off_but_not_negative() -> None:
    assert load_settings({}).hold_seconds == Settings().hold_seconds > 0
    assert load_settings({"SMEMU_HOLD_SECONDS": "0"}).hold_seconds == 0
    assert load_settings({"SMEMU_HOLD_SECONDS": "2.5"}).hold_seconds == 2.5
    with pytest.raises(ValueError, match="SMEMU_HOLD_SECONDS must be 0 or more"):
        load_settings({"SMEMU_HOLD_SECONDS": "-1"})
