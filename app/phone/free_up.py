"""The "Free up space" conversation: which photos of the album may leave the phone.

Run by hand only. For each photo of the album the phone first says what it is (name, Date
Taken, Photo Type, favourite); photos that must stay (Live Photos: only the still is
backed up; edited photos: only the render; favourites unless allowed; recent ones) are
kept without being read. The others are hashed on the phone, and only a photo whose hash
is exactly what this phone's backup recorded, whose every delivery is verified, and whose
copy the destination still holds now (a fresh check, made by the caller through
`relay.recheck`) is offered. Every decision is journalled per photo; the run ends with one
sentence. All SQL of these tables lives here (the phone's own tables, like `backup`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from app.clock import iso, now
from app.errors import Conflict, NotFound
from app.phone.rules import EDIT_NOTES, Candidate, candidate_key, parse_moment
from app.store.db import Database
from app.store.journal import write_journal
from app.store.state import Device

__all__ = [
    "KEEP_WORDS",
    "FreeUpRuns",
    "FreeUpSettings",
    "PhotoFacts",
    "free_up_message",
    "keep_reason",
    "readable_size",
]

Verdict = Literal["delete", "keep", "check"]

# Why a photo stays on the phone: (one, many) as the closing sentence counts them.
KEEP_WORDS: dict[str, tuple[str, str]] = {
    "live": ("Live Photo", "Live Photos"),
    "edited": ("edited", "edited"),
    "favourite": ("favourite", "favourites"),
    "unverified": ("not yet verified", "not yet verified"),
    "missing": ("missing at the destination", "missing at the destination"),
}
# Kept, and said in the journal, but not counted: they were never candidates.
NOT_COUNTED = {"recent"}


@dataclass(frozen=True)
class FreeUpSettings:
    album: str
    days: int
    favourites: bool


@dataclass(frozen=True)
class PhotoFacts:
    """What the phone says about one photo of the album."""

    name: str | None
    taken: str | None
    modified: str | None
    size: int | None
    kind: str | None
    favourite: bool


def keep_reason(facts: PhotoFacts, notes: str | None, settings: FreeUpSettings) -> str | None:
    """Why this photo stays without being read, or None: hash it and ask."""
    taken = parse_moment(facts.taken)
    if taken is None:
        return "unverified"
    if facts.kind and "live photo" in facts.kind.casefold():
        return "live"
    if set((notes or "").split(",")) & EDIT_NOTES:
        return "edited"
    if facts.favourite and not settings.favourites:
        return "favourite"
    if taken > now() - timedelta(days=settings.days):
        return "recent"
    return None


def readable_size(byte_count: int) -> str:
    """Sizes as iOS writes them (decimal units): '512 KB', '2.1 MB', '3.2 GB'."""
    if byte_count < 1000:
        return f"{byte_count} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12)):
        if byte_count < scale * 1000 or unit == "TB":
            value = byte_count / scale
            return f"{value:.0f} {unit}" if unit == "KB" else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _kept_words(kept: dict[str, int]) -> str:
    order = list(KEEP_WORDS)  # most first; a tie in the order KEEP_WORDS lists them
    parts = sorted(((n, r) for r, n in kept.items() if n), key=lambda p: (-p[0], order.index(p[1])))
    return ", ".join(f"{n} {KEEP_WORDS[r][0 if n == 1 else 1]}" for n, r in parts)


def free_up_message(
    freed: int, removed: int, kept: dict[str, int], settings: FreeUpSettings
) -> str:
    """The run in one sentence: "Freed 3.2 GB: 412 photos removed from the phone, kept 37
    (21 Live Photos, 16 not yet verified)." """
    kept = {r: n for r, n in kept.items() if r not in NOT_COUNTED and n}
    total_kept = sum(kept.values())
    photos = "photo" if removed == 1 else "photos"
    keeping = f"kept {total_kept} ({_kept_words(kept)})" if total_kept else ""
    if removed:
        tail = f", {keeping}." if keeping else "."
        return f"Freed {readable_size(freed)}: {removed} {photos} removed from the phone{tail}"
    if keeping:
        return f"Nothing removed from the phone: {keeping}."
    return (
        f"Nothing to free up: no photo in the album “{settings.album}” was taken more than "
        f"{settings.days} days ago."
    )


class FreeUpRuns:
    """Free-up runs and the decision on each photo, on top of one `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, device: Device) -> int:
        """Open a run; a run this device left open removed nothing (iOS asks first)."""

        def start(conn: sqlite3.Connection) -> int:
            for row in conn.execute(
                "SELECT id FROM free_up_runs WHERE device_id = ? AND state = 'running'",
                (device.id,),
            ).fetchall():
                conn.execute(
                    "UPDATE free_up_runs SET state = 'left', finished_at = ? WHERE id = ?",
                    (iso(now()), row["id"]),
                )
                write_journal(
                    conn,
                    "free_up.run_left",
                    f"Free up space run {row['id']} from {device.name} did not finish (the "
                    "deletion was cancelled, or iOS stopped the shortcut): nothing is counted "
                    "as removed.",
                )
            cursor = conn.execute(
                "INSERT INTO free_up_runs (device_id, started_at, state) VALUES (?, ?, 'running')",
                (device.id, iso(now())),
            )
            return int(cursor.lastrowid or 0)

        return self.db.call(start)

    def _open_run(self, conn: sqlite3.Connection, device: Device, run_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM free_up_runs WHERE id = ? AND device_id = ?", (run_id, device.id)
        ).fetchone()
        if row is None:
            raise NotFound(
                f"There is no free-up run {run_id} for this device; start one with "
                "POST /v1/free-up/runs.",
                code="unknown_run",
            )
        if row["state"] != "running":
            raise Conflict(
                f"Free-up run {run_id} has already ended; start a new one.", code="run_over"
            )
        return row

    @staticmethod
    def _notes(conn: sqlite3.Connection, device: Device, facts: PhotoFacts) -> sqlite3.Row | None:
        key = candidate_key(Candidate(facts.name, facts.taken, facts.modified, facts.size))
        if key is None:
            return None
        row: sqlite3.Row | None = conn.execute(
            "SELECT sha256, not_captured FROM backup_photos "
            "WHERE device_id = ? AND name = ? AND taken = ?",
            (device.id, *key),
        ).fetchone()
        return row

    def look(
        self,
        device: Device,
        run_id: int,
        position: int,
        facts: PhotoFacts,
        settings: FreeUpSettings,
    ) -> bool:
        """The phone described photo `position`: True means "hash it and ask again"."""

        def look(conn: sqlite3.Connection) -> bool:
            self._open_run(conn, device, run_id)
            known = self._notes(conn, device, facts)
            reason = keep_reason(facts, None if known is None else known["not_captured"], settings)
            conn.execute(
                "INSERT INTO free_up_items (run_id, position, name, taken, size, decision, "
                "reason) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                "name = excluded.name, taken = excluded.taken, size = excluded.size, "
                "decision = excluded.decision, reason = excluded.reason, sha256 = NULL",
                (
                    run_id,
                    position,
                    facts.name,
                    facts.taken,
                    facts.size,
                    "check" if reason is None else "keep",
                    reason or "",
                ),
            )
            if reason is not None:
                _journal_keep(conn, device, facts.name, None, reason, _LOOK_WORDS[reason])
            return reason is None

        return self.db.call(look)

    def recorded_hash(self, device: Device, run_id: int, position: int, sha256: str) -> bool:
        """The phone hashed photo `position`: True if these are the very bytes this phone's
        backup recorded for it (else it is kept: changed since, or never backed up)."""

        def check(conn: sqlite3.Connection) -> bool:
            self._open_run(conn, device, run_id)
            item = self._item(conn, run_id, position)
            if item["decision"] != "check":
                raise Conflict(
                    f"Photo {position} of this run is not waiting for its hash.",
                    code="not_waiting_for_hash",
                )
            facts = PhotoFacts(item["name"], item["taken"], None, item["size"], None, False)
            known = self._notes(conn, device, facts)
            conn.execute(
                "UPDATE free_up_items SET sha256 = ? WHERE run_id = ? AND position = ?",
                (sha256, run_id, position),
            )
            return known is not None and known["sha256"] == sha256

        return self.db.call(check)

    @staticmethod
    def _item(conn: sqlite3.Connection, run_id: int, position: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM free_up_items WHERE run_id = ? AND position = ?", (run_id, position)
        ).fetchone()
        if row is None:
            raise NotFound(
                f"Photo {position} of this run was not described yet.", code="unknown_position"
            )
        return row

    def decide(
        self, device: Device, run_id: int, position: int, reason: str | None, why: str
    ) -> bool:
        """Record the answer for a hashed photo: offered (reason None) or kept."""

        def decide(conn: sqlite3.Connection) -> bool:
            self._open_run(conn, device, run_id)
            item = self._item(conn, run_id, position)
            conn.execute(
                "UPDATE free_up_items SET decision = ?, reason = ? WHERE run_id = ? "
                "AND position = ?",
                ("delete" if reason is None else "keep", reason or "", run_id, position),
            )
            if reason is None:
                write_journal(
                    conn,
                    "free_up.offered",
                    f"{item['name']} from {device.name}: offered for deletion from the phone "
                    f"({why}).",
                    sha256=item["sha256"],
                )
            else:
                _journal_keep(conn, device, item["name"], item["sha256"], reason, why)
            return reason is None

        return self.db.call(decide)

    def review(self, device: Device, run_id: int) -> int:
        """How many photos this run offers for deletion."""

        def review(conn: sqlite3.Connection) -> int:
            self._open_run(conn, device, run_id)
            row = conn.execute(
                "SELECT COUNT(*) AS n FROM free_up_items WHERE run_id = ? AND decision = 'delete'",
                (run_id,),
            ).fetchone()
            return int(row["n"])

        return self.db.call(review)

    def finish(self, device: Device, run_id: int, settings: FreeUpSettings) -> str:
        """The phone deleted what was offered (iOS asked first); the sentence to show."""

        def finish(conn: sqlite3.Connection) -> str:
            self._open_run(conn, device, run_id)
            rows = conn.execute(
                "SELECT * FROM free_up_items WHERE run_id = ? ORDER BY position", (run_id,)
            ).fetchall()
            removed = [r for r in rows if r["decision"] == "delete"]
            kept: dict[str, int] = {}
            for row in rows:
                if row["decision"] == "keep":
                    kept[row["reason"]] = kept.get(row["reason"], 0) + 1
                elif row["decision"] == "check":  # the phone never sent its hash
                    kept["unverified"] = kept.get("unverified", 0) + 1
            for row in removed:
                write_journal(
                    conn,
                    "free_up.removed",
                    f"{row['name']} was removed from {device.name} (in Recently Deleted for "
                    "30 days); its verified copy is at the destination.",
                    sha256=row["sha256"],
                )
            freed = sum(int(r["size"] or 0) for r in removed)
            message = free_up_message(freed, len(removed), kept, settings)
            conn.execute(
                "UPDATE free_up_runs SET state = 'finished', finished_at = ?, message = ? "
                "WHERE id = ?",
                (iso(now()), message, run_id),
            )
            write_journal(
                conn, "free_up.run_finished", f"Free up space on {device.name}: {message}"
            )
            return message

        return self.db.call(finish)

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT free_up_runs.*, devices.name AS device FROM free_up_runs JOIN devices "
                "ON devices.id = device_id ORDER BY free_up_runs.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [dict(row) for row in rows]

        return self.db.call(read)


_LOOK_WORDS = {
    "live": "a Live Photo: only its still is backed up, the video would be lost",
    "edited": "edited on the phone: only the edited version is backed up",
    "favourite": "a favourite (favourites stay unless PHOTO_RELAY_SHORTCUT_FREE_UP_FAVOURITES)",
    "recent": "taken too recently",
    "unverified": "its Date Taken is unreadable, so it cannot be matched to its backup",
}


def _journal_keep(
    conn: sqlite3.Connection,
    device: Device,
    name: str | None,
    sha256: str | None,
    reason: str,
    why: str,
) -> None:
    write_journal(
        conn,
        "free_up.kept",
        f"{name or 'A photo'} stays on {device.name}: {why}.",
        sha256=sha256,
    )
