"""Read-only queries for people: the status page, `photo-relay status`, metrics, the live feed.

`snapshot()` answers "is everything safe?" in one transaction: counts per state, each
device's last backup, the queue, failed items, the newest items, and a one-line verdict.
`journal_since()` is what the live feed tails. Nothing here writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

from app.clock import iso, now, spoken
from app.off_loop import off_loop
from app.receipts import PENDING_STATES, ItemState, Receipt
from app.store.db import Database
from app.store.state import _RECEIPT_SQL, STATES, _receipt, read_open_outage

__all__ = [
    "DeviceLine",
    "FeedEntry",
    "Overview",
    "PersonLine",
    "Snapshot",
    "Verdict",
    "read_people",
]


@dataclass(frozen=True)
class DeviceLine:
    """One device as the owner sees it: when it last sent something."""

    name: str
    revoked: bool
    last_seen_at: str | None
    last_backup_at: str | None
    items: int
    quiet: bool  # active, and nothing from it for longer than the warning allows


@dataclass(frozen=True)
class PersonLine:
    """One person: their deliveries per state, their destinations, each device's last backup."""

    name: str
    counts: dict[ItemState, int]
    destinations: list[int]
    last_backup: dict[str, str | None]  # active device -> when it last sent a file

    @property
    def pending(self) -> int:
        return sum(self.counts[s] for s in PENDING_STATES)


@dataclass(frozen=True)
class FeedEntry:
    """A journal row with the item it is about, as the live feed sends it."""

    id: int
    at: str
    sha256: str | None
    event: str
    message: str
    item: dict[str, Any] | None
    destination: int | None = None  # the delivery it is about, if it is about one

    def as_event(self) -> dict[str, Any]:
        return {
            "type": "journal",
            "id": self.id,
            "at": self.at,
            "sha256": self.sha256,
            "event": self.event,
            "message": self.message,
            "item": self.item,
            "destination": self.destination,
        }


Level = Literal["safe", "busy", "attention"]


@dataclass(frozen=True)
class Verdict:
    level: Level
    headline: str


@dataclass
class Snapshot:
    """Everything the status page and `photo-relay status` show."""

    counts: dict[ItemState, int]
    total: int
    devices: list[DeviceLine]
    queue: list[Receipt]
    failed: list[Receipt]
    recent: list[Receipt]
    quiet_days: int
    damaged: list[Receipt] = field(default_factory=list)  # each waits for its file again
    down_since: str | None = None  # the destination has not answered since (journal)
    journal_id: int = 0  # the newest journal row this snapshot includes (live feed resumes)
    taken_at: str = field(default_factory=lambda: iso(now()))
    people: list[PersonLine] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return sum(self.counts[s] for s in PENDING_STATES)

    def verdict(
        self,
        relay_problem: str | None = None,
        *,
        destination: str = "The destination",
        zone: tzinfo | None = None,
    ) -> Verdict:
        """The headline: what needs a person first, then what only takes time.

        `destination` names it as a person knows it ("NextCloud"); `zone` is the owner's.
        """
        failed, pending = self.counts[ItemState.FAILED], self.pending
        quiet = [d.name for d in self.devices if d.quiet]
        if damaged := self.counts[ItemState.DAMAGED]:
            return Verdict(
                "attention",
                f"{damaged} file(s) must be sent again: the copy kept on this machine is "
                "damaged. The list below says which; send them again from the phone.",
            )
        if failed:
            return Verdict(
                "attention",
                f"{failed} file(s) could not be copied to the destination. They are safe on "
                "this machine; see why below, then retry.",
            )
        if relay_problem:
            return Verdict(
                "attention",
                f"Copying is paused: {relay_problem} Files keep arriving safely meanwhile.",
            )
        if self.down_since and pending:
            since = spoken(self.down_since, zone).removeprefix("today ")
            files = "photo is" if pending == 1 else "photos are"
            return Verdict(
                "busy",
                f"{destination} has not answered since {since}; {pending} {files} safe here "
                "and wait.",
            )
        if quiet:
            return Verdict(
                "attention",
                f"No backup from {', '.join(quiet)} for more than {self.quiet_days} days.",
            )
        if pending:
            return Verdict(
                "busy",
                f"{pending} file(s) are safe on this machine and being copied to the destination.",
            )
        if self.total == 0:
            return Verdict("safe", "Nothing received yet. Send a photo from your phone.")
        if self.total == 1:
            return Verdict("safe", "Everything is safe: the file is a verified copy.")
        return Verdict("safe", f"Everything is safe: all {self.total} files are verified copies.")


def _item_brief(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "sha256": row["sha256"],
        "state": row["state"],
        "size": row["size"],
        "kind": row["kind"],
        "original_name": row["original_name"],
        "planned_path": row["planned_path"],
        "remote_path": row["remote_path"],
        "received_at": row["received_at"],
        "verified_at": row["verified_at"],
        "last_error": row["last_error"],
        "device": row["device_name"],
    }


def _counts(conn: sqlite3.Connection) -> dict[ItemState, int]:
    counts: dict[ItemState, int] = dict.fromkeys(STATES, 0)
    for row in conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
        counts[row[0]] = row[1]
    return counts


def _last_journal_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT MAX(id) FROM journal").fetchone()[0] or 0)


def _receipts(
    conn: sqlite3.Connection, where: str, order: str, limit: int, *args: object
) -> list[Receipt]:
    """Receipts matching `where` (its `?`s filled from `args`), in `order`, at most `limit`."""
    rows = conn.execute(f"{_RECEIPT_SQL} WHERE {where} ORDER BY {order} LIMIT ?", (*args, limit))
    return [_receipt(row) for row in rows]


def _devices(conn: sqlite3.Connection, quiet_after: datetime) -> list[DeviceLine]:
    rows = conn.execute(
        """SELECT devices.name, devices.revoked_at, devices.last_seen_at, devices.created_at,
                  MAX(items.received_at) AS last_backup_at, COUNT(items.sha256) AS items
           FROM devices LEFT JOIN items ON items.device_id = devices.id
           GROUP BY devices.id ORDER BY devices.name"""
    ).fetchall()
    cutoff = iso(quiet_after)
    lines = []
    for row in rows:
        # A device added today has not had the chance to be quiet yet.
        last = row["last_backup_at"] or row["last_seen_at"] or row["created_at"]
        lines.append(
            DeviceLine(
                name=row["name"],
                revoked=row["revoked_at"] is not None,
                last_seen_at=row["last_seen_at"],
                last_backup_at=row["last_backup_at"],
                items=row["items"],
                quiet=row["revoked_at"] is None and last < cutoff,
            )
        )
    return lines


def read_people(conn: sqlite3.Connection) -> list[PersonLine]:
    """Every person with the counts of their destinations' deliveries per state, their
    destinations, and each of their active devices' last backup (as a sender, so a file
    another person sent first still counts for this person's phone)."""
    people: dict[int, PersonLine] = {
        r["id"]: PersonLine(r["name"], dict.fromkeys(STATES, 0), [], {})
        for r in conn.execute("SELECT id, name FROM people ORDER BY id")
    }
    for row in conn.execute(
        "SELECT destinations.person_id, destinations.id, deliveries.state, COUNT(deliveries.sha256)"
        " FROM destinations LEFT JOIN deliveries ON deliveries.destination_id = destinations.id"
        " GROUP BY destinations.id, deliveries.state ORDER BY destinations.id"
    ):
        person = people[row[0]]
        if row[1] not in person.destinations:
            person.destinations.append(row[1])
        if row[2] is not None:
            person.counts[ItemState(row[2])] += row[3]
    for row in conn.execute(
        "SELECT devices.person_id, devices.name, MAX(item_senders.first_at) FROM devices"
        " LEFT JOIN item_senders ON item_senders.device_id = devices.id"
        " WHERE devices.revoked_at IS NULL GROUP BY devices.id ORDER BY devices.name"
    ):
        people[row[0]].last_backup[row[1]] = row[2]
    return list(people.values())


class Overview:
    """Read-only views of the records, on top of one `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def counts(self) -> dict[ItemState, int]:
        return self.db.call(_counts)

    def snapshot(self, *, quiet_days: int, recent: int = 12, listed: int = 50) -> Snapshot:
        def read(conn: sqlite3.Connection) -> Snapshot:
            counts = _counts(conn)
            return Snapshot(
                counts=counts,
                total=sum(counts.values()),
                devices=_devices(conn, now() - timedelta(days=quiet_days)),
                # The ones being copied first, then in the order they will be.
                queue=_receipts(
                    conn,
                    "items.state IN (?, ?, ?)",
                    "items.state = ? DESC, items.next_attempt_at, items.received_at",
                    listed,
                    *PENDING_STATES,
                    ItemState.RELAYING,
                ),
                failed=_receipts(
                    conn, "items.state = ?", "items.received_at DESC", listed, ItemState.FAILED
                ),
                recent=_receipts(conn, "1 = 1", "items.received_at DESC", recent),
                quiet_days=quiet_days,
                damaged=_receipts(
                    conn, "items.state = ?", "items.received_at DESC", listed, ItemState.DAMAGED
                ),
                down_since=read_open_outage(conn),
                journal_id=_last_journal_id(conn),
                people=read_people(conn),
            )

        return self.db.call(read)

    def last_journal_id(self) -> int:
        return self.db.call(_last_journal_id)

    def journal_since(self, after_id: int, limit: int = 500) -> list[FeedEntry]:
        """Journal rows newer than `after_id`, oldest first, each with its item's state."""

        def read(conn: sqlite3.Connection) -> list[FeedEntry]:
            rows = conn.execute(
                "SELECT journal.id AS journal_id, journal.at, journal.sha256 AS journal_sha256,"
                " journal.event, journal.message, journal.destination_id AS journal_destination,"
                " items.*, devices.name AS device_name"
                " FROM journal LEFT JOIN items ON items.sha256 = journal.sha256"
                " LEFT JOIN devices ON devices.id = items.device_id"
                " WHERE journal.id > ? ORDER BY journal.id LIMIT ?",
                (after_id, limit),
            ).fetchall()
            return [
                FeedEntry(
                    id=row["journal_id"],
                    at=row["at"],
                    sha256=row["journal_sha256"],
                    event=row["event"],
                    message=row["message"],
                    item=_item_brief(row) if row["sha256"] else None,
                    destination=row["journal_destination"],
                )
                for row in rows
            ]

        return self.db.call(read)

    # -- the async face, for the event loop: each method above in one hop (app.off_loop) --

    async def acounts(self) -> dict[ItemState, int]:
        return await off_loop(self.counts)

    async def asnapshot(self, *, quiet_days: int, recent: int = 12, listed: int = 50) -> Snapshot:
        return await off_loop(self.snapshot, quiet_days=quiet_days, recent=recent, listed=listed)

    async def alast_journal_id(self) -> int:
        return await off_loop(self.last_journal_id)

    async def ajournal_since(self, after_id: int, limit: int = 500) -> list[FeedEntry]:
        return await off_loop(self.journal_since, after_id, limit)
