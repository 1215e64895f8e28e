"""The pure rules of Safe at home and Free up space: the ledger notes, what stays on the
phone without being read, and the closing sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.phone.free_up import FreeUpSettings, PhotoFacts, free_up_message, keep_reason
from app.phone.rules import Candidate, in_album, not_captured

SETTINGS = FreeUpSettings(album="Safe at home", days=30, favourites=False)
OLD = (datetime.now(UTC) - timedelta(days=90)).isoformat()


def facts(**changes: object) -> PhotoFacts:
    values: dict[str, object] = {
        "name": "IMG_1",
        "taken": OLD,
        "modified": OLD,
        "size": 2_000_000,
        "kind": "",
        "favourite": False,
    }
    values.update(changes)
    return PhotoFacts(**values)  # type: ignore[arg-type]


def test_ledger_notes_come_from_what_the_phone_said_and_the_bytes() -> None:
    """A Live Photo says so; other bytes under the same name are an edit; the same bytes
    keep the notes they had; a late Last Modified Date on first sight is a maybe-edit."""
    taken = "2024-05-01T10:00:00+02:00"
    live = Candidate("IMG_1", taken, "2024-05-01T10:00:02+02:00", 5, kind="Live Photo")
    assert not_captured(live, "a" * 64, None) == "live"
    plain = Candidate("IMG_2", taken, "2024-05-01T10:00:02+02:00", 5)
    assert not_captured(plain, "a" * 64, None) is None
    assert not_captured(plain, "b" * 64, ("a" * 64, None)) == "edited"
    assert not_captured(plain, "a" * 64, ("a" * 64, "maybe_edited")) == "maybe_edited"
    late = Candidate("IMG_3", taken, "2024-05-09T10:00:00+02:00", 5)
    assert not_captured(late, "a" * 64, None) == "maybe_edited"
    # Joining the album moved Last Modified Date; the same bytes are not an edit.
    assert not_captured(late, "a" * 64, ("a" * 64, None)) is None


def test_album_membership_is_read_from_the_phones_list() -> None:
    """One album name a line, compared without case or surrounding spaces."""
    photo = Candidate("IMG_1", OLD, OLD, 1, albums="Holidays\n safe at HOME ")
    assert in_album(photo, "Safe at home")
    assert not in_album(Candidate("IMG_1", OLD, OLD, 1, albums="Safe at home 2"), "Safe at home")
    assert not in_album(Candidate("IMG_1", OLD, OLD, 1), "Safe at home")


def test_what_stays_without_being_read() -> None:
    """Live Photos, edits, favourites (unless allowed), recent and undated photos stay."""
    assert keep_reason(facts(), None, SETTINGS) is None
    assert keep_reason(facts(kind="Live Photo"), None, SETTINGS) == "live"
    assert keep_reason(facts(), "edited", SETTINGS) == "edited"
    assert keep_reason(facts(), "live,maybe_edited", SETTINGS) == "edited"
    assert keep_reason(facts(favourite=True), None, SETTINGS) == "favourite"
    allowed = FreeUpSettings(album="Safe at home", days=30, favourites=True)
    assert keep_reason(facts(favourite=True), None, allowed) is None
    recent = (datetime.now(UTC) - timedelta(days=29)).isoformat()
    assert keep_reason(facts(taken=recent), None, SETTINGS) == "recent"
    assert keep_reason(facts(taken="yesterday"), None, SETTINGS) == "unverified"


def test_the_closing_sentence() -> None:
    """Freed amount, photos removed, and what was kept, most first; recent ones not counted."""
    assert (
        free_up_message(3_200_000_000, 412, {"live": 21, "unverified": 16, "recent": 5}, SETTINGS)
        == "Freed 3.2 GB: 412 photos removed from the phone, kept 37 (21 Live Photos, 16 not "
        "yet verified)."
    )
    assert free_up_message(2_100_000, 1, {}, SETTINGS) == (
        "Freed 2.1 MB: 1 photo removed from the phone."
    )
    assert free_up_message(0, 0, {"favourite": 2, "missing": 1}, SETTINGS) == (
        "Nothing removed from the phone: kept 3 (2 favourites, 1 missing at the destination)."
    )
    assert free_up_message(0, 0, {"recent": 4}, SETTINGS) == (
        "Nothing to free up: no photo in the album “Safe at home” was taken more than 30 days ago."
    )
