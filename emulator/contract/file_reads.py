"""Which staged files a container read, seen from the host side of its bind mounts (inotify).

The emulator stages a training job's config files and channels in folders under its home
and bind-mounts them read-only. inotify marks belong to the inode, not to the mount, so an
open or read inside the container raises events on a watch this process put on the host
folder, with nothing installed in the image and no change to the container. The emulator
itself only *writes* those files (close-after-write), so a close-after-read or an access
event means the container read the file.

Linux only; elsewhere :meth:`ReadWatch.create` returns None and the rules that need it are
reported as not evaluated.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import threading
import time
from pathlib import Path

IN_ACCESS = 0x00000001
IN_CLOSE_NOWRITE = 0x00000010
IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_Q_OVERFLOW = 0x00004000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_MASK = IN_ACCESS | IN_CLOSE_NOWRITE | IN_CREATE | IN_MOVED_TO
_EVENT = struct.Struct("iIII")
MAX_WATCHED_FOLDERS = 4096
"""Folders watched per tree at most (a channel with more subfolders is watched in part)."""


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch  # noqa: B018 - probe that they exist
    except (OSError, AttributeError):
        return None
    return libc


class ReadWatch:
    """Counts reads of files under some folders, from now until :meth:`close`."""

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self._fd = fd
        self._folders: dict[int, Path] = {}
        self._reads: dict[Path, float] = {}
        """File -> when it was last read (this machine's clock)."""
        self._overflowed = False
        self._lock = threading.Lock()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._drain, name="smemu-check-reads", daemon=True)
        self._thread.start()

    @classmethod
    def create(cls) -> ReadWatch | None:
        """A watch, or None where inotify is not available (not Linux, no libc)."""
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return None
        return cls(libc, fd)

    def watch_tree(self, root: Path) -> None:
        """Watch ``root`` (created if missing) and every folder below it, now and as they appear."""
        root.mkdir(parents=True, exist_ok=True)
        self._add(root)
        for folder, subfolders, _files in os.walk(root):
            for name in subfolders:
                self._add(Path(folder) / name)

    def _add(self, folder: Path) -> None:
        with self._lock:
            if len(self._folders) >= MAX_WATCHED_FOLDERS:
                return
        descriptor = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), _MASK)
        if descriptor < 0:
            code = ctypes.get_errno()
            if code in (errno.ENOENT, errno.ENOTDIR):
                return  # removed meanwhile
            raise OSError(code, f"inotify_add_watch {folder}: {os.strerror(code)}")
        with self._lock:
            self._folders[descriptor] = folder

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            if self._fd in ready:
                self._read_events()
            if self._stop_r in ready:
                self._read_events()
                return

    def _read_events(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return
            except OSError:
                return
            offset = 0
            while offset < len(data):
                descriptor, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                self._handle(descriptor, mask, os.fsdecode(raw))

    def _handle(self, descriptor: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            with self._lock:
                self._overflowed = True
            return
        with self._lock:
            folder = self._folders.get(descriptor)
        if folder is None or not name:
            return
        path = folder / name
        if mask & IN_ISDIR:
            if mask & (IN_CREATE | IN_MOVED_TO):
                self.watch_tree(path)
            return
        if mask & (IN_ACCESS | IN_CLOSE_NOWRITE):
            with self._lock:
                self._reads[path] = time.time()

    def watching(self, folder: Path) -> bool:
        """Whether ``folder`` is watched (folders made after :meth:`watch_tree` are added as they appear)."""
        with self._lock:
            return folder in self._folders.values()

    def reads_under(self, root: Path) -> tuple[str, ...]:
        """Files under ``root`` read so far, relative to it."""
        with self._lock:
            return tuple(sorted(str(p.relative_to(root)) for p in self._reads if root in p.parents))

    @property
    def overflowed(self) -> bool:
        """Whether the kernel dropped events (a very busy tree): reads may be undercounted."""
        with self._lock:
            return self._overflowed

    def close(self) -> None:
        """Stop watching (pending events are counted first)."""
        if self._stop_w < 0:
            return
        os.write(self._stop_w, b"x")
        self._thread.join(5)
        for fd in (self._fd, self._stop_r, self._stop_w):
            os.close(fd)
        self._stop_w = -1

    def __enter__(self) -> ReadWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def files_under(root: Path) -> tuple[str, ...]:
    """Relative paths of the regular files under ``root`` (empty when it is missing)."""
    if not root.is_dir():
        return ()
    return tuple(sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()))
