"""Copying a container's volume straight from the engine's disk, when this process can read it.

The Docker backend copies ``/opt/ml/model`` and ``/opt/ml/output`` out of a training container
with the engine's archive API: a tar stream through the engine, about 0.1 s per folder even when
it is empty. When the engine is local and this process may read the volume's folder on disk
(the emulator runs as root on the Docker host, or a rootless engine's own user), reading the
folder directly gives the same files in milliseconds; anywhere else (Docker Desktop, a remote
engine, an emulator inside a container) the archive API stays.

The rules are the archive path's: regular files and folders only, never links, devices, pipes
or sockets, and the copies belong to this process's user. A container may be running (its
checkpoints are synced) and may be hostile, so the walk never follows a name: every entry is
first opened with ``O_PATH | O_NOFOLLOW`` relative to its parent's descriptor (which opens
no device and follows no link), checked with ``fstat``, and only a regular file is then
opened for reading, through that same descriptor. Linux only; elsewhere the archive API
is used.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

_PATH = getattr(os, "O_PATH", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC


def copy_volume_folder(source: str, dest: Path) -> bool:
    """Copy the folder ``source`` (on this machine) into ``dest``; False when it cannot be read.

    ``dest`` is created. Partial copies are left for the caller to discard on failure.
    """
    if not _PATH or not Path("/proc/self/fd").is_dir():
        return False
    try:
        top = os.open(source, _DIR_FLAGS)
    except OSError:
        return False
    try:
        dest.mkdir(parents=True, exist_ok=True)
        _copy_tree(top, dest)
    except PermissionError:
        return False
    finally:
        os.close(top)
    return True


def _copy_tree(folder_fd: int, dest: Path) -> None:
    with os.scandir(folder_fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        try:
            handle = os.open(name, _PATH | os.O_NOFOLLOW | _CLOEXEC, dir_fd=folder_fd)
        except FileNotFoundError:  # gone meanwhile
            continue
        try:
            info = os.fstat(handle)
            if stat.S_ISDIR(info.st_mode):
                child = dest / name
                child.mkdir(exist_ok=True)
                sub = os.open(".", _DIR_FLAGS, dir_fd=handle)
                try:
                    _copy_tree(sub, child)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(info.st_mode):
                target = dest / name
                with open(f"/proc/self/fd/{handle}", "rb") as reader, target.open("wb") as writer:
                    shutil.copyfileobj(reader, writer, 1 << 20)
                target.chmod(info.st_mode & 0o755)  # as the archive path's data filter leaves it
                os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(handle)
