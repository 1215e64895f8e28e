"""Migration 5 (capture notes) upgrades a database made before it, keeping every receipt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.receipts import CAPTURE_NOTES
from app.store.db import MIGRATIONS, Database, schema_version
from app.store.state import NewItem, State

BEFORE = 4  # the migrations the release before capture notes had


def database_of_the_release_before(path: Path) -> None:
    """The schema as the release before made it, with a received and a verified item."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, migration in enumerate(MIGRATIONS[:BEFORE], start=1):
        conn.executescript(f"BEGIN; {migration()}; PRAGMA user_version={number}; COMMIT;")
    for sha, source, state in (("a" * 64, "fallback", "received"), ("b" * 64, "exif", "verified")):
        conn.execute(
            "INSERT INTO items (sha256, size, original_name, kind, captured_at, captured_local,"
            " captured_source, received_at, state, planned_path)"
            " VALUES (?, 3, 'IMG.JPG', 'photo', '2024-05-01T21:04:00', '2024-05-01T21:04:00',"
            " ?, '2024-05-02T08:00:00+00:00', ?, '2024/05/IMG.JPG')",
            (sha, source, state),
        )
    conn.close()


def test_old_receipts_describe_their_source_and_new_ones_keep_their_note(tmp_path: Path) -> None:
    """After the upgrade old rows read a note from their source; new rows store their own."""
    path = tmp_path / "photo-relay.db"
    database_of_the_release_before(path)
    db = Database(path)
    try:
        state = State(db)
        old_fallback, old_exif = state.get_item("a" * 64), state.get_item("b" * 64)
        state.record_received(
            NewItem(
                sha256="c" * 64,
                size=3,
                original_name="IMG_2.MOV",
                kind="video",
                captured_at="2024-05-03T10:00:00+00:00",
                captured_local="2024-05-03T12:00:00",
                captured_source="fallback",
                planned_path="2024/05/IMG_2.MOV",
                device=None,
                captured_note="The time the file arrived here, because of a test.",
            )
        )
        new = state.get_item("c" * 64)
    finally:
        db.close()
    with sqlite3.connect(path) as conn:
        assert schema_version(conn) == len(MIGRATIONS) > BEFORE
    assert old_fallback is not None and old_exif is not None and new is not None
    assert old_fallback.captured_note == CAPTURE_NOTES["fallback"]
    assert (old_exif.state, old_exif.captured_note) == ("verified", CAPTURE_NOTES["exif"])
    assert new.captured_note == "The time the file arrived here, because of a test."
