"""Safe extraction with and without tarfile's data filter (Python 3.11.2 has none)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from emulator import archives


def _archive(*members: tuple[tarfile.TarInfo, bytes]) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r")


def _file(name: str, data: bytes = b"x", mode: int = 0o644, uid: int = 4242) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = len(data), mode, uid, uid
    return info, data


@pytest.fixture(params=[True, False], ids=["data-filter", "fallback"])
def filter_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param and not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile data filter")
    monkeypatch.setattr(archives, "HAS_DATA_FILTER", request.param)
    return bool(request.param)


def test_files_land_owned_by_us_with_their_exec_bit(tmp_path: Path, filter_mode: bool) -> None:
    tar = _archive(_file("bin/run", b"#!/bin/sh\n", mode=0o4755), _file("data.txt", b"hello"))
    archives.extract_all(tar, tar.getmembers(), tmp_path)
    assert (tmp_path / "data.txt").read_bytes() == b"hello"
    run = tmp_path / "bin" / "run"
    assert run.stat().st_uid == os.getuid()
    assert run.stat().st_mode & 0o111, "the executable bit is kept"
    assert not run.stat().st_mode & 0o4000, "setuid is dropped"


@pytest.mark.parametrize("name", ["/etc/evil", "../evil", "a/../../evil"])
def test_names_escaping_the_folder_are_refused(tmp_path: Path, filter_mode: bool, name: str) -> None:
    tar = _archive(_file(name))
    with pytest.raises((archives.UnsafeMember, tarfile.FilterError) if hasattr(tarfile, "FilterError")
                       else archives.UnsafeMember):
        archives.extract_all(tar, tar.getmembers(), tmp_path / "target")
    assert not (tmp_path / "evil").exists()


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path, filter_mode: bool) -> None:
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
    tar = _archive((link, b""))
    with pytest.raises((archives.UnsafeMember, tarfile.FilterError) if hasattr(tarfile, "FilterError")
                       else archives.UnsafeMember):
        archives.extract_all(tar, tar.getmembers(), tmp_path / "target")
