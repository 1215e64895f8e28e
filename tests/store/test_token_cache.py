"""The devices generation and the token cache on it (issue 20), on a real SQLite file.

Every change of a device row, by any connection, moves the generation; the cache answers
a remembered token on the event loop without the shared connection, even while another
process holds the database's write lock, and still writes the last-seen time each minute.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from app.clock import iso, now
from app.off_loop import off_loop
from app.store.db import MIGRATIONS, Database
from app.store.state import LAST_SEEN_PRECISION, State
from app.store.token_cache import TokenCache

BEFORE = 10  # the migrations the release before the devices generation had
T = TypeVar("T")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "photo-relay.db")
    yield database
    database.close()


def other_connection(db: Database) -> sqlite3.Connection:
    """A writer of its own, as `photo-relay device revoke` in another process has."""
    return sqlite3.connect(db.path, isolation_level=None, timeout=10, check_same_thread=False)


def on_the_loop(db: Database, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` on an event loop whose thread the database refuses, as the service does
    (a thread of its own, so this one may close the database after)."""

    async def guarded() -> T:
        db.guard_event_loop()
        return await work()

    with ThreadPoolExecutor(1) as loop_thread:
        return loop_thread.submit(asyncio.run, guarded()).result()


def test_every_change_of_a_device_by_any_connection_moves_the_generation(
    db: Database,
) -> None:
    """Insert, update (any column) and delete, by the service or another connection, each
    move the generation on; other tables' writes do not."""
    state = State(db)
    seen = [db.devices_generation()]
    state.add_device("phone", "hash-1")
    seen.append(db.devices_generation())
    state.rotate_device_token("phone", "hash-2")
    seen.append(db.devices_generation())
    state.device_for_token_hash("hash-2")  # writes last_seen_at
    seen.append(db.devices_generation())
    state.journal("test.note", "a write to another table")
    assert db.devices_generation() == seen[-1]
    with other_connection(db) as conn:
        conn.execute("UPDATE devices SET name = 'tablet'")
        seen.append(db.devices_generation())
        conn.execute("DELETE FROM devices")
        seen.append(db.devices_generation())
    assert seen == [0, 1, 2, 3, 4, 5]


def test_an_older_database_gets_the_generation_and_its_triggers(tmp_path: Path) -> None:
    """Migration 11 on a database of the release before: the counter starts at 0 and the
    triggers are there (a device added after the upgrade moves it)."""
    path = tmp_path / "photo-relay.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, migration in enumerate(MIGRATIONS[:BEFORE], start=1):
        conn.executescript(f"BEGIN; {migration()}; PRAGMA user_version={number}; COMMIT;")
    conn.close()
    db = Database(path)
    try:
        assert db.devices_generation() == 0
        State(db).add_device("phone", "hash-1")
        assert db.devices_generation() == 1
    finally:
        db.close()


def test_a_remembered_token_is_answered_while_another_writer_holds_the_lock(
    db: Database,
) -> None:
    """While another connection holds the write lock (a commit with its fsync), a known
    token is answered on the loop at once; one not remembered waits for the database."""
    state = State(db)
    state.add_device("phone", "hash-1")
    state.add_device("tablet", "hash-2")
    cache = TokenCache(state)
    writer = other_connection(db)

    async def check() -> tuple[str | None, bool]:
        first = await cache.adevice_for_token_hash("hash-1")
        assert first is not None and len(cache) == 1
        writer.execute("BEGIN IMMEDIATE")
        try:
            known = await asyncio.wait_for(cache.adevice_for_token_hash("hash-1"), 2)
            other = asyncio.ensure_future(cache.adevice_for_token_hash("hash-2"))
            done, _ = await asyncio.wait([other], timeout=0.5)
        finally:
            writer.execute("ROLLBACK")
        await other  # it goes on once the lock is free
        return known.name if known else None, bool(done)

    try:
        assert on_the_loop(db, check) == ("phone", False)
    finally:
        writer.close()


def test_a_remembered_device_is_still_marked_seen_every_minute(db: Database) -> None:
    """A remembered entry lasts only while the device's last-seen time is younger than a
    minute; the check after that reads the row and writes the time again."""
    state = State(db)
    state.add_device("phone", "hash-1")
    almost_a_minute_ago = now() - LAST_SEEN_PRECISION + timedelta(milliseconds=300)
    with other_connection(db) as conn:
        conn.execute("UPDATE devices SET last_seen_at = ?", (iso(almost_a_minute_ago),))
    cache = TokenCache(state)

    def last_seen() -> datetime:
        row = db.call(lambda conn: conn.execute("SELECT last_seen_at FROM devices").fetchone())
        return datetime.fromisoformat(row[0])

    async def check() -> tuple[datetime, datetime]:
        await cache.adevice_for_token_hash("hash-1")  # read, not written: fresh enough
        kept = await off_loop(last_seen)
        while now() - almost_a_minute_ago < LAST_SEEN_PRECISION:
            await asyncio.sleep(0.05)  # the clock must pass the minute; nothing else runs
        await cache.adevice_for_token_hash("hash-1")
        return kept, await off_loop(last_seen)

    kept, written = on_the_loop(db, check)
    assert abs(kept - almost_a_minute_ago) < timedelta(milliseconds=1)
    assert written - almost_a_minute_ago >= LAST_SEEN_PRECISION
