"""The pure rules of a backup run: how the walk moves on, when a photo is provably safe,
how long a failing photo waits, and the sentence a run ends with. No SQL, no I/O.

The walk is built on what Find Photos really does (shared/shortcuts-on-iphone.md §1): a
date filter compares whole days in the phone's zone. So a page is "every photo on or after
day D, oldest first, at most `take` of them"; all days before the newest day of a full
page are complete, and a page that holds a single day grows until the whole day fits.
Nothing depends on seconds, so bursts within one second cannot be skipped. Days come from
the phone's own ISO 8601 dates (their local part), never from the server's clock.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "FIRST_DAY",
    "NOTE_WORDS",
    "Candidate",
    "Decision",
    "Step",
    "Walk",
    "after_text",
    "backoff",
    "candidate_key",
    "day_of",
    "in_album",
    "is_safe",
    "moment_key",
    "next_step",
    "not_captured",
    "parse_day",
    "parse_moment",
    "run_message",
    "same_network",
    "size_in_bytes",
]

Walk = Literal["taken", "changed"]
# "home": already safe, its delivery is verified, and the phone should add it to the album.
Decision = Literal["send", "safe", "later", "home"]

# Walks start here: before any photograph (a scan may say 1900-01-01 00:00).
FIRST_DAY = date(1800, 1, 1)
LAST_DAY = date(9000, 1, 1)
MAX_TAKE = 10_000  # a page never lists more photos than this (a day with more is a limit)


@dataclass(frozen=True)
class Candidate:
    """What the phone says about one photo; any part may be missing or odd."""

    name: str | None
    taken: str | None
    modified: str | None
    size: int | None
    # Optional, from newer shortcuts: Photo Type (a Live Photo says so), the albums the
    # photo is in (one name a line), and whether it had to be downloaded from iCloud.
    kind: str | None = None
    albums: str | None = None
    icloud: bool | None = None


def parse_moment(value: str | None) -> datetime | None:
    """An ISO 8601 instant, or None for anything unusable (never raises)."""
    if not value or not value.strip() or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)  # year 1 with a positive offset overflows here
    except (ValueError, OverflowError):
        return None
    return moment


def moment_key(value: str | None) -> str | None:
    """The instant to the second, in UTC: how capture dates are compared."""
    moment = parse_moment(value)
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of(value: str | None) -> date | None:
    """The phone's local day of an ISO date it sent (its own local part), kept in range."""
    moment = parse_moment(value)
    if moment is None:
        return None
    return min(max(moment.date(), FIRST_DAY), LAST_DAY)


def parse_day(value: str | None) -> date | None:
    """A stored day (YYYY-MM-DD), or None if it is missing, malformed or out of range."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def after_text(anchor: date) -> str:
    """What Find Photos is given: noon of the day before, with no zone (the phone's zone).

    "Is after" compares whole days, so this finds every photo on or after `anchor`; were
    the comparison exact (Last Modified Date is [open]), it finds a little more: safe too.
    """
    return f"{max(anchor, FIRST_DAY + timedelta(days=1)) - timedelta(days=1)}T12:00:00"


def size_in_bytes(value: object) -> int | None:
    """A byte count, only if the phone sent a whole number (never a rounded "2.1 MB")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def candidate_key(candidate: Candidate) -> tuple[str, str] | None:
    """(name, capture second in UTC), or None when either is unusable."""
    name = (candidate.name or "").strip()
    taken = moment_key(candidate.taken)
    if not name or taken is None:
        return None
    return name, taken


def is_safe(candidate: Candidate, size: int, modified: str | None) -> bool:
    """Safe only if the stored bytes have exactly this size and the photo has not changed
    since they were sent (a later Last Modified Date may be an edit: then send, and the
    hash decides)."""
    if candidate.size is None or candidate.size != size:
        return False
    now_modified, then_modified = parse_moment(candidate.modified), parse_moment(modified)
    if now_modified is None or then_modified is None:
        return now_modified is None and then_modified is None
    return now_modified <= then_modified


# What the phone could not send in full, in the words the status page uses.
NOTE_WORDS = {
    "live": "Live Photo: still only",
    "edited": "edited on the phone: the edited version",
    "maybe_edited": "maybe edited on the phone: the edited version",
    "icloud": "downloaded from iCloud during backup",
}
EDIT_NOTES = {"edited", "maybe_edited"}
# Last Modified Date this long after Date Taken may be an edit (or a favourite, an album):
# the photo is then treated as edited, which only ever keeps it on the phone.
EDIT_GRACE = timedelta(hours=1)


def in_album(candidate: Candidate, album: str) -> bool:
    """Whether the phone listed `album` among the photo's albums (one name a line)."""
    names = (candidate.albums or "").splitlines()
    return album.strip().casefold() in {n.strip().casefold() for n in names}


def _maybe_edited(candidate: Candidate) -> bool:
    taken, modified = parse_moment(candidate.taken), parse_moment(candidate.modified)
    if taken is None or modified is None:
        return False
    try:
        return modified - taken > EDIT_GRACE
    except OverflowError:
        return False


def not_captured(
    candidate: Candidate, sha256: str, previous: tuple[str, str | None] | None
) -> str | None:
    """The ledger notes for a photo whose bytes `sha256` are now indexed.

    `previous` is the index's (sha256, notes) before. Other bytes than before under the
    same name and capture second: the photo was edited on the phone. The same bytes: the
    edit notes stand. A first sight: maybe edited, if it changed well after it was taken.
    """
    notes: set[str] = set()
    if candidate.kind and "live photo" in candidate.kind.casefold():
        notes.add("live")
    if candidate.icloud:
        notes.add("icloud")
    if previous is not None and previous[0] != sha256:
        notes.add("edited")
    elif previous is not None:
        notes |= {n for n in (previous[1] or "").split(",") if n in EDIT_NOTES}
        notes |= {n for n in (previous[1] or "").split(",") if n == "icloud"}
    elif _maybe_edited(candidate):
        notes.add("maybe_edited")
    return ",".join(sorted(notes)) or None


@dataclass(frozen=True)
class Step:
    """Where the walk stands after a page: done, or the next page's day and size."""

    complete: bool
    anchor: date
    take: int


def next_step(walk: Walk, anchor: date, take: int, page: Sequence[Candidate], batch: int) -> Step:
    """The walk after this page (found with `anchor` and `take`).

    Not full: every photo from `anchor` on was listed, the walk is complete. Full: the
    newest day may go on, so the next page starts on it; a full page whose newest day is
    not after `anchor` holds one day only (or, with an exact comparison, a day and the
    afternoon before), so it grows fourfold and the day is listed again, whole.
    """
    if len(page) < take:
        return Step(True, anchor, batch)
    days = [d for d in (day_of(c.taken if walk == "taken" else c.modified) for c in page) if d]
    newest = max(days, default=anchor)
    if newest <= anchor:
        return Step(False, anchor, min(take * 4, MAX_TAKE))
    return Step(False, newest, batch)


def backoff(attempts: int) -> timedelta:
    """How long a photo that failed `attempts` times waits: 1 h, 4 h, 16 h ... at most 7 days."""
    return min(timedelta(hours=4 ** min(max(attempts - 1, 0), 5)), timedelta(days=7))


def _plain_network(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name)
    for curly, straight in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"')):
        folded = folded.replace(curly, straight)
    return " ".join(folded.split()).casefold()


def same_network(network: str | None, home: str | None) -> bool:
    """Away only when both names are known and differ (quotes, case, spaces aside).

    The automation fires on the home Wi-Fi only; a name the phone cannot read in the
    background is no reason to skip a backup.
    """
    if not network or not network.strip() or not home or not home.strip():
        return True
    return _plain_network(network) == _plain_network(home)


def _noun(photos: int, videos: int) -> str:
    total = photos + videos
    if videos == 0:
        return "photo" if total == 1 else "photos"
    if photos == 0:
        return "video" if total == 1 else "videos"
    return "photos and videos"


def _failures_sentence(failures: Sequence[tuple[str, str]]) -> str:
    if not failures:
        return ""
    shown = "; ".join(f"{name} ({reason})" for name, reason in failures[:3])
    more = f" and {len(failures) - 3} more" if len(failures) > 3 else ""
    count = len(failures)
    noun = "photo was" if count == 1 else "photos were"
    return f" {count} {noun} not sent: {shown}{more}. They are tried again later."


def run_message(
    row: sqlite3.Row | Mapping[str, Any], failures: Sequence[tuple[str, str]] = ()
) -> str:
    """The run in plain sentences, as the shortcut shows it; failing photos are named."""
    new = int(row["sent_new"])
    safe = int(row["skipped"]) + int(row["sent_known"])
    others = new - int(row["new_photos"]) - int(row["new_videos"])
    noun = _noun(int(row["new_photos"]), int(row["new_videos"]) + max(others, 0))
    if others and not row["new_photos"] and not row["new_videos"]:
        noun = "file" if new == 1 else "files"
    verb = "sent" if row["kind"] == "share" else "backed up"
    problems = _failures_sentence(failures)
    if row["state"] == "away":
        return "The automation ran away from the home Wi-Fi; nothing was sent."
    if row["state"] == "failed":
        return (
            f"Stopped: {row['error']} {new} new {noun} {verb} before that; nothing is lost, "
            f"the next run carries on.{problems}"
        )
    if row["state"] == "interrupted":
        return (
            f"This run stopped before it finished (iOS ends long runs, or the phone left the "
            f"Wi-Fi). {new} new {noun} were {verb} and are safe; the next run carries on."
        )
    was = "was" if safe == 1 else "were"
    if new == 0 and safe == 0:
        sentence = "Nothing new to back up." if row["kind"] == "backup" else "Nothing was sent."
    elif new == 0:
        sentence = f"Nothing new: {safe} {was} already safe."
    elif safe == 0:
        sentence = f"{new} new {noun} {verb}."
    else:
        sentence = f"{new} new {noun} {verb}, {safe} {was} already safe."
    if row["state"] == "finished" and row["kind"] == "backup" and row["last_next_after"]:
        sentence += " More to do: the next run carries on."
    return sentence + problems
