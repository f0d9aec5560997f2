"""Copying a container volume from disk: files and folders only, nothing followed or opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emulator.runtime.volume_copy import copy_volume_folder

pytestmark = pytest.mark.skipif(not hasattr(os, "O_PATH"), reason="the direct copy is Linux-only (O_PATH)")


def test_files_and_folders_are_copied_and_nothing_else(tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    (volume / "sub" / "deeper").mkdir(parents=True)
    (volume / "model.bin").write_bytes(b"\x00weights" * 1000)
    (volume / "sub" / "deeper" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(volume / "sub" / "deeper" / "run.sh", 0o777)
    secret = tmp_path / "secret"
    secret.write_text("host file")
    (volume / "escape").symlink_to(secret)  # links never leave the container
    (volume / "sub" / "dir-escape").symlink_to(tmp_path)
    os.mkfifo(volume / "pipe")  # opening a pipe for reading would block the copy forever
    dest = tmp_path / "dest"
    assert copy_volume_folder(str(volume), dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "model.bin", "sub", "sub/deeper", "sub/deeper/run.sh"]
    assert (dest / "model.bin").read_bytes() == b"\x00weights" * 1000
    assert (dest / "sub" / "deeper" / "run.sh").stat().st_mode & 0o777 == 0o755  # group/other write dropped


def test_a_folder_that_cannot_be_opened_is_left_to_the_archive_path(tmp_path: Path) -> None:
    assert not copy_volume_folder(str(tmp_path / "missing"), tmp_path / "dest")
    (tmp_path / "link").symlink_to(tmp_path)
    assert not copy_volume_folder(str(tmp_path / "link"), tmp_path / "dest2")  # the top is not followed either
