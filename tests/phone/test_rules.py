"""The pure rules of a backup run: candidate keys, exact "safe", the walk, the sentence."""

from __future__ import annotations

from datetime import date, timedelta

from app.phone.rules import (
    FIRST_DAY,
    Candidate,
    after_text,
    backoff,
    candidate_key,
    day_of,
    is_safe,
    next_step,
    parse_day,
    run_message,
    same_network,
    size_in_bytes,
)


def photo(name: str, taken: str, size: int | None = 1, modified: str | None = None) -> Candidate:
    return Candidate(name, taken, modified, size)


def test_candidate_key_compares_instants_to_the_second() -> None:
    """Same moment in two offsets is one key; sub-seconds drop; names are trimmed."""
    a = candidate_key(photo("IMG_1", "2024-05-01T21:04:00.700+02:00"))
    b = candidate_key(photo(" IMG_1 ", "2024-05-01T19:04:00Z"))
    assert a == b == ("IMG_1", "2024-05-01T19:04:00Z")


def test_incomplete_candidates_have_no_key_so_they_are_sent() -> None:
    """A missing or unreadable name or date means 'send' (when in doubt, send)."""
    for candidate in (
        photo("", "2024-05-01T19:04:00Z"),
        photo("IMG_1", "1 May 2024 at 21:04"),
        photo("IMG_1", "0001-01-01T00:00:00+05:00"),
    ):
        assert candidate_key(candidate) is None


def test_only_a_whole_number_is_a_size() -> None:
    """'2.1 MB' (File Size as text) is no size at all; 12, 12.0 and '12' are 12 bytes."""
    assert [size_in_bytes(v) for v in (12, 12.0, "12", "2.1 MB", "2,1 MB", -1, True, None)] == [
        12,
        12,
        12,
        None,
        None,
        None,
        None,
        None,
    ]


def test_safe_needs_the_exact_size_and_no_later_change() -> None:
    """Same size and unchanged: safe. Another size, no size, or modified later: send."""
    sent = photo("IMG_1", "2024-05-01T19:04:00Z", 2_100_000, "2024-05-02T10:00:00+02:00")
    assert is_safe(sent, 2_100_000, "2024-05-02T10:00:00+02:00")
    assert not is_safe(sent, 2_100_001, "2024-05-02T10:00:00+02:00")
    assert not is_safe(photo("IMG_1", "2024-05-01T19:04:00Z", None), 2_100_000, None)
    edited = photo("IMG_1", "2024-05-01T19:04:00Z", 2_100_000, "2024-06-01T10:00:00+02:00")
    assert not is_safe(edited, 2_100_000, "2024-05-02T10:00:00+02:00")


def test_the_walk_moves_by_whole_days_and_grows_for_a_full_day() -> None:
    """A full page moves on to its newest day; a page of one day grows; a short one ends."""
    day = date(2024, 5, 1)
    spread = [photo(str(n), f"2024-05-0{1 + n // 2}T10:00:00+02:00") for n in range(4)]
    step = next_step("taken", day, 4, spread, 4)
    assert (step.complete, step.anchor, step.take) == (False, date(2024, 5, 2), 4)
    one_day = [photo(str(n), "2024-05-01T10:00:00+02:00") for n in range(4)]
    grown = next_step("taken", day, 4, one_day, 4)
    assert (grown.complete, grown.anchor, grown.take) == (False, day, 16)
    assert next_step("taken", day, 4, one_day[:3], 4).complete


def test_days_are_the_phones_own_and_always_in_range() -> None:
    """The local part of the phone's date is its day; absurd years are clamped, never raise."""
    assert day_of("2024-05-01T23:30:00+02:00") == date(2024, 5, 1)
    assert day_of("0001-01-01T00:00:00-05:00") == FIRST_DAY
    assert parse_day("0001-01-01") is None and parse_day("garbage") is None
    assert after_text(date(2024, 5, 1)) == "2024-04-30T12:00:00"
    assert after_text(FIRST_DAY) == after_text(FIRST_DAY + timedelta(days=1))


def test_wifi_names_compare_without_quotes_case_or_unreadable_names() -> None:
    """A curly apostrophe or an unreadable name is home; only a clearly other name is away."""
    assert same_network("Anna\u2019s Wi-Fi", "anna's  wi-fi")
    assert same_network(None, "Home") and same_network("", "Home")
    assert not same_network("Cafe", "Home")


def test_back_off_grows_and_is_capped() -> None:
    """A failing photo waits 1 h, then 4 h, 16 h ... never more than a week."""
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(hours=h) for h in (1, 4, 16)]
    assert backoff(20) == timedelta(days=7)


def test_run_sentence_counts_new_photos_videos_and_already_safe() -> None:
    """The notification reads like a person wrote it, for each way a run can end."""
    row = {
        "kind": "backup",
        "state": "finished",
        "sent_new": 12,
        "new_photos": 12,
        "new_videos": 0,
        "skipped": 25,
        "sent_known": 5,
        "last_next_after": None,
        "error": None,
    }
    assert run_message(row) == "12 new photos backed up, 30 were already safe."
    assert run_message({**row, "new_videos": 1, "new_photos": 11}) == (
        "12 new photos and videos backed up, 30 were already safe."
    )
    assert run_message({**row, "last_next_after": "2024-01-01T00:00:00+00:00"}).endswith(
        "More to do: the next run carries on."
    )
    failed = run_message({**row, "state": "failed", "error": "The spool is full."})
    assert failed.startswith("Stopped: The spool is full. 12 new photos backed up before that")
    assert (
        run_message(
            {**row, "kind": "share", "sent_new": 1, "new_photos": 1, "skipped": 0, "sent_known": 1}
        )
        == "1 new photo sent, 1 was already safe."
    )
