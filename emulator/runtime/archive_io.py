"""Byte-stream helpers of the Docker backend: log timestamps and the engine's tar archive API.

Kept apart from ``docker_backend`` because they are pure (no engine): a folder as a tar to
seed a private volume, a file over the chunks of an archive download, Docker's timestamps.
"""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any


def parse_docker_time(text: str) -> float:
    """Epoch seconds of a Docker RFC 3339 timestamp with nanoseconds (``...:02.334403364Z``)."""
    text = text.rstrip("Z")
    whole, _, fraction = text.partition(".")
    stamp = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc).timestamp()
    return stamp + (float(f"0.{fraction}") if fraction else 0.0)


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (Docker's archive stream)."""

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


def tar_of_folder(source: Path) -> IO[bytes]:
    """A tar (in a temporary file) of ``source``'s contents, owned by root, writable by all.

    World-writable modes keep images whose USER is not root able to write their checkpoints.
    """
    import tempfile

    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    with tarfile.open(fileobj=spool, mode="w") as archive:
        for path in sorted(source.rglob("*")):
            info = archive.gettarinfo(str(path), arcname=path.relative_to(source).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isdir():
                info.mode = 0o777
                archive.addfile(info)
            elif info.isfile():
                info.mode = 0o666
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
    spool.seek(0)
    return spool
