"""Extracting tar members safely on every Python the emulator runs on.

Python 3.12 (and 3.11.4+) has tarfile's ``data`` extraction filter; Debian bookworm's 3.11.2,
which the offline image runs, does not. This module applies the filter where it exists and
the same rules by hand where it does not: no absolute names, nothing outside the target, and
files owned by the user running the emulator rather than by whoever made the archive.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


class UnsafeMember(ValueError):
    """A member whose name would land outside the extraction folder."""


def check_member_name(name: str) -> None:
    """Refuse absolute names and ``..`` components."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise UnsafeMember(f"archive member {name!r} would be extracted outside its folder")


def extract_member(archive: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """Extract one member under ``dest`` with the ``data`` filter's guarantees.

    Absolute names are refused in both cases (the data filter would quietly make them
    relative), so a malformed archive fails the same way on every Python.
    """
    check_member_name(member.name)
    if HAS_DATA_FILTER:
        archive.extract(member, dest, filter="data")
        return
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        joined = PurePosixPath(member.name).parent / target if member.issym() else target
        check_member_name(str(joined) if not target.is_absolute() else member.linkname)
    if member.isdev():
        raise UnsafeMember(f"archive member {member.name!r} is a device file")
    member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
    member.mode &= 0o755 if not member.isdir() else 0o7777
    archive.extract(member, dest, set_attrs=True)


def extract_all(archive: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> None:
    """Extract members (already vetted by the caller) with :func:`extract_member`."""
    for member in members:
        extract_member(archive, member, dest)
