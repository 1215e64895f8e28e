"""All SQL about devices, items and their queue transitions (journalled by `write_journal`).

Each public method is one transaction. Every state change writes a journal entry in the
same transaction, so the journal can never disagree with the item it describes. Methods
block (the CLI, tests and worker threads call them as they are); code on the event loop
awaits their async twins, named with an `a` in front (`aget_item`), as Django does.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.clock import duration_words, iso, now
from app.errors import Conflict, NotFound
from app.naming import name_key
from app.off_loop import off_loop
from app.receipts import (
    CAPTURE_NOTES,
    DeliveryReceipt,
    DeviceInfo,
    ItemState,
    JournalEntry,
    Receipt,
    Sender,
)
from app.store.db import Database
from app.store.deliveries import DEFAULT_DESTINATION, RELAY_COLUMNS, refresh_item
from app.store.journal import write_journal
from app.store.people import DEFAULT_PERSON, person_destinations

__all__ = [
    "DESTINATION_BACK",
    "DESTINATION_DOWN",
    "LAST_SEEN_PRECISION",
    "Device",
    "NewItem",
    "State",
    "TokenCheck",
    "outage_events",
    "read_devices",
    "read_newest_record_at",
    "read_open_outage",
]

# The journal events that open and close an outage of the destination (the relay writes
# them; the headline reads the last one, in this process or another).
DESTINATION_DOWN = "relay.destination_down"
DESTINATION_BACK = "relay.destination_back"

# How stale a device's last_seen_at may be: finer would cost a write per request.
LAST_SEEN_PRECISION = timedelta(minutes=1)

STATES: tuple[ItemState, ...] = tuple(ItemState)
# What the relay may claim: new items, and retries whose time has come.
CLAIMABLE = (ItemState.RECEIVED, ItemState.RETRY)


_RECEIPT_SQL = """
    SELECT items.*, devices.name AS device_name
    FROM items LEFT JOIN devices ON devices.id = items.device_id
"""


@dataclass(frozen=True)
class Device:
    id: int
    name: str
    person_id: int = DEFAULT_PERSON


@dataclass(frozen=True)
class TokenCheck:
    """An active device found by its token: its row as of devices `generation`, and when
    it was last seen (now, or a moment less than `LAST_SEEN_PRECISION` ago)."""

    device: Device
    seen_at: datetime
    generation: int


@dataclass(frozen=True)
class NewItem:
    sha256: str
    size: int
    original_name: str
    kind: str
    captured_at: str
    captured_local: str
    captured_source: str
    planned_path: str
    device: Device | None
    captured_note: str | None = None
    # The planned path under another path template (a destination's own); None: every
    # destination gets `planned_path`.
    path_for: Callable[[str], str] | None = None


def _receipt(row: sqlite3.Row) -> Receipt:
    return Receipt(
        sha256=row["sha256"],
        size=row["size"],
        original_name=row["original_name"],
        kind=row["kind"],
        captured_at=row["captured_at"],
        captured_source=row["captured_source"],
        captured_note=row["captured_note"] or CAPTURE_NOTES.get(row["captured_source"], ""),
        device=row["device_name"],
        received_at=row["received_at"],
        state=row["state"],
        planned_path=row["planned_path"],
        remote_path=row["remote_path"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        verified_at=row["verified_at"],
        verified_by=row["verified_by"],
        remote_etag=row["remote_etag"],
        remote_file_id=row["remote_file_id"],
    )


def _record_sender(conn: sqlite3.Connection, item: NewItem, at: str) -> int:
    """Note who sent the item and give it a delivery to each of their destinations it has
    not got yet; how many deliveries are new. A repeat from the same person adds none."""
    person = item.device.person_id if item.device else DEFAULT_PERSON
    conn.execute(
        "INSERT INTO item_senders (sha256, person_id, device_id, first_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (item.sha256, person, item.device.id if item.device else 0, at),
    )
    added = 0
    for destination, template in person_destinations(conn, person):
        planned = item.planned_path
        if template is not None and item.path_for is not None:
            planned = item.path_for(template)
        added += conn.execute(
            "INSERT INTO deliveries (sha256, destination_id, state, planned_path, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (item.sha256, destination, ItemState.RECEIVED, planned, at),
        ).rowcount
    return added


def _sent_by(conn: sqlite3.Connection, sha256: str, person: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM item_senders WHERE sha256 = ? AND person_id = ?", (sha256, person)
    ).fetchone()
    return row is not None


def _one_receipt(conn: sqlite3.Connection, sha256: str) -> Receipt | None:
    row = conn.execute(_RECEIPT_SQL + " WHERE items.sha256 = ?", (sha256,)).fetchone()
    if row is None:
        return None
    senders = [
        Sender(person=r["person"], device=r["device"], first_at=r["first_at"])
        for r in conn.execute(
            "SELECT people.name AS person, devices.name AS device, item_senders.first_at "
            "FROM item_senders JOIN people ON people.id = item_senders.person_id "
            "LEFT JOIN devices ON devices.id = item_senders.device_id "
            "WHERE item_senders.sha256 = ? ORDER BY item_senders.first_at, people.id",
            (sha256,),
        )
    ]
    deliveries = [
        DeliveryReceipt(destination=r["destination_id"], **{c: r[c] for c in RELAY_COLUMNS})
        for r in conn.execute(
            "SELECT * FROM deliveries WHERE sha256 = ? ORDER BY destination_id", (sha256,)
        )
    ]
    return _receipt(row).model_copy(update={"senders": senders, "deliveries": deliveries})


def _delivery_receipt(conn: sqlite3.Connection, sha256: str, destination: int) -> Receipt:
    """The item's receipt with the relay columns of its delivery to `destination`: what
    the relay works from (its planned path, its attempts)."""
    receipt = _one_receipt(conn, sha256)
    row = conn.execute(
        "SELECT * FROM deliveries WHERE sha256 = ? AND destination_id = ?",
        (sha256, destination),
    ).fetchone()
    assert receipt is not None and row is not None
    return receipt.model_copy(update={c: row[c] for c in RELAY_COLUMNS})


def _update_delivery(
    conn: sqlite3.Connection,
    sha256: str,
    destination: int,
    sets: str,
    args: tuple[Any, ...],
    *,
    only_state: ItemState | None = None,
) -> int:
    """Change one delivery (optionally only while in `only_state`) and re-aggregate its
    item; how many rows changed."""
    where = "sha256 = ? AND destination_id = ?"
    keys: tuple[Any, ...] = (sha256, destination)
    if only_state is not None:
        where += " AND state = ?"
        keys += (only_state,)
    cursor = conn.execute(f"UPDATE deliveries SET {sets} WHERE {where}", (*args, *keys))
    if cursor.rowcount:
        refresh_item(conn, sha256)
    return cursor.rowcount


class State:
    """The service's records, on top of one `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- devices -------------------------------------------------------------------------

    def add_device(self, name: str, token_hash: str, *, person_id: int = DEFAULT_PERSON) -> Device:
        def add(conn: sqlite3.Connection) -> Device:
            active = "SELECT 1 FROM devices WHERE name = ? AND revoked_at IS NULL"
            if conn.execute(active, (name,)).fetchone():
                raise Conflict(
                    f"A device called {name!r} already exists. Pick another name, or give "
                    f"it a new token with `photo-relay device rotate {name}`."
                )
            cursor = conn.execute(
                "INSERT INTO devices (name, token_hash, created_at, person_id) VALUES (?, ?, ?, ?)",
                (name, token_hash, iso(now()), person_id),
            )
            write_journal(conn, "device.added", f"Device {name!r} was added.")
            return Device(int(cursor.lastrowid or 0), name, person_id)

        return self.db.call(add)

    def list_devices(self) -> list[DeviceInfo]:
        return self.db.call(read_devices)

    def revoke_device(self, name: str) -> None:
        def revoke(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE devices SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (iso(now()), name),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"No active device called {name!r}; see `photo-relay device list`.")
            write_journal(conn, "device.revoked", f"Device {name!r} was revoked.")

        self.db.call(revoke)

    def rotate_device_token(self, name: str, token_hash: str) -> None:
        """Replace an active device's token: the old one is refused from the next request."""

        def rotate(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE devices SET token_hash = ? WHERE name = ? AND revoked_at IS NULL",
                (token_hash, name),
            )
            if cursor.rowcount == 0:
                raise NotFound(
                    f"No active device called {name!r}; see `photo-relay device list`, or "
                    f"add it with `photo-relay device add {name}`."
                )
            write_journal(conn, "device.token_rotated", f"Device {name!r} has a new token.")

        self.db.call(rotate)

    def device_for_token_hash(self, token_hash: str) -> Device | None:
        """The active device holding this token, marking it as seen now (`check_token_hash`)."""
        check = self.check_token_hash(token_hash)
        return check.device if check is not None else None

    def check_token_hash(self, token_hash: str) -> TokenCheck | None:
        """The active device holding this token, marking it as seen now, with the devices
        generation its row was read in (one transaction: the row is as of that generation).

        "Now" is kept to the minute: a device seen less than a minute ago is not written
        again, so a burst of uploads does not pay a database write and flush for each.
        """

        def find(conn: sqlite3.Connection) -> TokenCheck | None:
            row = conn.execute(
                "SELECT id, name, token_hash, person_id FROM devices "
                "WHERE token_hash = ? AND revoked_at IS NULL",
                (token_hash,),
            ).fetchone()
            if row is None or not hmac.compare_digest(row["token_hash"], token_hash):
                return None
            seen = now()
            conn.execute(
                "UPDATE devices SET last_seen_at = ? "
                "WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at < ?)",
                (iso(seen), row["id"], iso(seen - LAST_SEEN_PRECISION)),
            )
            # Read after the write: the generation includes this transaction's own bump.
            after = conn.execute(
                "SELECT devices.last_seen_at, devices_generation.value AS generation "
                "FROM devices, devices_generation WHERE devices.id = ?",
                (row["id"],),
            ).fetchone()
            return TokenCheck(
                Device(row["id"], row["name"], row["person_id"]),
                seen_at=datetime.fromisoformat(after["last_seen_at"]),
                generation=int(after["generation"]),
            )

        return self.db.call(find)

    # -- items ---------------------------------------------------------------------------

    def get_item(self, sha256: str, *, person: int | None = None) -> Receipt | None:
        """The receipt; with `person`, only if one of their devices sent it."""

        def read(conn: sqlite3.Connection) -> Receipt | None:
            if person is not None and not _sent_by(conn, sha256, person):
                return None
            return _one_receipt(conn, sha256)

        return self.db.call(read)

    def record_received(self, item: NewItem) -> tuple[Receipt, bool]:
        """Record a stored file; returns its receipt and whether it is new."""

        def record(conn: sqlite3.Connection) -> tuple[Receipt, bool]:
            received_at = iso(now())
            cursor = conn.execute(
                """INSERT INTO items (sha256, size, original_name, kind, captured_at,
                       captured_local, captured_source, device_id, received_at, state,
                       planned_path, next_attempt_at, captured_note)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (sha256) DO NOTHING""",
                (
                    item.sha256,
                    item.size,
                    item.original_name,
                    item.kind,
                    item.captured_at,
                    item.captured_local,
                    item.captured_source,
                    item.device.id if item.device else None,
                    received_at,
                    ItemState.RECEIVED,
                    item.planned_path,
                    received_at,
                    item.captured_note,
                ),
            )
            created = cursor.rowcount == 1
            who = f"from {item.device.name}" if item.device else "locally"
            added = _record_sender(conn, item, received_at)
            if added and not created:
                # The bytes were just stored again (ingest linked them), so a home copy
                # that retention removed is back, for the new deliveries to copy.
                conn.execute(
                    "UPDATE items SET spool_removed_at = NULL WHERE sha256 = ?", (item.sha256,)
                )
                write_journal(
                    conn,
                    "item.shared",
                    f"Received {item.original_name} {who} too; it will also be copied to "
                    f"their {added} destination(s).",
                    sha256=item.sha256,
                )
            refresh_item(conn, item.sha256)
            if created:
                write_journal(
                    conn,
                    "item.received",
                    f"Received {item.original_name} ({item.size} bytes) {who}; "
                    f"it will be saved as {item.planned_path}.",
                    sha256=item.sha256,
                )
            elif not added:
                write_journal(
                    conn,
                    "item.duplicate",
                    f"Received {item.original_name} again {who}; the same content is already "
                    "here, so nothing new was stored.",
                    sha256=item.sha256,
                )
            receipt = _one_receipt(conn, item.sha256)
            assert receipt is not None
            return receipt, created

        return self.db.call(record)

    def check(self, hashes: list[str], *, person: int | None = None) -> dict[str, ItemState]:
        """The state of each hash we hold; hashes we do not hold are left out, and with
        `person` so are those none of their devices sent."""

        def read(conn: sqlite3.Connection) -> dict[str, ItemState]:
            # One statement for the whole list (json_each), not one per batch of 500.
            # A damaged item is left out: to the phone it is missing, so it sends it again.
            rows = conn.execute(
                "SELECT items.sha256, items.state FROM json_each(?) AS asked "
                "JOIN items ON items.sha256 = asked.value WHERE items.state != ?"
                + (
                    ""
                    if person is None
                    else " AND EXISTS (SELECT 1 FROM item_senders WHERE "
                    "item_senders.sha256 = items.sha256 AND item_senders.person_id = ?)"
                ),
                (
                    json.dumps(list(dict.fromkeys(hashes))),
                    ItemState.DAMAGED,
                    *([person] if person is not None else []),
                ),
            )
            return {row[0]: row[1] for row in rows}

        return self.db.call(read)

    # -- relay queue ---------------------------------------------------------------------

    def release_interrupted(self) -> int:
        """After a crash, items caught in `relaying` go back to the queue."""

        def release(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT DISTINCT sha256 FROM deliveries WHERE state = ?", (ItemState.RELAYING,)
            ).fetchall()
            for row in rows:
                write_journal(
                    conn,
                    "relay.resumed",
                    "The service stopped while copying this file; it will be copied again.",
                    sha256=row["sha256"],
                )
            conn.execute(
                "UPDATE deliveries SET state = ?, next_attempt_at = ? WHERE state = ?",
                (ItemState.RECEIVED, iso(now()), ItemState.RELAYING),
            )
            for row in rows:
                refresh_item(conn, row["sha256"])
            return len(rows)

        return self.db.call(release)

    def claim_due(
        self,
        limit: int,
        skip: set[str],
        busy_paths: set[str],
        *,
        destination: int = DEFAULT_DESTINATION,
    ) -> list[tuple[Receipt, str]]:
        """Move up to `limit` due deliveries to `destination` to `relaying`; returns for
        each (the item's receipt as this delivery sees it, captured_local).

        Items in `skip` (hashes) or bound for a path in `busy_paths` (see `name_key`) wait,
        so two copies never go to the same destination path at once.
        """

        def claim(conn: sqlite3.Connection) -> list[tuple[Receipt, str]]:
            rows = conn.execute(
                "SELECT deliveries.sha256, deliveries.planned_path, items.captured_local "
                "FROM deliveries JOIN items ON items.sha256 = deliveries.sha256 "
                "WHERE deliveries.destination_id = ? AND deliveries.state IN (?, ?) "
                "AND deliveries.next_attempt_at <= ? "
                "ORDER BY deliveries.next_attempt_at, items.received_at LIMIT ?",
                (destination, *CLAIMABLE, iso(now()), limit + len(skip) + len(busy_paths)),
            ).fetchall()
            paths = set(busy_paths)
            claimed: list[sqlite3.Row] = []
            for row in rows:
                key = name_key(row["planned_path"])
                if row["sha256"] in skip or key in paths or len(claimed) == limit:
                    continue
                paths.add(key)
                claimed.append(row)
            for row in claimed:
                conn.execute(
                    "UPDATE deliveries SET state = ?, attempts = attempts + 1 "
                    "WHERE sha256 = ? AND destination_id = ?",
                    (ItemState.RELAYING, row["sha256"], destination),
                )
                refresh_item(conn, row["sha256"])
            return [
                (_delivery_receipt(conn, r["sha256"], destination), r["captured_local"])
                for r in claimed
            ]

        return self.db.call(claim)

    def next_due_at(self, *, destination: int = DEFAULT_DESTINATION) -> datetime | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM deliveries "
                "WHERE destination_id = ? AND state IN (?, ?)",
                (destination, *CLAIMABLE),
            ).fetchone()
            return row[0] if row else None

        value = self.db.call(read)
        return datetime.fromisoformat(value) if value else None

    def mark_verified(
        self,
        sha256: str,
        remote_path: str,
        verified_by: str,
        message: str,
        *,
        etag: str | None = None,
        file_id: str | None = None,
        destination: int = DEFAULT_DESTINATION,
    ) -> None:
        def mark(conn: sqlite3.Connection) -> None:
            _update_delivery(
                conn,
                sha256,
                destination,
                "state = ?, remote_path = ?, verified_by = ?, verified_at = ?, "
                "last_error = NULL, next_attempt_at = NULL, remote_etag = ?, remote_file_id = ?",
                (ItemState.VERIFIED, remote_path, verified_by, iso(now()), etag, file_id),
            )
            write_journal(conn, "relay.verified", message, sha256=sha256, destination=destination)

        self.db.call(mark)

    def mark_retry(
        self,
        sha256: str,
        error: str,
        at: datetime,
        *,
        counted: bool = False,
        destination: int = DEFAULT_DESTINATION,
    ) -> None:
        """Back in the queue at `at`. `counted`: a problem that counts towards giving up
        (journalled as `relay.problem`); else the destination was only unreachable or busy
        (`relay.retry_scheduled`), which never does."""

        def mark(conn: sqlite3.Connection) -> None:
            _update_delivery(
                conn,
                sha256,
                destination,
                "state = ?, last_error = ?, next_attempt_at = ?, problems = problems + ?",
                (ItemState.RETRY, error, iso(at), 1 if counted else 0),
            )
            wait = duration_words((at - now()).total_seconds())
            event = "relay.problem" if counted else "relay.retry_scheduled"
            write_journal(
                conn,
                event,
                f"{error} Trying again in {wait}.",
                sha256=sha256,
                destination=destination,
            )

        self.db.call(mark)

    def count_problems(self, sha256: str, *, destination: int = DEFAULT_DESTINATION) -> int:
        """Counted problems (`relay.problem`) of one delivery since it was last put back by
        hand: a destination's trouble never counts towards giving up on another."""

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT problems FROM deliveries WHERE sha256 = ? AND destination_id = ?",
                (sha256, destination),
            ).fetchone()
            return int(row[0]) if row else 0

        return self.db.call(read)

    def mark_failed(
        self, sha256: str, error: str, *, destination: int = DEFAULT_DESTINATION
    ) -> None:
        def mark(conn: sqlite3.Connection) -> None:
            _update_delivery(
                conn,
                sha256,
                destination,
                "state = ?, last_error = ?, next_attempt_at = NULL",
                (ItemState.FAILED, error),
            )
            write_journal(
                conn,
                "relay.failed",
                f"{error} The file is still safe on this machine. Once the cause is fixed, "
                "retry it on the status page or with `photo-relay retry`.",
                sha256=sha256,
                destination=destination,
            )

        self.db.call(mark)

    def mark_damaged(
        self, sha256: str, problem: str, *, destination: int = DEFAULT_DESTINATION
    ) -> None:
        """The relay found the home copy missing or damaged: stop until it is sent again.

        Every delivery of it not yet verified waits too: the same copy would go there."""

        def mark(conn: sqlite3.Connection) -> None:
            changed = _update_delivery(
                conn,
                sha256,
                destination,
                "state = ?, last_error = ?, next_attempt_at = NULL",
                (ItemState.DAMAGED, problem),
                only_state=ItemState.RELAYING,
            )
            if changed:
                conn.execute(
                    "UPDATE deliveries SET state = ?, last_error = ?, next_attempt_at = NULL "
                    "WHERE sha256 = ? AND state IN (?, ?)",
                    (ItemState.DAMAGED, problem, sha256, *CLAIMABLE),
                )
                refresh_item(conn, sha256)
                row = conn.execute(
                    "SELECT original_name, captured_local FROM items WHERE sha256 = ?", (sha256,)
                ).fetchone()
                taken = datetime.fromisoformat(row["captured_local"]).strftime("%-d %b %Y, %H:%M")
                write_journal(
                    conn,
                    "relay.home_copy_damaged",
                    f"{problem} It was not copied, so that no damaged file reaches the "
                    f"destination. Send {row['original_name']} (taken {taken}) again from "
                    "the phone or any device that has it: the same file replaces the damaged "
                    "copy and is then copied by itself.",
                    sha256=sha256,
                )

        self.db.call(mark)

    def mark_repaired(self, sha256: str, problem: str) -> Receipt | None:
        """The same content arrived again and replaced a damaged home copy; its receipt.

        A damaged item goes back to the queue with a fresh attempt count; any other keeps
        its state (its copy was only found missing or short at upload time).
        """

        def mark(conn: sqlite3.Connection) -> Receipt | None:
            conn.execute(
                "UPDATE deliveries SET state = ?, attempts = 0, last_error = NULL, "
                "next_attempt_at = ? WHERE sha256 = ? AND state = ?",
                (ItemState.RECEIVED, iso(now()), sha256, ItemState.DAMAGED),
            )
            refresh_item(conn, sha256)
            write_journal(
                conn,
                "item.repaired",
                f"{problem} The file sent again has the same content, so it replaced that "
                "copy; it will be copied to the destination as usual.",
                sha256=sha256,
            )
            return _one_receipt(conn, sha256)

        return self.db.call(mark)

    def make_waiting_due(self, *, destination: int = DEFAULT_DESTINATION) -> int:
        """Every delivery to `destination` waiting for a retry is due now (it answers again)."""

        def due(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE destination_id = ? "
                "AND state = ? AND next_attempt_at > ? RETURNING sha256",
                (iso(now()), destination, ItemState.RETRY, iso(now())),
            ).fetchall()
            for row in rows:
                refresh_item(conn, row["sha256"])
            return len(rows)

        return self.db.call(due)

    def release_unrecorded(
        self, sha256: str, reason: str, *, destination: int = DEFAULT_DESTINATION
    ) -> bool:
        """A copy whose outcome could not be recorded (database disk full, locked) goes
        back to the queue; the next attempt finds its content already there. False if the
        item is no longer `relaying`."""

        def put_back(conn: sqlite3.Connection) -> bool:
            changed = _update_delivery(
                conn,
                sha256,
                destination,
                "state = ?, last_error = ?, next_attempt_at = ?",
                (ItemState.RETRY, reason, iso(now())),
                only_state=ItemState.RELAYING,
            )
            if changed:
                write_journal(
                    conn,
                    "relay.retry_scheduled",
                    reason,
                    sha256=sha256,
                    destination=destination,
                )
            return bool(changed)

        return self.db.call(put_back)

    def release(self, sha256: str, reason: str, *, destination: int = DEFAULT_DESTINATION) -> None:
        """Put a claimed item back without counting the attempt (the relay paused)."""

        def put_back(conn: sqlite3.Connection) -> None:
            _update_delivery(
                conn,
                sha256,
                destination,
                "state = ?, attempts = MAX(attempts - 1, 0), last_error = ?",
                (ItemState.RECEIVED, reason),
                only_state=ItemState.RELAYING,
            )

        self.db.call(put_back)

    def requeue_failed(self, sha256: str | None = None) -> int:
        """Put failed items (or one item) back in the queue with a fresh attempt count."""

        def requeue(conn: sqlite3.Connection) -> int:
            where = "state = ?"
            args: list[str] = [ItemState.FAILED]
            if sha256 is not None:
                where += " AND sha256 = ?"
                args.append(sha256)
            rows = conn.execute(
                f"SELECT DISTINCT sha256 FROM deliveries WHERE {where}", args
            ).fetchall()
            for row in rows:
                write_journal(
                    conn, "relay.requeued", "Put back in the queue by hand.", sha256=row["sha256"]
                )
                # A chunked upload of it is not trusted any more: the next attempt deletes
                # it on the server and starts clean (store/chunk_progress.py).
                conn.execute(
                    "UPDATE chunked_uploads SET chunks_done = -1 WHERE sha256 = ?",
                    (row["sha256"],),
                )
            conn.execute(
                "UPDATE deliveries SET state = ?, attempts = 0, problems = 0, "
                f"next_attempt_at = ? WHERE {where}",
                [ItemState.RECEIVED, iso(now()), *args],
            )
            # Retry by hand also means "try now, from a clean start" for the ones waiting
            # for their next slot: a person asking again should not meet the same half-done
            # upload that may be what keeps failing.
            waiting = "state = ? AND sha256 = ?" if sha256 is not None else "state = ?"
            waiting_args = [ItemState.RETRY, *([sha256] if sha256 is not None else [])]
            conn.execute(
                "UPDATE chunked_uploads SET chunks_done = -1 WHERE sha256 IN "
                f"(SELECT sha256 FROM deliveries WHERE {waiting})",
                waiting_args,
            )
            waited = conn.execute(
                f"UPDATE deliveries SET next_attempt_at = ? WHERE {waiting} RETURNING sha256",
                [iso(now()), *waiting_args],
            ).fetchall()
            for sha in {row["sha256"] for row in [*rows, *waited]}:
                refresh_item(conn, sha)
            return len(rows)

        return self.db.call(requeue)

    # -- reading for people --------------------------------------------------------------

    def journal_for(self, sha256: str) -> list[JournalEntry]:
        def read(conn: sqlite3.Connection) -> list[JournalEntry]:
            rows = conn.execute(
                "SELECT * FROM journal WHERE sha256 = ? ORDER BY id", (sha256,)
            ).fetchall()
            return [
                JournalEntry(at=r["at"], sha256=r["sha256"], event=r["event"], message=r["message"])
                for r in rows
            ]

        return self.db.call(read)

    def summary(self) -> dict[str, Any]:
        """Counts per state, spool use, the oldest pending item and the last error."""

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            counts = dict.fromkeys(STATES, 0)
            for row in conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
                counts[row[0]] = row[1]
            spool = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items WHERE spool_removed_at IS NULL"
            ).fetchone()
            oldest = conn.execute(
                _RECEIPT_SQL + " WHERE items.state != ? ORDER BY items.received_at LIMIT 1",
                (ItemState.VERIFIED,),
            ).fetchone()
            error = conn.execute(
                "SELECT * FROM journal WHERE event IN ('relay.retry_scheduled', 'relay.problem',"
                " 'relay.failed', 'relay.paused') ORDER BY id DESC LIMIT 1"
            ).fetchone()
            return {
                "counts": counts,
                "total_items": sum(counts.values()),
                "spool_files": spool[0],
                "spool_bytes": spool[1],
                "oldest_pending": _receipt(oldest) if oldest else None,
                "last_error": JournalEntry(
                    at=error["at"],
                    sha256=error["sha256"],
                    event=error["event"],
                    message=error["message"],
                )
                if error
                else None,
            }

        return self.db.call(read)

    # -- spool retention and relay control (NextCloud relay) ------------------------------

    def spool_removable(self, verified_before: datetime, limit: int = 500) -> list[str]:
        """Verified items whose spool copy is older than the retention period allows."""

        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT sha256 FROM items WHERE state = ? AND spool_removed_at IS NULL "
                "AND verified_at <= ? ORDER BY verified_at LIMIT ?",
                (ItemState.VERIFIED, iso(verified_before), limit),
            ).fetchall()
            return [r["sha256"] for r in rows]

        return self.db.call(read)

    def mark_spool_removed(self, sha256: str, message: str) -> bool:
        """Record that the home copy is gone; only ever for a verified item."""

        def mark(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE items SET spool_removed_at = ? WHERE sha256 = ? AND state = ? "
                "AND spool_removed_at IS NULL",
                (iso(now()), sha256, ItemState.VERIFIED),
            )
            if cursor.rowcount:
                write_journal(conn, "spool.removed", message, sha256=sha256)
            return cursor.rowcount == 1

        return self.db.call(mark)

    def spool_removed_at(self, sha256: str) -> str | None:
        """When retention removed this item's home copy; None while it is kept."""

        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT spool_removed_at FROM items WHERE sha256 = ?", (sha256,)
            ).fetchone()
            return row["spool_removed_at"] if row is not None else None

        return self.db.call(read)

    def journal(self, event: str, message: str, *, sha256: str | None = None) -> int:
        """An entry on its own, about one item or (no `sha256`) the relay as a whole; its id.

        For decisions that change no row (a name taken, the relay paused, a resume asked
        for); a state change journals inside its own transaction instead.
        """
        return self.db.call(lambda conn: write_journal(conn, event, message, sha256=sha256))

    def open_outage(self, *, destination: int = DEFAULT_DESTINATION) -> str | None:
        """When the destination stopped answering, if no entry says it is back since."""
        return self.db.call(lambda conn: read_open_outage(conn, destination))

    def last_event_id(self, event: str) -> int:
        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT MAX(id) FROM journal WHERE event = ?", (event,)).fetchone()
            return int(row[0] or 0)

        return self.db.call(read)

    # -- the async face: the methods above that code on the event loop calls, each run --
    # -- in a worker thread in one hop (app.off_loop); same arguments, same result ------

    async def adevice_for_token_hash(self, token_hash: str) -> Device | None:
        return await off_loop(self.device_for_token_hash, token_hash)

    async def acheck_token_hash(self, token_hash: str) -> TokenCheck | None:
        return await off_loop(self.check_token_hash, token_hash)

    async def alist_devices(self) -> list[DeviceInfo]:
        return await off_loop(self.list_devices)

    async def aget_item(self, sha256: str, *, person: int | None = None) -> Receipt | None:
        return await off_loop(self.get_item, sha256, person=person)

    async def acheck(self, hashes: list[str], *, person: int | None = None) -> dict[str, ItemState]:
        return await off_loop(self.check, hashes, person=person)

    async def arelease_interrupted(self) -> int:
        return await off_loop(self.release_interrupted)

    async def aclaim_due(
        self,
        limit: int,
        skip: set[str],
        busy_paths: set[str],
        *,
        destination: int = DEFAULT_DESTINATION,
    ) -> list[tuple[Receipt, str]]:
        return await off_loop(
            lambda: self.claim_due(limit, skip, busy_paths, destination=destination)
        )

    async def anext_due_at(self, *, destination: int = DEFAULT_DESTINATION) -> datetime | None:
        return await off_loop(lambda: self.next_due_at(destination=destination))

    async def amark_verified(
        self,
        sha256: str,
        remote_path: str,
        verified_by: str,
        message: str,
        *,
        etag: str | None = None,
        file_id: str | None = None,
        destination: int = DEFAULT_DESTINATION,
    ) -> None:
        await off_loop(
            lambda: self.mark_verified(
                sha256,
                remote_path,
                verified_by,
                message,
                etag=etag,
                file_id=file_id,
                destination=destination,
            )
        )

    async def amark_retry(
        self,
        sha256: str,
        error: str,
        at: datetime,
        *,
        counted: bool = False,
        destination: int = DEFAULT_DESTINATION,
    ) -> None:
        await off_loop(
            lambda: self.mark_retry(sha256, error, at, counted=counted, destination=destination)
        )

    async def acount_problems(self, sha256: str, *, destination: int = DEFAULT_DESTINATION) -> int:
        return await off_loop(lambda: self.count_problems(sha256, destination=destination))

    async def amake_waiting_due(self, *, destination: int = DEFAULT_DESTINATION) -> int:
        return await off_loop(lambda: self.make_waiting_due(destination=destination))

    async def arelease_unrecorded(
        self, sha256: str, reason: str, *, destination: int = DEFAULT_DESTINATION
    ) -> bool:
        return await off_loop(
            lambda: self.release_unrecorded(sha256, reason, destination=destination)
        )

    async def amark_failed(
        self, sha256: str, error: str, *, destination: int = DEFAULT_DESTINATION
    ) -> None:
        await off_loop(lambda: self.mark_failed(sha256, error, destination=destination))

    async def amark_damaged(
        self, sha256: str, problem: str, *, destination: int = DEFAULT_DESTINATION
    ) -> None:
        await off_loop(lambda: self.mark_damaged(sha256, problem, destination=destination))

    async def arelease(
        self, sha256: str, reason: str, *, destination: int = DEFAULT_DESTINATION
    ) -> None:
        await off_loop(lambda: self.release(sha256, reason, destination=destination))

    async def arequeue_failed(self, sha256: str | None = None) -> int:
        return await off_loop(self.requeue_failed, sha256)

    async def ajournal_for(self, sha256: str) -> list[JournalEntry]:
        return await off_loop(self.journal_for, sha256)

    async def asummary(self) -> dict[str, Any]:
        return await off_loop(self.summary)

    async def ajournal(self, event: str, message: str, *, sha256: str | None = None) -> int:
        return await off_loop(self.journal, event, message, sha256=sha256)

    async def aopen_outage(self, *, destination: int = DEFAULT_DESTINATION) -> str | None:
        return await off_loop(lambda: self.open_outage(destination=destination))

    async def alast_event_id(self, event: str) -> int:
        return await off_loop(self.last_event_id, event)


# -- reads on a bare connection, shared by State and `photo-relay doctor` ---------------


def read_devices(conn: sqlite3.Connection) -> list[DeviceInfo]:
    """Every device, revoked ones too, by name."""
    rows = conn.execute("SELECT * FROM devices ORDER BY name, id").fetchall()
    return [
        DeviceInfo(
            name=r["name"],
            created_at=r["created_at"],
            last_seen_at=r["last_seen_at"],
            revoked=r["revoked_at"] is not None,
        )
        for r in rows
    ]


def read_newest_record_at(conn: sqlite3.Connection) -> str | None:
    """The latest moment the service wrote down (journal, receipts, device contact)."""
    row = conn.execute(
        "SELECT MAX(at) FROM (SELECT MAX(at) AS at FROM journal"
        " UNION ALL SELECT MAX(received_at) FROM items"
        " UNION ALL SELECT MAX(last_seen_at) FROM devices)"
    ).fetchone()
    return str(row[0]) if row and row[0] else None


def outage_events(destination: int) -> tuple[str, str]:
    """The journal events that open and close an outage of `destination`: the configured
    one's keep their names (the headline reads them); an added one's carry its number."""
    if destination == DEFAULT_DESTINATION:
        return DESTINATION_DOWN, DESTINATION_BACK
    return f"relay.destination_{destination}_down", f"relay.destination_{destination}_back"


def read_open_outage(
    conn: sqlite3.Connection, destination: int = DEFAULT_DESTINATION
) -> str | None:
    """The `at` of the last "down" entry of `destination`, unless a "back" followed."""
    down, back = outage_events(destination)
    row = conn.execute(
        "SELECT event, at FROM journal WHERE event IN (?, ?) ORDER BY id DESC LIMIT 1",
        (down, back),
    ).fetchone()
    return row["at"] if row is not None and row["event"] == down else None
