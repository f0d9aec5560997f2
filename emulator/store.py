"""Resource records (jobs, models, endpoint configs, endpoints) kept in SQLite.

Each record is the resource's Describe* response as a plain JSON dict (timestamps as epoch
seconds), so a Describe is a read and a restart of the emulator loses nothing. Names are
unique per kind without regard to case, as SageMaker's ARNs are (they lower-case the name).

Durability: WAL mode with ``synchronous=FULL``, so every commit is fsynced before the call
returns (a Completed status is never lost to a crash or a power cut once written). The schema
version is SQLite's ``user_version``: an older file is migrated (:data:`MIGRATIONS`), a newer
one refused with :class:`StoreVersionError`.
"""

from __future__ import annotations

import builtins
import copy
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Record = dict[str, Any]

SCHEMA_VERSION = 1
"""The schema this release writes (``PRAGMA user_version``). 0: files written before versioning."""
MIGRATIONS: dict[int, str] = {0: ""}
"""``{version n: SQL turning schema n into n + 1}`` (0 -> 1 only stamps the version: same tables)."""


class StoreVersionError(RuntimeError):
    """The database was written by a newer release."""


Listener = Callable[[str, str, "Record | None", "Record | None"], None]
"""``(kind, name, record before, record after)``, called after a change is saved (None: absent)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS tags (
    arn TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (arn, tag_key)
);
"""


class Store:
    """A small, thread-safe document store over one SQLite file.

    One connection guarded by a lock: the control plane's write rate is tiny, and a single
    writer keeps read-modify-write updates (:meth:`update`) atomic without retries.
    """

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._migrate(str(path))
        self._lock = threading.RLock()
        self._listeners: builtins.list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` after every saved change (the server's lifecycle log lines).

        Listeners run in the writer's thread after the lock is released; one that raises is
        logged and does not undo or stop the change.
        """
        self._listeners.append(listener)

    def _notify(self, kind: str, name: str, before: Record | None, after: Record | None) -> None:
        for listener in self._listeners:
            try:
                listener(kind, name, before, after)
            except Exception:  # an observer must never break a write
                logging.getLogger(__name__).exception("store listener failed for %s %s", kind, name)

    def _migrate(self, where: str) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            self._db.close()
            raise StoreVersionError(
                f"{where} was written by a newer sagemaker-emulator (schema {version}; this release knows up to "
                f"{SCHEMA_VERSION}). Upgrade sagemaker-emulator, or move SMEMU_HOME aside to start empty.")
        self._db.executescript(_SCHEMA)
        for step in range(version, SCHEMA_VERSION):
            self._db.executescript(MIGRATIONS[step])
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the database; the store is unusable afterwards."""
        with self._lock:
            self._db.close()

    def insert(self, kind: str, name: str, record: Record, created: float) -> bool:
        """Add a record; False when one of that kind and name exists already."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO resources (kind, key, name, created, data) VALUES (?, ?, ?, ?, ?)",
                    (kind, name.lower(), name, created, json.dumps(record)),
                )
            except sqlite3.IntegrityError:
                return False
        if self._listeners:
            self._notify(kind, name, None, record)
        return True

    def put(self, kind: str, name: str, record: Record, created: float) -> None:
        """Insert or replace a record."""
        with self._lock:
            before = self.get(kind, name) if self._listeners else None
            self._db.execute(
                "INSERT OR REPLACE INTO resources (kind, key, name, created, data) VALUES (?, ?, ?, ?, ?)",
                (kind, name.lower(), name, created, json.dumps(record)),
            )
        if self._listeners:
            self._notify(kind, name, before, record)

    def get(self, kind: str, name: str) -> Record | None:
        """The record of that kind and name, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM resources WHERE kind = ? AND key = ?", (kind, name.lower())
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def update(self, kind: str, name: str, change: Callable[[Record], Record | None]) -> Record | None:
        """Atomically apply ``change`` to a record and save what it returns (or the mutated dict).

        Returns the saved record, or None when there is no such record.
        """
        with self._lock:
            record = self.get(kind, name)
            if record is None:
                return None
            before = copy.deepcopy(record) if self._listeners else None
            result = change(record)
            saved = record if result is None else result
            self._db.execute(
                "UPDATE resources SET data = ? WHERE kind = ? AND key = ?",
                (json.dumps(saved), kind, name.lower()),
            )
        if self._listeners:
            self._notify(kind, name, before, saved)
        return saved

    def delete(self, kind: str, name: str) -> bool:
        """Remove a record; False when there was none."""
        with self._lock:
            before = self.get(kind, name) if self._listeners else None
            cursor = self._db.execute(
                "DELETE FROM resources WHERE kind = ? AND key = ?", (kind, name.lower())
            )
            deleted = cursor.rowcount > 0
        if deleted and self._listeners:
            self._notify(kind, name, before, None)
        return deleted

    def list(self, kind: str) -> builtins.list[Record]:
        """Every record of a kind, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM resources WHERE kind = ? ORDER BY created, key", (kind,)
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def names(self, kind: str) -> Iterator[str]:
        """The names of every record of a kind, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM resources WHERE kind = ? ORDER BY created, key", (kind,)
            ).fetchall()
        return iter([row[0] for row in rows])

    # Tags are kept by ARN, as AddTags/ListTags/DeleteTags address them.

    def add_tags(self, arn: str, tags: builtins.list[dict[str, str]]) -> None:
        """Add or overwrite tags on a resource."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO tags (arn, tag_key, tag_value) VALUES (?, ?, ?)",
                [(arn, t["Key"], t.get("Value", "")) for t in tags],
            )

    def list_tags(self, arn: str) -> builtins.list[dict[str, str]]:
        """Tags of a resource in key order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT tag_key, tag_value FROM tags WHERE arn = ? ORDER BY tag_key", (arn,)
            ).fetchall()
        return [{"Key": k, "Value": v} for k, v in rows]

    def delete_tags(self, arn: str, keys: builtins.list[str] | None = None) -> None:
        """Remove some tags of a resource, or all of them when ``keys`` is None."""
        with self._lock:
            if keys is None:
                self._db.execute("DELETE FROM tags WHERE arn = ?", (arn,))
            else:
                self._db.executemany(
                    "DELETE FROM tags WHERE arn = ? AND tag_key = ?", [(arn, k) for k in keys]
                )
