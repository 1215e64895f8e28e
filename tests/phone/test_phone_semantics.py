"""Issue 14's table, row by row: the generated backup shortcut run under the phone's semantics.

Each test runs the plist in tests/support/shortcut_interpreter.py (whole-day date filters,
File Size as text, action errors, empty bodies, iCloud failures, killed runs) against a
live photo-relay, and checks what a person would: which photos are safe at home, and what
the notification said.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from markupsafe import escape

from app.phone.shortcut import build_backup
from tests.conftest import Service, make_settings, running, sha256_hex
from tests.support.photo_library import NOW, Library
from tests.support.shortcut_interpreter import BERLIN, Asset, Interrupted, Phone, run_shortcut

HOME = "Home Sweet Home"


@contextmanager
def photo_relay(tmp_path: Path, **overrides: object) -> Iterator[Service]:
    with running(make_settings(tmp_path, **overrides)) as service:
        yield service


def backup(service: Service, phone: Phone, *, wifi_answer: str = HOME, **options: object) -> None:
    answers = [service.base_url, service.device_token, wifi_answer]
    run_shortcut(build_backup(), phone, answers, **options)  # type: ignore[arg-type]


def stored(service: Service, assets: list[Asset]) -> list[Asset]:
    """The assets whose bytes, as the phone sends them now, the service holds."""
    with service.device() as client:
        return [
            a for a in assets if client.get(f"/v1/items/{sha256_hex(a.sent)}").status_code == 200
        ]


def back_up_until_quiet(service: Service, library: list[Asset], runs: int = 12) -> list[Phone]:
    """Run the automation until a run uploads nothing (or `runs` runs); returns each run."""
    done = []
    for _ in range(runs):
        phone = Phone(HOME, library)
        backup(service, phone)
        done.append(phone)
        if not phone.uploads() and not phone.alerts:
            break
    return done


def test_busy_days_are_walked_to_the_end(tmp_path: Path) -> None:
    """3 holiday days of 45 photos each: every photo is stored, though filters compare days."""
    library = Library()
    for back in (3, 2, 1):
        library.day(NOW - timedelta(days=back), 45)
    with photo_relay(tmp_path) as service:
        runs = back_up_until_quiet(service, library.assets)
        assert len(stored(service, library.assets)) == 135
        assert sum(len(p.uploads()) for p in runs) == 135  # and none twice
        assert all(not p.alerts for p in runs)


def test_an_ordinary_library_is_backed_up_whole(tmp_path: Path) -> None:
    """0-9 photos a day for 60 days: all stored; the last run says nothing is new."""
    library = Library(seed=3)
    photos = library.ordinary(60)
    with photo_relay(tmp_path) as service:
        runs = back_up_until_quiet(service, photos)
        assert len(stored(service, photos)) == len(photos)
        title, body = runs[-1].notifications[-1]
        assert title == "Photo backup" and body.startswith("Nothing new"), body


def test_a_burst_in_one_second_is_stored_whole(tmp_path: Path) -> None:
    """25 photos saved in the same second (more than a page) are all stored."""
    library = Library()
    library.day(NOW - timedelta(days=2), 3)
    library.burst(NOW - timedelta(days=1, hours=3), 25)
    library.day(NOW, 2)
    with photo_relay(tmp_path) as service:
        back_up_until_quiet(service, library.assets)
        assert len(stored(service, library.assets)) == len(library.assets)


def test_photos_taken_before_1970_are_found(tmp_path: Path) -> None:
    """A 1965 scan and a 1900 one (Date Taken at midnight) are backed up like any photo."""
    library = Library()
    scans = [
        library.photo(datetime(1965, 7, 1, 0, 0, 0, tzinfo=BERLIN), added=NOW - timedelta(days=30)),
        library.photo(datetime(1900, 1, 1, 0, 0, 0, tzinfo=BERLIN), added=NOW - timedelta(days=30)),
    ]
    library.ordinary(5)
    with photo_relay(tmp_path) as service:
        back_up_until_quiet(service, library.assets)
        assert stored(service, scans) == scans
        assert len(stored(service, library.assets)) == len(library.assets)


def test_an_edit_after_the_backup_is_sent(tmp_path: Path) -> None:
    """A photo edited after its backup (same name, date and size in MB) sends its render."""
    library = Library()
    photos = library.ordinary(10, most=4)
    with photo_relay(tmp_path) as service:
        back_up_until_quiet(service, photos)
        edited = photos[len(photos) // 2]
        library.edit(edited, NOW + timedelta(hours=1))
        assert len(edited.sent) == len(edited.data)
        later = back_up_until_quiet(service, photos)
        assert stored(service, [edited]) == [edited]
        assert [u for p in later for u in p.uploads()] == [edited.filename]


def test_a_file_that_always_fails_blocks_nothing(tmp_path: Path) -> None:
    """An iCloud original that never downloads is skipped; every newer photo is stored."""
    library = Library()
    library.ordinary(4, most=3)
    broken = library.photo(NOW - timedelta(days=2, hours=1), icloud_fails=True)
    newer = library.ordinary(2, most=3)
    newer.append(library.photo(NOW - timedelta(minutes=5)))
    others = [a for a in library.assets if a is not broken]
    with photo_relay(tmp_path) as service:
        runs = back_up_until_quiet(service, library.assets)
        assert len(stored(service, others)) == len(others)
        bodies = " ".join(body for p in runs for _, body in p.notifications)
        assert broken.name in bodies and "iCloud" in bodies, bodies
        assert "next run sends the rest" not in bodies


def test_a_file_too_large_is_skipped_and_named(tmp_path: Path) -> None:
    """A 413 for one photo does not stop the run; the notification names it and why."""
    library = Library()
    library.ordinary(3, most=3)
    huge = library.photo(NOW - timedelta(hours=5))
    huge.data += b"\0" * 300_000
    library.photo(NOW - timedelta(hours=1))
    others = [a for a in library.assets if a is not huge]
    with photo_relay(tmp_path, max_upload_bytes=200_000) as service:
        runs = back_up_until_quiet(service, library.assets)
        assert len(stored(service, others)) == len(others)
        body = runs[0].notifications[-1][1]
        assert huge.name in body and "too large" in body, body


def test_deleting_backed_up_photos_is_not_an_error(tmp_path: Path) -> None:
    """After the user deletes photos already backed up, a run ends normally: nothing new."""
    library = Library()
    photos = library.ordinary(6, most=5)
    with photo_relay(tmp_path) as service:
        back_up_until_quiet(service, photos)
        phone = Phone(HOME, [])
        backup(service, phone)
        assert phone.alerts == []
        assert phone.notifications == [("Photo backup", "Nothing new to back up.")]


def test_every_run_is_closed_on_the_service(tmp_path: Path) -> None:
    """The run's end reaches the service even when its request has no fields (no body)."""
    library = Library()
    photos = library.ordinary(3, most=3)
    with photo_relay(tmp_path) as service:
        back_up_until_quiet(service, photos)
        with service.admin() as client:
            runs = client.get("/v1/backup/runs").json()
        assert runs and {r["state"] for r in runs} == {"finished"}


def test_an_unreadable_or_odd_wifi_name_does_not_stop_backups(tmp_path: Path) -> None:
    """No Wi-Fi name in the background, or a curly apostrophe: the backup still runs."""
    library = Library()
    photos = library.ordinary(2, most=3)
    with photo_relay(tmp_path) as service:
        unreadable = Phone(None, photos)
        backup(service, unreadable)
        curly = Phone("Anna\u2019s Wi-Fi", photos)
        backup(service, curly, wifi_answer="Anna's Wi-Fi")
        assert len(stored(service, photos)) == len(photos)
        assert unreadable.notifications and curly.notifications


def test_away_from_home_nothing_is_sent_but_the_service_hears_of_it(tmp_path: Path) -> None:
    """On another network the shortcut stops quietly; the service records that it fired."""
    library = Library()
    photos = library.ordinary(2, most=3)
    with photo_relay(tmp_path) as service:
        away = Phone("Cafe Free Wi-Fi", photos)
        backup(service, away)
        assert away.uploads() == [] and away.notifications == [] and away.alerts == []
        with service.admin() as client:
            runs = client.get("/v1/backup/runs").json()
        assert [(r["state"], r["network"]) for r in runs] == [("away", "Cafe Free Wi-Fi")]


def test_a_run_killed_after_any_action_loses_nothing(tmp_path: Path) -> None:
    """Killed after 1, 2, 3... actions, the runs still end with every photo stored once."""
    library = Library(seed=5)
    photos = library.ordinary(8, most=6)
    with photo_relay(tmp_path, shortcut_batch_size=5) as service:
        uploads: list[str] = []
        limit = 1
        for _ in range(60):
            phone = Phone(HOME, photos)
            try:
                backup(service, phone, kill_after_actions=limit)
            except Interrupted:
                limit += 7
            uploads += phone.uploads()
            if not phone.uploads() and phone.notifications and not phone.alerts:
                break
        assert len(stored(service, photos)) == len(photos)
        assert sorted(set(uploads)) == sorted(uploads)  # no file was sent twice


@pytest.mark.parametrize("modified_filter", ["day", "exact"])
def test_photos_added_later_with_an_old_date_are_found(
    tmp_path: Path, modified_filter: Literal["day", "exact"]
) -> None:
    """AirDropped or saved from Messages today, taken years ago: the next run sends it,
    whether Last Modified Date filters compare whole days or exact times (§1, open)."""
    library = Library()
    photos = library.ordinary(5, most=4)
    with photo_relay(tmp_path) as service:
        for _ in range(3):
            backup(service, Phone(HOME, photos, modified_filter=modified_filter))
        old = library.photo(datetime(2019, 3, 4, 12, 0, tzinfo=BERLIN), added=NOW)
        later = Phone(HOME, [*photos, old], modified_filter=modified_filter)
        backup(service, later)
        assert later.uploads() == [old.filename]
        assert later.notifications[-1][1].startswith("1 new photo backed up"), later.notifications


def test_a_live_photo_sends_its_still_only(tmp_path: Path) -> None:
    """Shortcuts hands out a Live Photo's still; its video is never sent (§3)."""
    library = Library()
    live = library.photo(NOW - timedelta(hours=3), live_video=b"MOV part of a Live Photo")
    with photo_relay(tmp_path) as service:
        back_up_until_quiet(service, library.assets)
        assert stored(service, [live]) == [live]
        with service.device() as client:
            video = hashlib.sha256(b"MOV part of a Live Photo").hexdigest()
            assert client.get(f"/v1/items/{video}").status_code == 404


def test_two_thousand_photos_in_one_day_are_all_stored(tmp_path: Path) -> None:
    """A day of 2,000 photos (more than any page) is listed whole and stored whole."""
    library = Library()
    library.day(NOW - timedelta(days=3), 5)
    big = library.day(NOW - timedelta(days=2), 2000)
    library.day(NOW - timedelta(days=1), 5)
    with photo_relay(tmp_path, shortcut_max_batches=50) as service:
        runs = back_up_until_quiet(service, library.assets)
        assert len(stored(service, big)) == 2000
        assert len(stored(service, library.assets)) == len(library.assets)
        sent = [u for p in runs for u in p.uploads()]
        assert len(sent) == len(set(sent)) == len(library.assets)


@pytest.mark.reliability
def test_a_first_backup_of_five_thousand_photos_stores_each_once(tmp_path: Path) -> None:
    """Issue 14's "done when": busy days, bursts, old scans, later additions; every photo
    stored exactly once, no byte sent twice, and the last notification says nothing is new."""
    library = Library(seed=14)
    library.photo(datetime(1965, 7, 1, tzinfo=BERLIN), added=NOW - timedelta(days=400))
    library.ordinary(400, most=9)
    for back in (300, 200, 100):
        library.day(NOW - timedelta(days=back, hours=-1), 150)
    library.burst(NOW - timedelta(days=50, hours=2), 40)
    while len(library.assets) < 4990:
        library.day(NOW - timedelta(days=420 + len(library.assets) % 300), 20)
    with photo_relay(tmp_path, shortcut_max_batches=200) as service:
        runs = back_up_until_quiet(service, library.assets, runs=40)
        for taken in (datetime(2001, 1, 1, tzinfo=BERLIN), datetime(1999, 5, 5, tzinfo=BERLIN)):
            library.photo(taken, added=NOW)  # AirDropped after the first backup
        while len(library.assets) < 5000:
            library.photo(NOW - timedelta(minutes=len(library.assets) % 50))
        runs += back_up_until_quiet(service, library.assets, runs=10)
        sent = [u for p in runs for u in p.uploads()]
        assert len(sent) == len(set(sent)) == 5000
        assert sum(p.bytes_uploaded() for p in runs) == sum(len(a.sent) for a in library.assets)
        assert len(stored(service, library.assets)) == 5000
        assert runs[-1].notifications[-1][1].startswith("Nothing new")


def test_a_failed_photo_is_tried_again_once_its_back_off_is_over(tmp_path: Path) -> None:
    """An old photo that could not be read waits; when its back-off ends, the next run
    walks its day again (no sweep needed) and sends it."""
    library = Library()
    old = library.photo(NOW - timedelta(days=300), icloud_fails=True)
    library.ordinary(3, most=3)
    with photo_relay(tmp_path, shortcut_sweep_days=30) as service:
        back_up_until_quiet(service, library.assets)
        assert stored(service, [old]) == []
        with service.admin() as client:
            failing = client.get("/v1/backup/failing").json()
            page = client.get("/").text
        assert [(f["name"], f["attempts"]) for f in failing] == [(old.name, 3)]
        assert "Not sent from the phone yet" in page and old.name in page  # the status page
        assert str(escape(failing[0]["reason"])) in page
        old.icloud_fails = False  # the download works again
        database = sqlite3.connect(service.settings.database_path)
        with database:  # as if the back-off had passed
            database.execute("UPDATE backup_failures SET next_try_at = '2000-01-01T00:00:00Z'")
        phone = Phone(HOME, library.assets)
        backup(service, phone)
        assert phone.uploads() == [old.filename]
        assert stored(service, [old]) == [old]
