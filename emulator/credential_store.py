"""The temporary credentials the emulator issued to containers, kept in its own SQLite file.

The container gateway verifies every AWS call of a container against the secret issued to
it, so the issued credentials (access key, secret, session token, role, session name,
expiry) must outlive a restart of the emulator: an endpoint re-adopted after a restart keeps
its credentials and its calls keep working. They live in ``<SMEMU_HOME>/state/
container-credentials.db`` (mode 0600), apart from the resource records and apart from
moto's STS state, so nothing else's persistence decides whether a container gets in.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issued (
    access_key_id TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    session_token TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    session_name TEXT NOT NULL,
    account_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    issued REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS issued_by_token ON issued (token_id, expires);
"""
KEEP_EXPIRED_SECONDS = 24 * 3600
"""Expired credentials are forgotten a day after they expire (until then they answer ExpiredToken)."""


@dataclass(frozen=True)
class Issued:
    """One set of temporary credentials, issued for one container token."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    role_arn: str
    session_name: str
    account_id: str
    token_id: str
    """Which container token they were issued for (a hash of it, never the token)."""
    issued: float
    expires: float


class CredentialStore:
    """Issued credentials by access key and by container token; thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._by_key: dict[str, Issued] = {}
        self.forget_expired()

    def add(self, issued: Issued) -> None:
        """Keep a new set (committed before it is handed out)."""
        with self._lock:
            self._db.execute("INSERT INTO issued VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                issued.access_key_id, issued.secret_access_key, issued.session_token, issued.role_arn,
                issued.session_name, issued.account_id, issued.token_id, issued.issued, issued.expires))
            self._by_key[issued.access_key_id] = issued

    def by_access_key(self, access_key_id: str) -> Issued | None:
        """The set with this access key (expired ones too, until forgotten), or None."""
        found = self._by_key.get(access_key_id)
        if found is not None:
            return found
        with self._lock:
            row = self._db.execute("SELECT * FROM issued WHERE access_key_id = ?", (access_key_id,)).fetchone()
        if row is None:
            return None
        found = Issued(*row)
        self._by_key[access_key_id] = found
        return found

    def latest_for_token(self, token_id: str) -> Issued | None:
        """The newest set issued for a container token, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM issued WHERE token_id = ? ORDER BY expires DESC LIMIT 1",
                                   (token_id,)).fetchone()
        return Issued(*row) if row is not None else None

    def unexpired(self) -> list[Issued]:
        """Every set still valid now (to make them known to moto's STS again after a restart)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM issued WHERE expires > ?", (time.time(),)).fetchall()
        return [Issued(*row) for row in rows]

    def forget_expired(self) -> None:
        """Drop sets that expired more than :data:`KEEP_EXPIRED_SECONDS` ago."""
        cutoff = time.time() - KEEP_EXPIRED_SECONDS
        with self._lock:
            self._db.execute("DELETE FROM issued WHERE expires < ?", (cutoff,))
            self._by_key = {k: v for k, v in self._by_key.items() if v.expires >= cutoff}

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
