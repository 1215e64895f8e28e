"""The pure rules of a backup run: how the phone's candidates compare, where the next
page of the walk starts, and the sentence a run ends with. No SQL, no I/O.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "EPOCH",
    "Candidate",
    "Decision",
    "as_utc",
    "candidate_key",
    "later",
    "next_window",
    "parse_moment",
    "run_message",
]

EPOCH = "1970-01-01T00:00:00+00:00"
Decision = Literal["send", "safe"]


@dataclass(frozen=True)
class Candidate:
    """What the phone says about one photo; any part may be missing."""

    name: str | None
    captured_at: str | None
    size: str | None


def parse_moment(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _moment_key(moment: datetime) -> str:
    moment = moment.replace(microsecond=0)
    if moment.tzinfo is None:
        return moment.isoformat()  # no zone: only ever equal to the same wall-clock text
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size_key(value: str) -> str:
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() and number >= 0 else text


def candidate_key(candidate: Candidate) -> tuple[str, str, str] | None:
    """(name, capture second in UTC, size) as compared, or None if any part is unusable."""
    moment = parse_moment(candidate.captured_at)
    name = (candidate.name or "").strip()
    size = _size_key(candidate.size or "")
    if moment is None or not name or not size:
        return None  # when in doubt, send
    return name, _moment_key(moment), size


def next_window(after: str, candidates: list[Candidate]) -> str | None:
    """Where the next page starts: one second before the newest date of this page.

    Going back a second means photos sharing that second are looked at again (and
    answered "safe") instead of being skipped; if the page did not move past `after`
    at all (a burst), start at its newest date so the walk cannot stall.
    """
    start = parse_moment(after)
    dates = [d for d in (parse_moment(c.captured_at) for c in candidates) if d is not None]
    if not dates:
        return None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    aware = [d if d.tzinfo else d.replace(tzinfo=UTC) for d in dates]
    newest = max(aware)
    step_back = newest - timedelta(seconds=1)
    chosen = step_back if start is None or step_back > start else newest
    return chosen.astimezone(UTC).isoformat()


def later(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    moment_a, moment_b = parse_moment(a), parse_moment(b)
    if moment_a is None or moment_b is None:
        return b
    return a if as_utc(moment_a) >= as_utc(moment_b) else b


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _noun(photos: int, videos: int) -> str:
    total = photos + videos
    if videos == 0:
        return "photo" if total == 1 else "photos"
    if photos == 0:
        return "video" if total == 1 else "videos"
    return "photos and videos"


def run_message(row: sqlite3.Row | dict[str, Any]) -> str:
    """The run in one plain sentence, as the shortcut shows it."""
    new = int(row["sent_new"])
    safe = int(row["skipped"]) + int(row["sent_known"])
    others = new - int(row["new_photos"]) - int(row["new_videos"])
    noun = _noun(int(row["new_photos"]), int(row["new_videos"]) + max(others, 0))
    if others and not row["new_photos"] and not row["new_videos"]:
        noun = "file" if new == 1 else "files"
    verb = "sent" if row["kind"] == "share" else "backed up"
    if row["state"] == "failed":
        return (
            f"Stopped: {row['error']} {new} new {noun} {verb} before that; nothing is lost, "
            "the next run carries on."
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
    return sentence
