"""The SQLite database: one connection, its pragmas, and the schema migrations.

Migrations are a list of small functions giving SQL; the number applied is kept in `user_version`,
so a newer release upgrades an older database in place at start-up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

__all__ = ["Database"]

T = TypeVar("T")


def _m001_initial() -> str:
    return """
        CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            last_seen_at TEXT
        );
        CREATE TABLE items (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            original_name TEXT NOT NULL,
            kind TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            captured_local TEXT NOT NULL,
            captured_source TEXT NOT NULL,
            device_id INTEGER REFERENCES devices(id),
            received_at TEXT NOT NULL,
            state TEXT NOT NULL,
            planned_path TEXT NOT NULL,
            remote_path TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT,
            verified_at TEXT,
            verified_by TEXT,
            remote_etag TEXT,
            remote_file_id TEXT,
            spool_removed_at TEXT
        );
        CREATE INDEX items_by_state ON items(state, next_attempt_at);
        CREATE INDEX items_by_received ON items(received_at);
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            sha256 TEXT,
            event TEXT NOT NULL,
            message TEXT NOT NULL
        );
        CREATE INDEX journal_by_item ON journal(sha256, id);
    """


# Each returns the SQL of one step; they run in order, each in its own transaction.
MIGRATIONS: list[Callable[[], str]] = [_m001_initial]


class Database:
    """A single SQLite connection shared by the service; calls are serialised by a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed row survives power loss, so a 2xx really means "recorded".
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.execute("PRAGMA foreign_keys=ON")
        # 16 MiB of page cache instead of 2: the check endpoint's look-ups stay in memory.
        self._conn.execute("PRAGMA cache_size=-16384")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                self._conn.executescript(
                    f"BEGIN IMMEDIATE; {migration()}; PRAGMA user_version={number}; COMMIT;"
                )

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` with the connection, inside one transaction."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    async def acall(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`call` in a worker thread, so a commit's fsync never blocks the event loop."""
        return await anyio.to_thread.run_sync(self.call, fn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
