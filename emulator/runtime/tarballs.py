"""Folders in and out of containers as tar streams, shared by every backend.

Docker's archive API and Kubernetes' exec API both move folders as tar. Going in, the
archive is built here with the owners and modes a container expects (root, and world-writable
for private folders so images whose USER is not root can write their checkpoints). Coming
out, only regular files and folders are extracted, below ``dest``, by our own user: links,
devices and FIFOs never leave a container, and no member can escape ``dest``
(``emulator.archives.extract_member``).
"""

from __future__ import annotations

import io
import stat
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO, Any

from emulator.archives import extract_member


class UnsupportedFile(ValueError):
    """A staged folder holds something that cannot be copied into a container (a FIFO, a socket)."""


def tar_of_folder(source: Path) -> IO[bytes]:
    """A tar (in a temporary file, rewound) of a private folder's contents: root's, writable by all."""
    return archive_of_folders([(source, "", True)])[0]


def archive_of_folders(folders: Iterable[tuple[Path, str, bool]]) -> tuple[IO[bytes], int]:
    """One tar of several folders, ``(source, prefix, writable)`` each; returns it rewound and its size.

    ``prefix`` (``opt/ml/input``) goes before every member of that folder, and its own folders
    are added. ``writable``: folders 0777 and files 0666 (a private folder the container writes
    to); otherwise the source's own modes, readable by everyone, and its symbolic links.
    Raises :class:`UnsupportedFile` for FIFOs and sockets.
    """
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    with tarfile.open(fileobj=spool, mode="w") as archive:
        for source, prefix, writable in folders:
            _add_folder(archive, source, writable=writable, prefix=prefix)
    size = spool.tell()
    spool.seek(0)
    return spool, size


def _add_folder(archive: tarfile.TarFile, source: Path, *, writable: bool, prefix: str) -> None:
    base = PurePosixPath(prefix.strip("/")) if prefix.strip("/") else None
    if base is not None:
        for depth in range(1, len(base.parts) + 1):
            info = tarfile.TarInfo(PurePosixPath(*base.parts[:depth]).as_posix())
            info.type, info.mode = tarfile.DIRTYPE, 0o777 if writable else 0o755
            archive.addfile(info)
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        name = (base / relative).as_posix() if base is not None else relative
        mode = path.lstat().st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise UnsupportedFile(f"{path} is a {'FIFO' if stat.S_ISFIFO(mode) else 'socket'}; it cannot be "
                                  "copied into a container")
        info = archive.gettarinfo(str(path), arcname=name)
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        if info.isdir():
            info.mode = 0o777 if writable else (info.mode | 0o555)
            archive.addfile(info)
        elif info.isfile():
            info.mode = 0o666 if writable else (info.mode | 0o444)
            with path.open("rb") as handle:
                archive.addfile(info, handle)
        elif info.issym() and not writable:
            archive.addfile(info)


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (an archive arriving over the network)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def extract_folder(chunks: Iterable[bytes], top: str, dest: Path) -> None:
    """Extract the folder ``top`` of a tar stream (as ``docker cp`` / ``tar -c top`` write it) into ``dest``.

    Members are taken relative to ``top``; links, devices and FIFOs are skipped.
    """
    dest.mkdir(parents=True, exist_ok=True)
    stream = io.BufferedReader(ChunkReader(chunks), 1 << 20)
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if parts and parts[0] == ".":
                parts = parts[1:]
            if not parts or parts[0] != top or len(parts) == 1:
                continue
            member.name = PurePosixPath(*parts[1:]).as_posix()
            if member.issym() or member.islnk() or member.isdev() or member.isfifo():
                continue  # links and devices never leave the container
            extract_member(archive, member, dest)
