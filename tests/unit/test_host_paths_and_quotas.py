"""Host folders a request may mount (emulator/host_paths.py) and instance quotas (emulator/quotas.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emulator.config import load_settings
from emulator.errors import ResourceLimitExceeded, ValidationException
from emulator.host_paths import check_allowed_root, check_host_folder
from emulator.quotas import check_instance_quota, parse_quotas, quota_for


def test_nothing_is_allowed_by_default(tmp_path: Path) -> None:
    with pytest.raises(ValidationException, match="SMEMU_HOST_FOLDERS") as refused:
        check_host_folder(f"file://{tmp_path}", load_settings({}).host_folders, None, "channel train")
    assert "nothing (unset)" in refused.value.message


def test_a_folder_under_an_allowed_root_is_allowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert check_host_folder(f"file://{data}", [tmp_path.resolve()], None, "f") == data.resolve()
    assert check_host_folder(f"file://{tmp_path}", [tmp_path.resolve()], None, "f") == tmp_path.resolve()


@pytest.mark.parametrize("uri", ["file:///var/run", "file:///root", "file:///", "file:///etc/ssl",
                                 "file:///proc/self", "file:///var", "file:///run/docker.sock"])
def test_sensitive_folders_are_refused_even_under_an_allowed_root(uri: str) -> None:
    with pytest.raises(ValidationException, match="never mounts it"):
        check_host_folder(uri, [Path("/")], None, "f")


def test_dot_dot_and_links_are_resolved_before_the_check(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    os.symlink("/etc", allowed / "link")
    with pytest.raises(ValidationException, match="/etc"):
        check_host_folder(f"file://{allowed}/link", [allowed.resolve()], None, "f")
    with pytest.raises(ValidationException, match="outside the folders"):
        check_host_folder(f"file://{allowed}/../", [allowed.resolve()], None, "f")


def test_the_emulators_home_is_protected(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    for folder in (home, home / "state", tmp_path):
        with pytest.raises(ValidationException, match="never mounts it"):
            check_host_folder(str(folder), [tmp_path.resolve()], home, "f")


def test_allowed_roots_are_checked_at_start(tmp_path: Path) -> None:
    assert load_settings({"SMEMU_HOST_FOLDERS": f"{tmp_path}:{tmp_path}/x"}).host_folders[0] == tmp_path.resolve()
    for bad in ("/", "/var", "relative/path", "/etc/app"):
        with pytest.raises(ValueError, match="SMEMU_HOST_FOLDERS"):
            check_allowed_root(Path(bad))


def test_quota_entries_and_specificity() -> None:
    quotas = parse_quotas("ml.m5.large=3, endpoint/*=5, endpoint/ml.m5.large=1, *=7")
    assert quota_for(quotas, "training", "ml.m5.large") == 3
    assert quota_for(quotas, "endpoint", "ml.m5.large") == 1
    assert quota_for(quotas, "endpoint", "ml.c5.xlarge") == 5
    assert quota_for(quotas, "training", "ml.c5.xlarge") == 7
    assert quota_for((), "training", "ml.c5.xlarge") == 20
    for bad in ("ml.m5.large", "gpu/ml.p3.2xlarge=1", "ml.m5.large=-1", "ml.m5.large=x"):
        with pytest.raises(ValueError, match="SMEMU_INSTANCE_QUOTAS"):
            parse_quotas(bad)


def test_quota_refusal_uses_awss_words() -> None:
    check_instance_quota((), "training", {"ml.m5.large": 15}, {"ml.m5.large": 5})
    with pytest.raises(ResourceLimitExceeded) as refused:
        check_instance_quota((), "training", {"ml.m5.large": 100000}, {"ml.m5.large": 2})
    assert refused.value.message.startswith(
        "The account-level service limit 'ml.m5.large for training job usage' is 20 Instances, with current "
        "utilization of 2 Instances and a request delta of 100000 Instances.")
