"""The SQLite database: one connection, its pragmas, and the schema migrations.

(Beside it a read-only connection that only reads the devices generation, on the event
loop: `Database.devices_generation`.)

Migrations are a list of small functions giving SQL; the number applied is kept in `user_version`,
so a newer release upgrades an older database in place at start-up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from app.durable_dirs import make_dir_durably
from app.off_loop import off_loop

__all__ = ["MIGRATIONS", "Database", "open_read_only", "quick_check", "schema_version"]

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


def _m002_backup_runs() -> str:
    """The backup shortcut's runs, each device's place in its library, the
    (name, capture date, size) -> SHA-256 hints that spare re-sending bytes, and the
    photos a running run has already counted (pages overlap by design)."""
    return """
        CREATE TABLE backup_runs (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices(id),
            kind TEXT NOT NULL,
            network TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            state TEXT NOT NULL,
            phase TEXT NOT NULL,
            window_start TEXT,
            full_walk INTEGER NOT NULL DEFAULT 0,
            pages INTEGER NOT NULL DEFAULT 0,
            checked INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            sent_new INTEGER NOT NULL DEFAULT 0,
            sent_known INTEGER NOT NULL DEFAULT 0,
            new_photos INTEGER NOT NULL DEFAULT 0,
            new_videos INTEGER NOT NULL DEFAULT 0,
            last_after TEXT,
            last_next_after TEXT,
            new_walk_end TEXT,
            sweep_done INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE INDEX backup_runs_by_device ON backup_runs(device_id, id);
        CREATE TABLE backup_progress (
            device_id INTEGER PRIMARY KEY REFERENCES devices(id),
            resume_after TEXT,
            walk_after TEXT,
            walk_full INTEGER NOT NULL DEFAULT 0,
            sweep_after TEXT,
            last_sweep_at TEXT
        );
        CREATE TABLE backup_index (
            device_id INTEGER NOT NULL REFERENCES devices(id),
            name TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            size TEXT NOT NULL,
            sha256 TEXT NOT NULL REFERENCES items(sha256),
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (device_id, name, captured_at, size)
        );
        CREATE TABLE backup_run_seen (
            run_id INTEGER NOT NULL REFERENCES backup_runs(id),
            name TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            size TEXT NOT NULL,
            PRIMARY KEY (run_id, name, captured_at, size)
        );
    """


def _m003_chunked_uploads() -> str:
    # NextCloud chunked uploads in progress, so a restart resumes after the last chunk.
    return """
        CREATE TABLE chunked_uploads (
            sha256 TEXT PRIMARY KEY,
            upload_id TEXT NOT NULL,
            destination TEXT NOT NULL,
            total_size INTEGER NOT NULL,
            chunk_size INTEGER NOT NULL,
            chunks_done INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );
    """


def _m004_backup_walks() -> str:
    """The backup conversation walks the library by whole days (issue 14): each device's
    walk, the exact (name, capture second) -> bytes index, the page a run is working on,
    and the photos that failed, with their back-off. The old hints keyed on a size as the
    phone wrote it ("2.1 MB") cannot prove anything, so they are dropped."""
    return """
        DELETE FROM backup_run_seen;
        DROP TABLE backup_progress;
        DROP TABLE backup_index;
        ALTER TABLE backup_runs ADD COLUMN pending TEXT;
        ALTER TABLE backup_runs ADD COLUMN later INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE backup_walks (
            device_id INTEGER PRIMARY KEY REFERENCES devices(id),
            walk TEXT,
            anchor TEXT,
            take INTEGER,
            until TEXT,
            pass_started_at TEXT,
            changes_since TEXT,
            last_sweep_at TEXT
        );
        CREATE TABLE backup_photos (
            device_id INTEGER NOT NULL REFERENCES devices(id),
            name TEXT NOT NULL,
            taken TEXT NOT NULL,
            size INTEGER NOT NULL,
            modified TEXT,
            sha256 TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (device_id, name, taken)
        );
        DROP TABLE backup_run_seen;
        CREATE TABLE backup_run_seen (
            run_id INTEGER NOT NULL REFERENCES backup_runs(id),
            name TEXT NOT NULL,
            taken TEXT NOT NULL,
            PRIMARY KEY (run_id, name, taken)
        );
        CREATE TABLE backup_page (
            run_id INTEGER NOT NULL REFERENCES backup_runs(id),
            position INTEGER NOT NULL,
            name TEXT,
            taken TEXT,
            modified TEXT,
            size INTEGER,
            PRIMARY KEY (run_id, position)
        );
        CREATE TABLE backup_failures (
            device_id INTEGER NOT NULL REFERENCES devices(id),
            name TEXT NOT NULL,
            taken TEXT NOT NULL,
            state TEXT NOT NULL,
            run_id INTEGER,
            position INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            reason TEXT,
            next_try_at TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (device_id, name, taken)
        );
    """


def _m005_capture_notes() -> str:
    """Each receipt says in words where its capture time came from and why (issue 17);
    rows from before keep NULL and are described from `captured_source`."""
    return "ALTER TABLE items ADD COLUMN captured_note TEXT;"


def _m006_safe_at_home() -> str:
    """Proof on the phone (issue 19): what the phone said it could not send in full (a
    Live Photo's still only, an edited photo's render), and the by-hand "Free up space"
    runs with every decision made on each photo."""
    return """
        ALTER TABLE backup_photos ADD COLUMN not_captured TEXT;
        ALTER TABLE backup_page ADD COLUMN kind TEXT;
        ALTER TABLE backup_page ADD COLUMN albums TEXT;
        ALTER TABLE backup_page ADD COLUMN icloud TEXT;
        ALTER TABLE backup_runs ADD COLUMN album_adds INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE backup_run_album (
            run_id INTEGER NOT NULL REFERENCES backup_runs(id),
            name TEXT NOT NULL,
            taken TEXT NOT NULL,
            PRIMARY KEY (run_id, name, taken)
        );
        CREATE TABLE free_up_runs (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices(id),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            state TEXT NOT NULL,
            message TEXT
        );
        CREATE TABLE free_up_items (
            run_id INTEGER NOT NULL REFERENCES free_up_runs(id),
            position INTEGER NOT NULL,
            name TEXT,
            taken TEXT,
            size INTEGER,
            sha256 TEXT,
            decision TEXT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (run_id, position)
        );
    """


def _m007_device_names_reusable() -> str:
    """A revoked device's name can be given to a new device (issue 15): names are unique
    among active devices only. SQLite cannot drop a column's UNIQUE, so the table is
    rebuilt; other tables' references are checked at commit, when the rows are back."""
    return """
        PRAGMA defer_foreign_keys=ON;
        CREATE TEMP TABLE devices_before AS SELECT * FROM devices;
        DROP TABLE devices;
        CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL COLLATE NOCASE,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            last_seen_at TEXT
        );
        INSERT INTO devices (id, name, token_hash, created_at, revoked_at, last_seen_at)
            SELECT id, name, token_hash, created_at, revoked_at, last_seen_at
            FROM devices_before;
        DROP TABLE devices_before;
        CREATE UNIQUE INDEX devices_active_name ON devices(name) WHERE revoked_at IS NULL
    """


def _m008_deliveries() -> str:
    """Each destination a file must reach is a delivery with its own state (issue 18); the
    item's own relay columns become the aggregate of its deliveries (store/state.py keeps
    them so in the same transaction). Every existing item becomes one delivery to the
    configured destination (number 1), with its relay columns as they were, and its count
    of problems towards giving up (from the journal, as it was counted) of its own. A
    chunked upload in progress is kept per (hash, destination), the old ones under 1."""
    return """
        CREATE TABLE deliveries (
            sha256 TEXT NOT NULL REFERENCES items(sha256),
            destination_id INTEGER NOT NULL,
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
            problems INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (sha256, destination_id)
        );
        CREATE INDEX deliveries_due ON deliveries(destination_id, state, next_attempt_at);
        CREATE TABLE chunked_uploads_by_destination (
            sha256 TEXT NOT NULL,
            destination_id INTEGER NOT NULL,
            upload_id TEXT NOT NULL,
            destination TEXT NOT NULL,
            total_size INTEGER NOT NULL,
            chunk_size INTEGER NOT NULL,
            chunks_done INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (sha256, destination_id)
        );
        INSERT INTO chunked_uploads_by_destination (sha256, destination_id, upload_id,
                destination, total_size, chunk_size, chunks_done, updated_at)
            SELECT sha256, 1, upload_id, destination, total_size, chunk_size, chunks_done,
                updated_at
            FROM chunked_uploads;
        DROP TABLE chunked_uploads;
        ALTER TABLE chunked_uploads_by_destination RENAME TO chunked_uploads;
        INSERT INTO deliveries (sha256, destination_id, state, planned_path, remote_path,
                attempts, next_attempt_at, last_error, verified_at, verified_by, remote_etag,
                remote_file_id, problems)
            SELECT sha256, 1, state, planned_path, remote_path, attempts, next_attempt_at,
                last_error, verified_at, verified_by, remote_etag, remote_file_id,
                (SELECT COUNT(*) FROM journal AS j WHERE j.sha256 = items.sha256
                    AND j.event = 'relay.problem' AND j.id > (SELECT COALESCE(MAX(id), 0)
                    FROM journal WHERE sha256 = items.sha256 AND event = 'relay.requeued'))
            FROM items
    """


def _m009_people() -> str:
    """People own devices and destinations (issue 18). The installation as it was becomes
    one person, "me", owning every device and the configured destination (number 1, whose
    settings stay in settings.toml: kind `settings`); each destination may have its own
    path template (NULL: the settings' one). Each item records every person and device
    that sent it (device 0: imported on this machine); the first sender of every
    existing item is its device, under "me". (SQLite cannot add a column with both a
    default and a REFERENCES; `People` checks the person exists.)"""
    return """
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            created_at TEXT NOT NULL
        );
        INSERT INTO people (id, name, created_at)
            VALUES (1, 'me', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));
        CREATE TABLE destinations (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id),
            kind TEXT NOT NULL,
            location TEXT,
            user TEXT,
            path_template TEXT,
            folder TEXT,
            created_at TEXT NOT NULL
        );
        INSERT INTO destinations (id, person_id, kind, created_at)
            VALUES (1, 1, 'settings', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));
        ALTER TABLE devices ADD COLUMN person_id INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE item_senders (
            sha256 TEXT NOT NULL REFERENCES items(sha256),
            person_id INTEGER NOT NULL REFERENCES people(id),
            device_id INTEGER NOT NULL DEFAULT 0,
            first_at TEXT NOT NULL,
            PRIMARY KEY (sha256, person_id, device_id)
        );
        CREATE INDEX item_senders_by_person ON item_senders(person_id, sha256);
        INSERT INTO item_senders (sha256, person_id, device_id, first_at)
            SELECT sha256, 1, COALESCE(device_id, 0), received_at FROM items
    """


def _m010_journal_destination() -> str:
    """A journal entry about one delivery names its destination (metrics count per
    destination); entries written before, and those about a whole item, have none."""
    return "ALTER TABLE journal ADD COLUMN destination_id INTEGER"


def _m011_devices_generation() -> str:
    """A counter that every change of the devices table moves on, in the changing
    transaction, whoever writes it (issue 20): the service remembers whose token is whose
    while it stands still (store/token_cache.py). A migration that rebuilds `devices`
    drops these triggers with the table and must create them again."""
    bump = "BEGIN UPDATE devices_generation SET value = value + 1; END"
    return f"""
        CREATE TABLE devices_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            value INTEGER NOT NULL
        );
        INSERT INTO devices_generation (id, value) VALUES (1, 0);
        CREATE TRIGGER devices_generation_insert AFTER INSERT ON devices {bump};
        CREATE TRIGGER devices_generation_update AFTER UPDATE ON devices {bump};
        CREATE TRIGGER devices_generation_delete AFTER DELETE ON devices {bump}
    """


# Each returns the SQL of one step; they run in order, each in its own transaction.
MIGRATIONS: list[Callable[[], str]] = [
    _m001_initial,
    _m002_backup_runs,
    _m003_chunked_uploads,
    _m004_backup_walks,
    _m005_capture_notes,
    _m006_safe_at_home,
    _m007_device_names_reusable,
    _m008_deliveries,
    _m009_people,
    _m010_journal_destination,
    _m011_devices_generation,
]


# -- read-only inspection, for `photo-relay doctor` (never migrates, never creates) -------


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that can read `path` but never create, migrate or change it."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """How many migrations the database has had (compare with `len(MIGRATIONS)`)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def quick_check(conn: sqlite3.Connection) -> list[str]:
    """SQLite's own consistency check; an empty list means the file is sound."""
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(20)")]
    return [] if problems == ["ok"] else problems


class Database:
    """A single SQLite connection shared by the service; calls are serialised by a lock.

    Every call blocks (the lock, the commit's fsync), so none may run on the event loop:
    code there awaits `acall` (or a `State`/`Overview` method's async twin). The service
    makes that a rule with `guard_event_loop`. The one read the loop may make is
    `devices_generation`, on a read-only connection of its own that never waits.
    """

    def __init__(self, path: Path) -> None:
        make_dir_durably(path.parent)
        self.path = path
        self._lock = threading.Lock()
        self._loop_thread: int | None = None  # see guard_event_loop
        self._generation_reader: sqlite3.Connection | None = None  # see devices_generation
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        # Called after each commit that changed rows: the status page's live feed listens.
        self.write_listeners: list[Callable[[], None]] = []
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
        """Run `fn` with the connection, inside one transaction (never on the event loop)."""
        self._refuse_on_event_loop("Database.call")
        with self._lock:
            changes = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                # A COMMIT that fails (disk full, I/O error) may leave the transaction open;
                # every later BEGIN would then fail until a restart.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            wrote = self._conn.total_changes != changes
        if wrote:
            for listener in self.write_listeners:
                listener()
        return result

    def devices_generation(self) -> int | None:
        """How often the devices table has changed (migration 11's triggers), as committed
        now; None when it cannot be read without waiting. Safe on the event loop.

        It is read on a read-only connection of its own, never the shared one, whose lock a
        commit's fsync may hold. In WAL mode a reader takes no lock a writer holds and sees
        every transaction committed before its read began, by this process or any other.
        The busy timeout is 0: in the rare moments SQLite would make a reader wait (another
        connection recovering the WAL index) this answers None at once, and the caller
        reads the device row in a worker thread as before.
        """
        try:
            if self._generation_reader is None:
                self._generation_reader = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    timeout=0,
                    check_same_thread=False,  # opened on the loop, closed by `close`
                )
            # fetchall steps the statement to its end, so no read snapshot stays open.
            rows = self._generation_reader.execute(
                "SELECT value FROM devices_generation"
            ).fetchall()
        except sqlite3.OperationalError:
            return None
        return int(rows[0][0]) if rows else None

    def guard_event_loop(self) -> None:
        """From now on, `call` and `close` raise RuntimeError on this (the loop's) thread.

        Called by the service on its event loop. Only that thread is refused, not any
        thread with a running loop: a caller's own loop (a test's browser driver, the
        CLI's `asyncio.run`) is not the service's.
        """
        self._loop_thread = threading.get_ident()

    def _refuse_on_event_loop(self, what: str) -> None:
        if self._loop_thread == threading.get_ident():
            raise RuntimeError(
                f"{what} blocks and was called on the event loop; await its async face "
                "(Database.acall, State.a..., or app.off_loop.off_loop) instead."
            )

    async def acall(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`call` in a worker thread, so a commit's fsync never blocks the event loop."""
        return await off_loop(self.call, fn)

    def close(self) -> None:
        self._refuse_on_event_loop("Closing the database")  # the last close checkpoints the WAL
        with self._lock:
            if self._generation_reader is not None:
                self._generation_reader.close()
            self._conn.close()
