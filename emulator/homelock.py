"""One emulator per home: an exclusive lock on ``SMEMU_HOME/smemu.lock`` for the emulator's life.

Two emulators writing one journal, one SQLite file and one MinIO drive would corrupt all three.
The lock is ``flock(2)``: the kernel drops it when the process dies (kill -9 included), so a
crashed emulator never blocks the next start.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class HomeInUse(RuntimeError):
    """Another emulator holds this home."""


class HomeLock:
    """``with HomeLock(home): ...`` or :meth:`acquire` / :meth:`release`."""

    def __init__(self, home: Path) -> None:
        self.path = home / "smemu.lock"
        self._fd: int | None = None

    def acquire(self) -> HomeLock:
        """Take the lock or raise :class:`HomeInUse` naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise HomeInUse(f"another emulator (pid {holder}) uses {self.path.parent}; stop it (smemu down) or "
                            f"give this one its own SMEMU_HOME") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HomeLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
