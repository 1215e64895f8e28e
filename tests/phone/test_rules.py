"""The pure rules of a backup run: candidate keys, where the next page starts, the sentence."""

from __future__ import annotations

from app.phone.rules import Candidate, candidate_key, next_window, run_message


def test_candidate_key_compares_instants_to_the_second_and_sizes_as_reported() -> None:
    """Same moment in two offsets is one key; sub-seconds drop; '12.0' is '12'; text stays."""
    a = candidate_key(Candidate("IMG_1", "2024-05-01T21:04:00.700+02:00", "12.0"))
    b = candidate_key(Candidate(" IMG_1 ", "2024-05-01T19:04:00Z", "12"))
    assert a == b == ("IMG_1", "2024-05-01T19:04:00Z", "12")
    coarse = candidate_key(Candidate("IMG_1", "2024-05-01T19:04:00Z", "2.1 MB"))
    assert coarse is not None and coarse[2] == "2.1 MB"


def test_incomplete_candidates_have_no_key_so_they_are_sent() -> None:
    """A missing or unreadable name, date or size means 'send' (when in doubt, send)."""
    for candidate in (
        Candidate(None, "2024-05-01T19:04:00Z", "1"),
        Candidate("IMG_1", "1 May 2024 at 21:04", "1"),
        Candidate("IMG_1", "2024-05-01T19:04:00Z", ""),
    ):
        assert candidate_key(candidate) is None


def test_next_page_starts_a_second_before_the_newest_but_never_stalls() -> None:
    """Photos sharing the last second are seen again; a page all in one second moves on."""
    page = [
        Candidate("a", "2024-05-01T10:00:00Z", "1"),
        Candidate("b", "2024-05-01T10:00:05Z", "1"),
    ]
    assert next_window("2024-05-01T00:00:00Z", page) == "2024-05-01T10:00:04+00:00"
    burst = [Candidate(str(n), "2024-05-01T10:00:05Z", "1") for n in range(3)]
    assert next_window("2024-05-01T10:00:04+00:00", burst) == "2024-05-01T10:00:05+00:00"
    assert next_window("2024-05-01T00:00:00Z", []) is None


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
