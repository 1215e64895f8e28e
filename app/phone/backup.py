"""The backup shortcut's conversation: runs, each device's walk through its library, the
exact index of what it sent, and the photos that failed.

A walk lists the library by whole days (rules.next_step): a "taken" walk by Date Taken
over the whole library (the first backup, then a sweep every few days), a "changed" walk
by Last Modified Date since the last walk began (photos added later with an old date,
edits). A page's effect on the device's walk is kept aside (`pending`) until the phone
asks for the next page or finishes, which means the page's uploads are over: a run cut
off anywhere makes the next run list that page again, and what arrived is answered safe.
All SQL of these tables lives here; each public method is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from app.clock import iso, now
from app.errors import Conflict, NotFound
from app.phone.rules import (
    FIRST_DAY,
    NOTE_WORDS,
    Candidate,
    Decision,
    Walk,
    after_text,
    backoff,
    candidate_key,
    day_of,
    in_album,
    is_safe,
    next_step,
    not_captured,
    parse_day,
    parse_moment,
    run_message,
    same_network,
)
from app.store.db import Database
from app.store.deliveries import delivery_proofs
from app.store.journal import write_journal
from app.store.state import Device

__all__ = ["BackupRuns", "Page", "PageReply", "Plan", "RunRecord", "WalkSettings"]

RunKind = Literal["backup", "share"]

NOT_READ = "could not be read from iCloud, or the run was stopped while reading it"
NOT_ARRIVED = "the upload did not arrive"
FREE_RETRIES = 2
TOO_LARGE = "too large"


@dataclass(frozen=True)
class WalkSettings:
    batch: int
    max_pages: int
    changes_overlap_days: float
    sweep_days: float


@dataclass(frozen=True)
class Page:
    """The next page for the phone: Find Photos on `walk`'s date, after `after`, `take` of them."""

    more: bool
    walk: Walk
    after: str
    take: int


@dataclass(frozen=True)
class Plan:
    run_id: int
    go: Literal["yes", "away"]
    page: Page


@dataclass(frozen=True)
class PageReply:
    decisions: list[Decision]
    page: Page
    album: bool = False  # some photo of this run is to go into the album at its end


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
    later: int
    error: str | None
    message: str


NO_PAGE = Page(False, "taken", after_text(FIRST_DAY), 1)


class BackupRuns:
    """Runs, per-device walks, the photo index and failures, on top of one `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- a run starts ----------------------------------------------------------------------

    def start(
        self,
        device: Device,
        kind: RunKind,
        network: str | None,
        home: str | None,
        walk: WalkSettings,
    ) -> Plan:
        """Open a run and hand out its first page; away from home, record that and stop."""

        def start(conn: sqlite3.Connection) -> Plan:
            self._close_left_runs(conn, device, kind)
            away = kind == "backup" and not same_network(network, home)
            cursor = conn.execute(
                "INSERT INTO backup_runs (device_id, kind, network, started_at, state, phase) "
                "VALUES (?, ?, ?, ?, ?, '')",
                (device.id, kind, network, iso(now()), "away" if away else "running"),
            )
            run_id = int(cursor.lastrowid or 0)
            if away:
                conn.execute(
                    "UPDATE backup_runs SET finished_at = ? WHERE id = ?", (iso(now()), run_id)
                )
                record = _record(self._fetch(conn, run_id), [])
                _journal(conn, "backup.run_away", f"{_what(record)}: on {network!r}, not {home!r}.")
                return Plan(run_id, "away", NO_PAGE)
            if kind == "share":
                return Plan(run_id, "yes", NO_PAGE)
            state = self._walk(conn, device)
            if state["walk"] is None:
                self._begin_next_walk(conn, device, state, walk, done=set())
                state = self._walk(conn, device)
            return Plan(run_id, "yes", self._page_of(state, more=True))

        return self.db.call(start)

    def _close_left_runs(self, conn: sqlite3.Connection, device: Device, kind: str) -> None:
        left = conn.execute(
            "SELECT id FROM backup_runs WHERE device_id = ? AND kind = ? AND state = 'running'",
            (device.id, kind),
        ).fetchall()
        for row in left:
            conn.execute(
                "UPDATE backup_runs SET state = 'interrupted', finished_at = ? WHERE id = ?",
                (iso(now()), row["id"]),
            )
            self._settle_attempts(conn, device, row["id"])
            record = _record(self._fetch(conn, row["id"]), [])
            _journal(conn, "backup.run_interrupted", f"{_what(record)}: {record.message}")

    def _walk(self, conn: sqlite3.Connection, device: Device) -> sqlite3.Row:
        conn.execute(
            "INSERT INTO backup_walks (device_id) VALUES (?) ON CONFLICT DO NOTHING", (device.id,)
        )
        row: sqlite3.Row = conn.execute(
            "SELECT * FROM backup_walks WHERE device_id = ?", (device.id,)
        ).fetchone()
        if row["walk"] is not None and (
            row["walk"] not in ("taken", "changed", "retry") or parse_day(row["anchor"]) is None
        ):
            # A stored value this release cannot use (older data, a bug): walk again from
            # the start rather than fail every later request.
            conn.execute(
                "UPDATE backup_walks SET walk = NULL, anchor = NULL, changes_since = NULL "
                "WHERE device_id = ?",
                (device.id,),
            )
            row = conn.execute(
                "SELECT * FROM backup_walks WHERE device_id = ?", (device.id,)
            ).fetchone()
        return row

    def _begin_next_walk(
        self,
        conn: sqlite3.Connection,
        device: Device,
        state: sqlite3.Row,
        walk: WalkSettings,
        done: set[str],
    ) -> bool:
        """Start the walk that is due (a run never does one kind twice); False: none is."""
        retry = self._due_failure_days(conn, device)
        due = self._next_walk_kind(dict(state), walk, done, retry)
        if due is None:
            return False
        kind, anchor, until = due
        conn.execute(
            "UPDATE backup_walks SET walk = ?, anchor = ?, take = ?, until = ?, "
            "pass_started_at = ? WHERE device_id = ?",
            (kind, anchor.isoformat(), walk.batch, until, iso(now()), device.id),
        )
        return True

    @staticmethod
    def _due_failure_days(conn: sqlite3.Connection, device: Device) -> tuple[date, date] | None:
        """The days (with a day's margin for any zone) of failed photos due for a new try."""
        row = conn.execute(
            "SELECT MIN(taken) AS first, MAX(taken) AS last FROM backup_failures "
            "WHERE device_id = ? AND state = 'failed' AND next_try_at <= ?",
            (device.id, iso(now())),
        ).fetchone()
        first, last = day_of(row["first"]), day_of(row["last"])
        if first is None or last is None:
            return None
        return max(first - timedelta(days=1), FIRST_DAY), last + timedelta(days=1)

    @staticmethod
    def _page_of(state: sqlite3.Row | dict[str, Any], more: bool) -> Page:
        if state["walk"] is None:
            return NO_PAGE
        anchor = parse_day(state["anchor"]) or FIRST_DAY
        kind: Walk = (
            "changed" if state["walk"] == "changed" else "taken"
        )  # a retry is by date taken
        return Page(more, kind, after_text(anchor), int(state["take"] or 1))

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
        candidates: list[Candidate],
        walk: WalkSettings,
        album: str | None = None,
    ) -> PageReply:
        """Which photos of the page to send, and the next page (the walk moves on).

        With `album` (the shortcut adds verified photos to it), a safe photo whose every
        delivery is verified and that the phone does not list in that album is "home".
        """

        def decide(conn: sqlite3.Connection) -> PageReply:
            run = self._open_run(conn, device, run_id)
            if run["kind"] != "backup":
                raise Conflict("A share-sheet run has no pages.", code="not_a_backup_run")
            self._commit_pending(conn, device, run)
            self._settle_attempts(conn, device, run_id)
            state = self._walk(conn, device)
            decisions = [
                self._decision(conn, device, run_id, i, c, album)
                for i, c in enumerate(candidates, 1)
            ]
            first_seen = sum(
                self._seen(conn, run, c)
                for c, d in zip(candidates, decisions, strict=True)
                if d in ("safe", "home")
            )
            self._remember_page(conn, run_id, candidates)
            pending, more = self._after_page(conn, device, run, state, candidates, walk)
            conn.execute(
                "UPDATE backup_runs SET pages = pages + 1, checked = checked + ?, "
                "skipped = skipped + ?, later = later + ?, album_adds = album_adds + ?, "
                "pending = ?, last_next_after = ?, phase = ?, window_start = ? WHERE id = ?",
                (
                    len(candidates),
                    first_seen,
                    decisions.count("later"),
                    decisions.count("home"),
                    json.dumps(pending),
                    "more" if pending.get("walk") and not more else None,
                    pending.get("done", run["phase"]),
                    pending.get("anchor"),
                    run_id,
                ),
            )
            adds = run["album_adds"] + decisions.count("home")
            return PageReply(decisions, self._page_of(pending, more), album=adds > 0)

        return self.db.call(decide)

    def _decision(
        self,
        conn: sqlite3.Connection,
        device: Device,
        run_id: int,
        position: int,
        candidate: Candidate,
        album: str | None = None,
    ) -> Decision:
        key = candidate_key(candidate)
        if key is None:
            return "send"  # when in doubt, send: the hash decides
        failure = conn.execute(
            "SELECT * FROM backup_failures WHERE device_id = ? AND name = ? AND taken = ?",
            (device.id, *key),
        ).fetchone()
        if failure is not None and failure["state"] == "failed":
            if failure["run_id"] == run_id:
                return "later"  # it failed in this run already: once a run is enough
            due = parse_moment(failure["next_try_at"])
            if due is not None and due > now():
                return "later"
        # A photo whose copy here is damaged is not safe: it is asked for again.
        known = conn.execute(
            "SELECT backup_photos.size, backup_photos.modified, backup_photos.sha256, "
            "backup_photos.recorded_at "
            "FROM backup_photos LEFT JOIN items ON items.sha256 = backup_photos.sha256 "
            "WHERE backup_photos.device_id = ? AND backup_photos.name = ? "
            "AND backup_photos.taken = ? AND items.state IS NOT 'damaged'",
            (device.id, *key),
        ).fetchone()
        if known is not None and is_safe(candidate, known["size"], known["modified"]):
            # Counted by the caller, once a run. The album only ever gets a photo whose
            # bytes (the phone's hash, which the receipt proved) are verified everywhere.
            sha256 = known["sha256"]
            wanted = album is not None and not in_album(candidate, album)
            if wanted and delivery_proofs(conn, [sha256], device.person_id)[sha256].verified:
                # Once a run: walks overlap, and a second Save to Photo Album of a photo
                # already in the album would make a copy of it.
                first = conn.execute(
                    "INSERT INTO backup_run_album (run_id, name, taken) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (run_id, *key),
                ).rowcount
                if first:
                    write_journal(
                        conn,
                        "backup.safe_at_home",
                        f"{key[0]} from {device.name}: its copy is verified at the destination; "
                        f"the phone adds it to the album “{album}”.",
                        sha256=sha256,
                    )
                return "home" if first else "safe"
            return "safe"
        conn.execute(
            "INSERT INTO backup_failures (device_id, name, taken, state, run_id, position, "
            "updated_at) VALUES (?, ?, ?, 'asked', ?, ?, ?) ON CONFLICT DO UPDATE SET "
            "state = 'asked', run_id = excluded.run_id, position = excluded.position, "
            "updated_at = excluded.updated_at",
            (device.id, *key, run_id, position, iso(now())),
        )
        return "send"

    @staticmethod
    def _seen(conn: sqlite3.Connection, run: sqlite3.Row, candidate: Candidate) -> int:
        """1 if this safe photo counts as "already safe" in this run: it was safe before the
        run began, and the run has not counted it yet (pages and walks overlap)."""
        key = candidate_key(candidate)
        if key is None:
            return 0
        before = conn.execute(
            "SELECT 1 FROM backup_photos WHERE device_id = ? AND name = ? AND taken = ? "
            "AND recorded_at < ?",
            (run["device_id"], *key, run["started_at"]),
        ).fetchone()
        if before is None:
            return 0
        return conn.execute(
            "INSERT INTO backup_run_seen (run_id, name, taken) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (run["id"], *key),
        ).rowcount

    @staticmethod
    def _remember_page(conn: sqlite3.Connection, run_id: int, candidates: list[Candidate]) -> None:
        conn.execute("DELETE FROM backup_page WHERE run_id = ?", (run_id,))
        conn.executemany(
            "INSERT INTO backup_page (run_id, position, name, taken, modified, size, kind, "
            "albums, icloud) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    i,
                    c.name,
                    c.taken,
                    c.modified,
                    c.size,
                    c.kind,
                    c.albums,
                    None if c.icloud is None else int(c.icloud),
                )
                for i, c in enumerate(candidates, start=1)
            ],
        )

    def _after_page(
        self,
        conn: sqlite3.Connection,
        device: Device,
        run: sqlite3.Row,
        state: sqlite3.Row,
        candidates: list[Candidate],
        walk: WalkSettings,
    ) -> tuple[dict[str, Any], bool]:
        """The walk's state once this page's uploads are over, and whether to go on now."""
        done = {kind for kind in (run["phase"] or "").split(",") if kind}
        more = run["pages"] + 1 < walk.max_pages
        if state["walk"] is None:
            return {"walk": None, "done": ",".join(sorted(done))}, False
        anchor = parse_day(state["anchor"]) or FIRST_DAY
        by: Walk = "changed" if state["walk"] == "changed" else "taken"
        step = next_step(by, anchor, int(state["take"] or walk.batch), candidates, walk.batch)
        until = parse_day(state["until"]) if state["walk"] == "retry" else None
        if not step.complete and (until is None or step.anchor <= until):
            going_on = {
                "walk": state["walk"],
                "anchor": step.anchor.isoformat(),
                "take": step.take,
                "done": ",".join(sorted(done)),
            }
            return going_on, more
        done.add(state["walk"])
        pending: dict[str, Any] = {"walk": None, "until": None}
        if state["walk"] != "retry":  # a retry walk looked at a few days only
            pending["changes_since"] = state["pass_started_at"]
        if state["walk"] == "taken":
            pending["last_sweep_at"] = iso(now())
        # Look at what the next walk would be, as if this one were committed.
        preview = dict(state)
        preview.update(pending)
        following = self._next_walk_kind(preview, walk, done, self._due_failure_days(conn, device))
        if following is None:
            pending["done"] = ",".join(sorted(done))
            return pending, False
        kind, anchor, until_text = following
        pending.update(
            walk=kind,
            anchor=anchor.isoformat(),
            take=walk.batch,
            until=until_text,
            pass_started_at=iso(now()),
            done=",".join(sorted(done)),
        )
        return pending, more

    @staticmethod
    def _next_walk_kind(
        state: dict[str, Any],
        walk: WalkSettings,
        done: set[str],
        retry: tuple[date, date] | None,
    ) -> tuple[str, date, str | None] | None:
        """The next walk of this run: failed photos due again (once the first backup is
        over), then recent changes, then a sweep when due; each kind once a run."""
        since = parse_moment(state["changes_since"])
        last_sweep = parse_moment(state["last_sweep_at"])
        sweep_due = last_sweep is None or now() - last_sweep >= timedelta(days=walk.sweep_days)
        if retry is not None and since is not None and not done & {"retry", "taken"}:
            return "retry", retry[0], retry[1].isoformat()
        if since is not None and "changed" not in done:
            return "changed", _day_before(since, walk.changes_overlap_days), None
        if sweep_due and "taken" not in done:
            return "taken", FIRST_DAY, None
        return None

    def _commit_pending(self, conn: sqlite3.Connection, device: Device, run: sqlite3.Row) -> None:
        """The last page's uploads are over: its effect on the walk becomes the walk."""
        if not run["pending"]:
            return
        pending = json.loads(run["pending"])
        pending.pop("done", None)
        self._walk(conn, device)
        columns = {
            "walk",
            "anchor",
            "take",
            "until",
            "pass_started_at",
            "changes_since",
            "last_sweep_at",
        }
        updates = {k: v for k, v in pending.items() if k in columns}
        if updates:
            assignments = ", ".join(f"{column} = ?" for column in updates)
            conn.execute(
                f"UPDATE backup_walks SET {assignments} WHERE device_id = ?",
                (*updates.values(), device.id),
            )
        conn.execute("UPDATE backup_runs SET pending = NULL WHERE id = ?", (run["id"],))

    def _settle_attempts(self, conn: sqlite3.Connection, device: Device, run_id: int) -> None:
        """Photos this run was to send but that never arrived: failed, with a back-off.

        The phone goes through the page in order, so of the photos it never hashed only
        the first was being read when it stopped; the others were never tried.
        """
        rows = conn.execute(
            "SELECT * FROM backup_failures WHERE device_id = ? AND run_id = ? "
            "AND state IN ('asked', 'hashed') ORDER BY position",
            (device.id, run_id),
        ).fetchall()
        first_unread = True
        for row in rows:
            if row["state"] == "asked" and not first_unread:
                conn.execute(
                    "DELETE FROM backup_failures WHERE device_id = ? AND name = ? AND taken = ? "
                    "AND attempts = 0",
                    (device.id, row["name"], row["taken"]),
                )
                conn.execute(
                    "UPDATE backup_failures SET state = 'failed' WHERE device_id = ? AND name = ? "
                    "AND taken = ? AND state = 'asked'",
                    (device.id, row["name"], row["taken"]),
                )
                continue
            if row["state"] == "asked":
                first_unread = False
            reason = NOT_READ if row["state"] == "asked" else NOT_ARRIVED
            self._fail(conn, device, row["name"], row["taken"], run_id, reason)

    def _fail(
        self,
        conn: sqlite3.Connection,
        device: Device,
        name: str,
        taken: str,
        run_id: int,
        reason: str,
    ) -> None:
        row = conn.execute(
            "SELECT attempts FROM backup_failures WHERE device_id = ? AND name = ? AND taken = ?",
            (device.id, name, taken),
        ).fetchone()
        attempts = (row["attempts"] if row else 0) + 1
        # A run cut off while reading looks the same as a photo that cannot be read: the
        # first two such misses are tried again at once, then the photo waits. A refusal
        # that is the service's trouble (no room) is tried again on the next run.
        unsure = reason in (NOT_READ, NOT_ARRIVED)
        if (not unsure and reason != TOO_LARGE) or (unsure and attempts <= FREE_RETRIES):
            wait = timedelta(0)
        else:
            wait = backoff(attempts - FREE_RETRIES if unsure else attempts)
        conn.execute(
            "INSERT INTO backup_failures (device_id, name, taken, state, run_id, attempts, "
            "reason, next_try_at, updated_at) VALUES (?, ?, ?, 'failed', ?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET state = 'failed', run_id = excluded.run_id, "
            "attempts = excluded.attempts, reason = excluded.reason, "
            "next_try_at = excluded.next_try_at, updated_at = excluded.updated_at",
            (device.id, name, taken, run_id, attempts, reason, iso(now() + wait), iso(now())),
        )
        _journal(
            conn,
            "backup.photo_failed",
            f"{name} from {device.name}: {reason} (attempt {attempts}).",
        )

    # -- one photo of the page ---------------------------------------------------------------

    def _page_photo(
        self, conn: sqlite3.Connection, run_id: int, position: int
    ) -> tuple[Candidate, tuple[str, str] | None]:
        row = conn.execute(
            "SELECT * FROM backup_page WHERE run_id = ? AND position = ?", (run_id, position)
        ).fetchone()
        if row is None:
            raise NotFound(
                f"The run's current page has no photo {position}.", code="unknown_position"
            )
        icloud = None if row["icloud"] is None else bool(int(row["icloud"]))
        candidate = Candidate(
            row["name"], row["taken"], row["modified"], row["size"], row["kind"], None, icloud
        )
        return candidate, candidate_key(candidate)

    def offer(
        self, device: Device, run_id: int, position: int, sha256: str, stored_size: int | None
    ) -> bool:
        """The phone read the photo and hashed it: True means "upload it"; False, the
        service holds those exact bytes already (`stored_size` is their size)."""

        def offer(conn: sqlite3.Connection) -> bool:
            self._open_run(conn, device, run_id)
            candidate, key = self._page_photo(conn, run_id, position)
            if stored_size is None:
                if key is not None:
                    conn.execute(
                        "UPDATE backup_failures SET state = 'hashed', updated_at = ? "
                        "WHERE device_id = ? AND name = ? AND taken = ?",
                        (iso(now()), device.id, *key),
                    )
                return True
            self._index(conn, device, candidate, key, stored_size, sha256)
            if key is not None:
                counted = conn.execute(
                    "INSERT INTO backup_run_seen (run_id, name, taken) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (run_id, *key),
                ).rowcount
                conn.execute(
                    "UPDATE backup_runs SET skipped = skipped + ? WHERE id = ?", (counted, run_id)
                )
            return False

        return self.db.call(offer)

    def _index(
        self,
        conn: sqlite3.Connection,
        device: Device,
        candidate: Candidate,
        key: tuple[str, str] | None,
        size: int,
        sha256: str,
    ) -> None:
        if key is None:
            return
        before = conn.execute(
            "SELECT sha256, not_captured FROM backup_photos "
            "WHERE device_id = ? AND name = ? AND taken = ?",
            (device.id, *key),
        ).fetchone()
        previous = None if before is None else (before["sha256"], before["not_captured"])
        notes = not_captured(candidate, sha256, previous)
        conn.execute(
            "INSERT INTO backup_photos (device_id, name, taken, size, modified, sha256, "
            "recorded_at, not_captured) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
            "SET size = excluded.size, modified = excluded.modified, sha256 = excluded.sha256, "
            "recorded_at = excluded.recorded_at, not_captured = excluded.not_captured",
            (device.id, *key, size, candidate.modified, sha256, iso(now()), notes),
        )
        if notes and notes != (before["not_captured"] if before is not None else None):
            words = "; ".join(NOTE_WORDS.get(n, n) for n in notes.split(","))
            write_journal(
                conn,
                "backup.not_captured",
                f"{key[0]} from {device.name} is backed up, but not in full: {words}.",
                sha256=sha256,
            )
        conn.execute(
            "DELETE FROM backup_failures WHERE device_id = ? AND name = ? AND taken = ?",
            (device.id, *key),
        )

    def record_upload(
        self,
        device: Device,
        run_id: int,
        position: int | None,
        sha256: str,
        size: int,
        kind: str,
        new: bool,
    ) -> None:
        """Count an upload in its run; a page photo's upload enters the exact index."""

        def record(conn: sqlite3.Connection) -> None:
            self._open_run(conn, device, run_id)
            counters = "sent_new = sent_new + 1" if new else "sent_known = sent_known + 1"
            if new and kind == "photo":
                counters += ", new_photos = new_photos + 1"
            elif new and kind == "video":
                counters += ", new_videos = new_videos + 1"
            conn.execute(f"UPDATE backup_runs SET {counters} WHERE id = ?", (run_id,))
            if position is not None:
                candidate, key = self._page_photo(conn, run_id, position)
                self._index(conn, device, candidate, key, size, sha256)
                if key is not None:
                    conn.execute(
                        "INSERT INTO backup_run_seen (run_id, name, taken) VALUES (?, ?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (run_id, *key),
                    )

        self.db.call(record)

    def record_refusal(self, device: Device, run_id: int, position: int, reason: str) -> None:
        """An upload the service refused (too large, no room): the photo waits, the run goes on."""

        def record(conn: sqlite3.Connection) -> None:
            self._run(conn, device, run_id)
            _, key = self._page_photo(conn, run_id, position)
            if key is not None:
                self._fail(conn, device, *key, run_id, reason)

        self.db.call(record)

    def check_open(self, device: Device, run_id: int, position: int | None = None) -> None:
        """404/409 before any bytes are read, if the run is unknown or over."""

        def check(conn: sqlite3.Connection) -> None:
            self._open_run(conn, device, run_id)
            if position is not None:
                self._page_photo(conn, run_id, position)

        self.db.call(check)

    # -- a run ends --------------------------------------------------------------------------

    def finish(self, device: Device, run_id: int, error: str | None) -> RunRecord:
        """Close the run; a clean end commits its last page's effect on the walk."""

        def finish(conn: sqlite3.Connection) -> RunRecord:
            run = self._open_run(conn, device, run_id)
            state = "failed" if error else "finished"
            if not error:
                self._commit_pending(conn, device, run)
            self._settle_attempts(conn, device, run_id)
            conn.execute(
                "UPDATE backup_runs SET state = ?, finished_at = ?, error = ? WHERE id = ?",
                (state, iso(now()), error, run_id),
            )
            conn.execute("DELETE FROM backup_page WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM backup_run_seen WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM backup_run_album WHERE run_id = ?", (run_id,))
            record = _record(self._fetch(conn, run_id), self._failures(conn, device))
            _journal(conn, f"backup.run_{state}", f"{_what(record)}: {record.message}")
            return record

        return self.db.call(finish)

    # -- reading for people ------------------------------------------------------------------

    @staticmethod
    def _failures(conn: sqlite3.Connection, device: Device) -> list[tuple[str, str]]:
        rows = conn.execute(
            "SELECT name, reason FROM backup_failures WHERE device_id = ? AND state = 'failed' "
            "ORDER BY taken",
            (device.id,),
        ).fetchall()
        return [(row["name"], row["reason"]) for row in rows]

    def failures(self) -> list[dict[str, Any]]:
        """Every photo a device could not send yet, with the reason and the next try."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT devices.name AS device, backup_failures.name, taken, attempts, reason, "
                "next_try_at FROM backup_failures JOIN devices ON devices.id = device_id "
                "WHERE state = 'failed' ORDER BY devices.name, taken"
            ).fetchall()
            return [dict(row) for row in rows]

        return self.db.call(read)

    def ledger(self, limit: int = 200) -> list[dict[str, Any]]:
        """Photos whose backup is not the whole story (a Live Photo's still, an edit's
        render), newest first, with the notes as stored (see rules.NOTE_WORDS)."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT devices.name AS device, backup_photos.name, taken, not_captured "
                "FROM backup_photos JOIN devices ON devices.id = device_id "
                "WHERE not_captured IS NOT NULL ORDER BY taken DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [dict(row) for row in rows]

        return self.db.call(read)

    def ledger_counts(self) -> dict[str, int]:
        """How many indexed photos carry each note."""

        def read(conn: sqlite3.Connection) -> dict[str, int]:
            counts: dict[str, int] = {}
            for row in conn.execute(
                "SELECT not_captured FROM backup_photos WHERE not_captured IS NOT NULL"
            ):
                for note in row["not_captured"].split(","):
                    counts[note] = counts.get(note, 0) + 1
            return counts

        return self.db.call(read)

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
            return [_record(row, []) for row in rows]

        return self.db.call(read)


def _day_before(moment: datetime, days: float) -> date:
    """The day to start a changed walk: `days` before `moment`, one more for any zone."""
    try:
        start = moment.astimezone(UTC) - timedelta(days=days + 1)
    except OverflowError:
        return FIRST_DAY
    return max(start.date(), FIRST_DAY)


def _what(record: RunRecord) -> str:
    kind = "Backup" if record.kind == "backup" else "Share-sheet"
    return f"{kind} run {record.id} from {record.device}"


def _journal(conn: sqlite3.Connection, event: str, message: str) -> None:
    # The store's one journal writer: runs show up next to device and item events.
    write_journal(conn, event, message)


def _record(row: sqlite3.Row, failures: list[tuple[str, str]]) -> RunRecord:
    return RunRecord(
        id=row["id"],
        device=row["device_name"],
        kind=row["kind"],
        network=row["network"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        state=row["state"],
        phase=row["phase"] or "",
        window_start=row["window_start"],
        pages=row["pages"],
        checked=row["checked"],
        already_safe=row["skipped"] + row["sent_known"],
        sent_new=row["sent_new"],
        new_photos=row["new_photos"],
        new_videos=row["new_videos"],
        later=row["later"],
        error=row["error"],
        message=run_message(row, failures),
    )
