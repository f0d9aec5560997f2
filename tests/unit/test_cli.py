"""The command line: flags become settings, export lines point clients at the emulator."""

from __future__ import annotations

from pathlib import Path

from emulator.cli import _settings, build_parser, export_lines
from emulator.config import Settings


def test_home_flag_becomes_a_path(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--home", str(tmp_path), "--port", "4999"])
    settings = _settings(args)
    assert settings.home == tmp_path
    assert settings.state_dir == tmp_path / "state"
    assert settings.port == 4999


def test_export_lines_for_the_default_store() -> None:
    lines = export_lines(Settings(port=4570))
    assert "export AWS_ENDPOINT_URL=http://localhost:4570" in lines
    assert not any("AWS_ENDPOINT_URL_S3" in line for line in lines)


def test_export_lines_with_an_external_store_need_no_s3_endpoint_or_its_credentials() -> None:
    """S3 goes through the edge port, which signs for the store: one endpoint, any credentials."""
    lines = export_lines(Settings(s3_endpoint="http://127.0.0.1:9000", s3_access_key="k", s3_secret_key="s"))
    assert "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test" in lines
    assert not any("AWS_ENDPOINT_URL_S3" in line or "=s" in line.split()[-1] for line in lines)
