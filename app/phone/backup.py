"""The backup shortcut's conversation: runs, where each device is in its library, and hints.

A run walks the phone's library by capture date in pages the service hands out: first the
"new" walk (from where the last run stopped, minus an overlap window), then, when due, a
"sweep" over the whole library that carries on across runs. Candidates are matched on
(name, capture second, size as the phone reports it) against what this device sent
before; a match is only a hint that spares the bytes, the SHA-256 stays the identity.
All SQL of these tables lives here; each public method is one transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from app.clock import iso, now
from app.errors import Conflict, NotFound
from app.phone.rules import (
    EPOCH,
    Candidate,
    Decision,
    as_utc,
    candidate_key,
    later,
    next_window,
    parse_moment,
    run_message,
)
from app.store.db import Database
from app.store.state import Device

__all__ = ["BackupRuns", "PageDecision", "Plan", "RunRecord"]

RunKind = Literal["backup", "share"]


@dataclass(frozen=True)
class Plan:
    run_id: int
    after: str
    phase: str
    full_walk: bool


@dataclass(frozen=True)
class PageDecision:
    decisions: list[Decision]
    next_after: str | None


@dataclass(frozen=True)
class RunRecord:
    id: int
    device: str
    kind: str
    network: str | None
    started_at: str
    finished_at: str | None
    state: str
    phase: str
    window_start: str | None
    pages: int
    checked: int
    already_safe: int
    sent_new: int
    new_photos: int
    new_videos: int
    error: str | None
    message: str


class BackupRuns:
    """Runs, per-device progress and the candidate index, on top of one `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- a run starts ----------------------------------------------------------------------

    def start(self, device: Device, kind: RunKind, network: str | None, overlap: float) -> Plan:
        """Open a run; a backup run learns where to start looking (the window start)."""

        def start(conn: sqlite3.Connection) -> Plan:
            left = conn.execute(
                "SELECT id FROM backup_runs WHERE device_id = ? AND kind = ? AND state = 'running'",
                (device.id, kind),
            ).fetchall()
            for row in left:
                conn.execute(
                    "UPDATE backup_runs SET state = 'interrupted', finished_at = ? WHERE id = ?",
                    (iso(now()), row["id"]),
                )
                record = _record(self._fetch(conn, row["id"]))
                _journal(conn, "backup.run_interrupted", f"{_what(record)}: {record.message}")
            conn.execute(
                "DELETE FROM backup_run_seen WHERE run_id IN (SELECT id FROM backup_runs "
                "WHERE device_id = ? AND state != 'running')",
                (device.id,),
            )
            progress = self._progress(conn, device.id)
            after, full_walk = self._window_start(progress, overlap)
            if kind == "backup":
                conn.execute(
                    "UPDATE backup_progress SET walk_after = ?, walk_full = ? WHERE device_id = ?",
                    (after, int(full_walk), device.id),
                )
            cursor = conn.execute(
                "INSERT INTO backup_runs (device_id, kind, network, started_at, state, phase, "
                "window_start, full_walk) VALUES (?, ?, ?, ?, 'running', 'new', ?, ?)",
                (device.id, kind, network, iso(now()), after, int(full_walk)),
            )
            return Plan(int(cursor.lastrowid or 0), after, "new", full_walk)

        return self.db.call(start)

    @staticmethod
    def _window_start(progress: sqlite3.Row, overlap: float) -> tuple[str, bool]:
        """Where this run starts looking, and whether its walk covers the whole library.

        An unfinished walk carries on where it stopped (so a long overlap can never keep
        a run from reaching new photos); a fresh one starts an overlap window before the
        point up to which everything is known to be safe.
        """
        if progress["walk_after"] is not None:
            return progress["walk_after"], bool(progress["walk_full"])
        resume = parse_moment(progress["resume_after"])
        if resume is None:
            return EPOCH, True
        floor = datetime(1970, 1, 1, tzinfo=UTC)
        return max(as_utc(resume) - timedelta(days=overlap), floor).isoformat(), False

    def _progress(self, conn: sqlite3.Connection, device_id: int) -> sqlite3.Row:
        conn.execute(
            "INSERT INTO backup_progress (device_id) VALUES (?) ON CONFLICT DO NOTHING",
            (device_id,),
        )
        row: sqlite3.Row = conn.execute(
            "SELECT * FROM backup_progress WHERE device_id = ?", (device_id,)
        ).fetchone()
        return row

    def _run(self, conn: sqlite3.Connection, device: Device, run_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM backup_runs WHERE id = ? AND device_id = ?", (run_id, device.id)
        ).fetchone()
        if row is None:
            raise NotFound(
                f"There is no run {run_id} for this device; start one with POST /v1/backup/runs.",
                code="unknown_run",
            )
        return row

    def _open_run(self, conn: sqlite3.Connection, device: Device, run_id: int) -> sqlite3.Row:
        row = self._run(conn, device, run_id)
        if row["state"] == "interrupted":
            raise Conflict(
                f"Run {run_id} was replaced: the shortcut started again on this phone (it "
                "may have rejoined the Wi-Fi). This run stops; the newer one carries on.",
                code="run_over",
            )
        if row["state"] != "running":
            raise Conflict(
                f"Run {run_id} has already ended ({row['state']}); start a new one.",
                code="run_over",
            )
        return row

    # -- a page of candidates ----------------------------------------------------------------

    def decide(
        self,
        device: Device,
        run_id: int,
        after: str,
        candidates: list[Candidate],
        *,
        batch_size: int,
        sweep_days: float,
    ) -> PageDecision:
        """Which candidates to send, and where the next page starts (None: this run is done)."""

        def decide(conn: sqlite3.Connection) -> PageDecision:
            run = self._open_run(conn, device, run_id)
            progress = self._progress(conn, device.id)
            decisions: list[Decision] = []
            first_seen = 0
            for candidate in candidates:
                key = candidate_key(candidate)
                known = key is not None and self._indexed(conn, device, key)
                decisions.append("safe" if known else "send")
                if known and key is not None:
                    # Pages overlap (and a sweep walks again); count each photo once a run.
                    first_seen += conn.execute(
                        "INSERT INTO backup_run_seen (run_id, name, captured_at, size) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (run_id, *key),
                    ).rowcount
            phase = run["phase"]
            # Receiving this page means every page before it was sent completely.
            if phase == "new":
                conn.execute(
                    "UPDATE backup_progress SET resume_after = ?, walk_after = ? "
                    "WHERE device_id = ?",
                    (later(progress["resume_after"], after), after, device.id),
                )
            else:
                conn.execute(
                    "UPDATE backup_progress SET sweep_after = ? WHERE device_id = ?",
                    (after, device.id),
                )
            following = next_window(after, candidates)
            full = len(candidates) >= batch_size and following is not None
            updates: dict[str, Any] = {}
            if not full and phase == "new":
                updates["new_walk_end"] = following or after
                if self._sweep_due(progress, run, sweep_days):
                    updates["phase"] = "sweep"
                    following = progress["sweep_after"] or EPOCH
                else:
                    following = None
            elif not full:
                updates["sweep_done"] = 1
                following = None
            updates.update(last_after=after, last_next_after=following)
            assignments = ", ".join(f"{column} = ?" for column in updates)
            conn.execute(
                f"UPDATE backup_runs SET pages = pages + 1, checked = checked + ?, "
                f"skipped = skipped + ?, {assignments} WHERE id = ?",
                (len(candidates), first_seen, *updates.values(), run_id),
            )
            return PageDecision(decisions, following)

        return self.db.call(decide)

    @staticmethod
    def _indexed(conn: sqlite3.Connection, device: Device, key: tuple[str, str, str]) -> bool:
        row = conn.execute(
            "SELECT 1 FROM backup_index WHERE device_id = ? AND name = ? AND captured_at = ? "
            "AND size = ?",
            (device.id, *key),
        ).fetchone()
        return row is not None

    @staticmethod
    def _sweep_due(progress: sqlite3.Row, run: sqlite3.Row, sweep_days: float) -> bool:
        if progress["sweep_after"] is not None:
            return True  # one is under way: carry on
        if run["full_walk"]:
            return False  # this run's own walk covered the whole library
        last = parse_moment(progress["last_sweep_at"])
        if last is None:
            return True
        return now() - as_utc(last) >= timedelta(days=sweep_days)

    # -- uploads during a run ----------------------------------------------------------------

    def record_upload(
        self,
        device: Device,
        run_id: int,
        candidate: Candidate,
        sha256: str,
        kind: str,
        new: bool,
    ) -> None:
        """Count an upload in its run and remember the phone's description of it."""

        def record(conn: sqlite3.Connection) -> None:
            self._open_run(conn, device, run_id)
            counters = "sent_new = sent_new + 1" if new else "sent_known = sent_known + 1"
            if new and kind == "photo":
                counters += ", new_photos = new_photos + 1"
            elif new and kind == "video":
                counters += ", new_videos = new_videos + 1"
            conn.execute(f"UPDATE backup_runs SET {counters} WHERE id = ?", (run_id,))
            key = candidate_key(candidate)
            if key is not None:
                conn.execute(
                    "INSERT INTO backup_index (device_id, name, captured_at, size, sha256, "
                    "recorded_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                    "sha256 = excluded.sha256, recorded_at = excluded.recorded_at",
                    (device.id, *key, sha256, iso(now())),
                )
                conn.execute(
                    "INSERT INTO backup_run_seen (run_id, name, captured_at, size) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (run_id, *key),
                )

        self.db.call(record)

    def check_open(self, device: Device, run_id: int) -> None:
        """404/409 before any bytes are read, if the run is unknown or over."""
        self.db.call(lambda conn: self._open_run(conn, device, run_id))

    # -- a run ends --------------------------------------------------------------------------

    def finish(self, device: Device, run_id: int, error: str | None) -> RunRecord:
        """Close the run; a clean end moves the device's place in its library forward."""

        def finish(conn: sqlite3.Connection) -> RunRecord:
            run = self._open_run(conn, device, run_id)
            state = "failed" if error else "finished"
            conn.execute(
                "UPDATE backup_runs SET state = ?, finished_at = ?, error = ? WHERE id = ?",
                (state, iso(now()), error, run_id),
            )
            if run["kind"] == "backup" and not error and run["pages"]:
                self._advance(conn, device, run)
            conn.execute("DELETE FROM backup_run_seen WHERE run_id = ?", (run_id,))
            record = _record(self._fetch(conn, run_id))
            _journal(conn, f"backup.run_{state}", f"{_what(record)}: {record.message}")
            return record

        return self.db.call(finish)

    def _advance(self, conn: sqlite3.Connection, device: Device, run: sqlite3.Row) -> None:
        """After a clean end: the walk is done (or continues next run), and so is a sweep."""
        progress = self._progress(conn, device.id)
        walk_end = run["new_walk_end"]
        if walk_end is None:  # the run used all its batches inside the walk
            conn.execute(
                "UPDATE backup_progress SET resume_after = ?, walk_after = ? WHERE device_id = ?",
                (
                    later(progress["resume_after"], run["last_next_after"]),
                    run["last_next_after"],
                    device.id,
                ),
            )
            return
        conn.execute(
            "UPDATE backup_progress SET resume_after = ?, walk_after = NULL, walk_full = 0 "
            "WHERE device_id = ?",
            (later(progress["resume_after"], walk_end), device.id),
        )
        if run["full_walk"] or run["sweep_done"]:
            conn.execute(
                "UPDATE backup_progress SET sweep_after = NULL, last_sweep_at = ? "
                "WHERE device_id = ?",
                (iso(now()), device.id),
            )
        elif run["phase"] == "sweep":
            conn.execute(
                "UPDATE backup_progress SET sweep_after = ? WHERE device_id = ?",
                (run["last_next_after"], device.id),
            )

    # -- reading for people ------------------------------------------------------------------

    def _fetch(self, conn: sqlite3.Connection, run_id: int) -> sqlite3.Row:
        row: sqlite3.Row = conn.execute(
            "SELECT backup_runs.*, devices.name AS device_name FROM backup_runs "
            "JOIN devices ON devices.id = backup_runs.device_id WHERE backup_runs.id = ?",
            (run_id,),
        ).fetchone()
        return row

    def recent(self, limit: int = 50, device_name: str | None = None) -> list[RunRecord]:
        def read(conn: sqlite3.Connection) -> list[RunRecord]:
            where, args = "", []
            if device_name is not None:
                where, args = "WHERE devices.name = ?", [device_name]
            rows = conn.execute(
                "SELECT backup_runs.*, devices.name AS device_name FROM backup_runs "
                f"JOIN devices ON devices.id = backup_runs.device_id {where} "
                "ORDER BY backup_runs.id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
            return [_record(row) for row in rows]

        return self.db.call(read)


def _what(record: RunRecord) -> str:
    kind = "Backup" if record.kind == "backup" else "Share-sheet"
    return f"{kind} run {record.id} from {record.device}"


def _journal(conn: sqlite3.Connection, event: str, message: str) -> None:
    # Same table and shape as state.py's entries: runs show up next to device events.
    conn.execute(
        "INSERT INTO journal (at, sha256, event, message) VALUES (?, NULL, ?, ?)",
        (iso(now()), event, message),
    )


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        device=row["device_name"],
        kind=row["kind"],
        network=row["network"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        state=row["state"],
        phase=row["phase"],
        window_start=row["window_start"],
        pages=row["pages"],
        checked=row["checked"],
        already_safe=row["skipped"] + row["sent_known"],
        sent_new=row["sent_new"],
        new_photos=row["new_photos"],
        new_videos=row["new_videos"],
        error=row["error"],
        message=run_message(row),
    )
