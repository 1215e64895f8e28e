"""The receipt says where its capture time came from and, when it is not the file's, why."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner

from app.cli.commands import main
from app.intake.media_boxes import MAX_BOXES
from app.store.db import Database
from app.store.state import State
from tests.conftest import Service, make_settings
from tests.support import samples
from tests.support.hostile_files import atom_bomb_movie
from tests.support.status_page import logged_in
from tests.support.uploads import put_blob, sha256_hex


def test_a_date_from_the_file_and_one_from_the_phone_say_so(service: Service) -> None:
    """EXIF: "EXIF data"; X-Captured-At: "Sent by the phone"."""
    exif = samples.jpeg(datetime(2024, 5, 1, 21, 4), seed=160)
    sent = samples.jpeg(datetime(2024, 5, 1, 21, 4), seed=161)
    with service.device() as client:
        from_file = put_blob(client, exif).json()
        from_phone = put_blob(client, sent, captured_at="2024-05-02T10:00:00+02:00").json()
    assert (from_file["captured_source"], from_file["captured_note"]) == (
        "exif",
        "Read from the photo's EXIF data.",
    )
    assert from_phone["captured_source"] == "client"
    assert from_phone["captured_note"].startswith("Sent by the phone")


def test_metadata_over_the_limits_gives_the_arrival_time_and_the_reason(service: Service) -> None:
    """The atom bomb's receipt and item page say: arrival time, because of the box cap."""
    data = atom_bomb_movie(MAX_BOXES + 100)
    with service.device() as client:
        receipt = put_blob(client, data, name="IMG_0162.MOV").json()
    note = receipt["captured_note"]
    assert receipt["captured_source"] == "fallback"
    assert note.startswith("The time the file arrived here, because its metadata could not be")
    assert f"within the limits (more than {MAX_BOXES} boxes" in note
    with logged_in(service) as browser:
        page = browser.get(f"/items/{sha256_hex(data)}").text
    assert "The time the file arrived here, because its metadata could not be read" in page


def test_an_unusable_date_in_the_file_is_said_in_words_not_iso(service: Service) -> None:
    """EXIF with an offset no zone uses: the note names that date as its clock showed it,
    the way the page says times ("1 May 2024, 21:04"), not as ISO 8601."""
    beyond = timezone(timedelta(hours=15))
    data = samples.jpeg(datetime(2024, 5, 1, 21, 4, tzinfo=beyond), seed=163)
    with service.device() as client:
        receipt = put_blob(client, data, name="IMG_0163.JPG").json()
    assert receipt["captured_source"] == "fallback"
    assert receipt["captured_note"] == (
        "The time the file arrived here, because the date in its metadata, 1 May 2024, 21:04, "
        "its UTC offset is beyond ±14:00, which no time zone uses."
    )
    assert "2024-05-01" not in receipt["captured_note"]


def test_a_file_without_any_date_says_it_carries_none(service: Service) -> None:
    """Bytes with no metadata at all: the arrival time, "the file carries no capture time"."""
    with service.device() as client:
        receipt = put_blob(client, b"plain bytes, no metadata", name="notes.bin").json()
    assert receipt["captured_note"] == (
        "The time the file arrived here, because the file carries no capture time."
    )


def test_an_imported_file_without_a_date_is_dated_by_its_modified_time(tmp_path: Path) -> None:
    """`photo-relay import`: no date in the bytes, so the file's mtime, and the note says so."""
    card = tmp_path / "card"
    card.mkdir()
    scan = card / "scan.bin"
    scan.write_bytes(b"a scanned letter, no metadata")
    os.utime(scan, (1_600_000_000, 1_600_000_000))
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir()  # import uses an existing data folder, never makes one
    result = CliRunner().invoke(
        main,
        ["import", str(card), "--data-dir", str(settings.data_dir)],
        env={"PHOTO_RELAY_MIN_FREE_BYTES": "0"},
    )
    assert result.exit_code == 0, result.output
    db = Database(settings.database_path)
    try:
        receipt = State(db).get_item(sha256_hex(scan.read_bytes()))
    finally:
        db.close()
    assert receipt is not None
    assert datetime.fromisoformat(receipt.captured_at).timestamp() == 1_600_000_000
    assert receipt.captured_note == (
        "The file's modified time, because the file carries no capture time."
    )
