"""The generated shortcuts, run by tests/support/shortcut_interpreter.py on a live photo-relay."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx

from app.phone.shortcut import build_backup, build_share
from tests.conftest import Service, make_settings, running, sha256_hex
from tests.support import samples
from tests.support.shortcut_interpreter import Asset, Interrupted, Phone, run_shortcut

HOME = "Home Sweet Home"
BERLIN = timezone(timedelta(hours=2))


@contextmanager
def small_batches(tmp_path: Path, **overrides: object) -> Iterator[Service]:
    """photo-relay with small batches, so a handful of photos spans several pages."""
    values: dict[str, object] = {"shortcut_batch_size": 2, "shortcut_max_batches": 50}
    values.update(overrides)
    with running(make_settings(tmp_path, **values)) as service:
        yield service


def days_ago(days: float, seed: int) -> datetime:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)
    return (base + timedelta(seconds=seed)).astimezone(BERLIN)


def photo(number: int, taken: datetime) -> Asset:
    if number % 3 == 0:
        return Asset(f"IMG_{number:04d}", "MOV", taken, samples.quicktime(taken, seed=number))
    if number % 3 == 1:
        return Asset(f"IMG_{number:04d}", "HEIC", taken, samples.heic(taken, seed=number))
    return Asset(f"IMG_{number:04d}", "JPG", taken, samples.jpeg(taken, seed=number))


def camera_roll(count: int, start: int = 1) -> list[Asset]:
    """`count` photos and videos, one a day up to today (JPEG, HEIC and MOV mixed)."""
    return [photo(n, days_ago(count - i, n)) for i, n in enumerate(range(start, start + count))]


def backup(service: Service, phone: Phone, **options: object) -> None:
    answers = [service.base_url, service.device_token, HOME]
    run_shortcut(build_backup(), phone, answers, **options)  # type: ignore[arg-type]


def stored(service: Service, assets: list[Asset]) -> list[str]:
    """Names of the assets whose exact bytes the service holds."""
    with service.device() as client:
        return [
            a.filename
            for a in assets
            if client.get(f"/v1/items/{sha256_hex(a.data)}").status_code == 200
        ]


def last_notification(phone: Phone) -> tuple[str, str]:
    assert len(phone.notifications) == 1, phone.notifications
    return phone.notifications[0]


def test_first_run_sends_everything_and_second_run_no_bytes(tmp_path: Path) -> None:
    """Run 1 uploads the whole library once; run 2 checks again but uploads nothing."""
    roll = camera_roll(5)
    with small_batches(tmp_path) as service:
        first = Phone(HOME, roll)
        backup(service, first)
        assert sorted(first.uploads()) == sorted(a.filename for a in roll)
        assert stored(service, roll) == [a.filename for a in roll]
        assert last_notification(first) == (
            "Photo backup",
            "5 new photos and videos backed up.",
        )
        second = Phone(HOME, roll)
        backup(service, second)
        assert second.uploads() == []
        assert last_notification(second)[0] == "Photo backup"
        body = last_notification(second)[1]
        assert body.startswith("Nothing new: ") and body.endswith("were already safe."), body


def test_photo_saved_later_with_older_date_is_backed_up(tmp_path: Path) -> None:
    """A photo that appears after a run with an older capture date is still sent next run."""
    roll = camera_roll(4)
    with small_batches(tmp_path, shortcut_overlap_days=14, shortcut_sweep_days=7) as service:
        backup(service, Phone(HOME, roll))
        from_messages = photo(50, days_ago(6, 50))  # inside the overlap window
        years_old = photo(51, days_ago(800, 51))  # far older: only a sweep finds it
        later = Phone(HOME, [*roll, from_messages, years_old])
        backup(service, later)
        assert later.uploads() == [from_messages.filename]
    with small_batches(tmp_path / "sweeping", shortcut_sweep_days=0) as service:
        backup(service, Phone(HOME, roll))
        later = Phone(HOME, [*roll, from_messages, years_old])
        backup(service, later)
        assert sorted(later.uploads()) == sorted([from_messages.filename, years_old.filename])
        assert last_notification(later)[1].startswith("2 new photos and videos backed up")


def test_cut_off_run_resumes_without_sending_anything_twice(tmp_path: Path) -> None:
    """A run that iOS ends after 3 uploads is continued by the next; no file goes twice."""
    roll = camera_roll(7)
    with small_batches(tmp_path) as service:
        cut = Phone(HOME, roll)
        try:
            backup(service, cut, cut_after_uploads=3)
        except Interrupted:
            pass
        else:
            raise AssertionError("the run was meant to be cut off")
        assert len(cut.uploads()) == 3 and cut.notifications == []
        resumed = Phone(HOME, roll)
        backup(service, resumed)
        assert sorted(cut.uploads() + resumed.uploads()) == sorted(a.filename for a in roll)
        assert stored(service, roll) == [a.filename for a in roll]
        with service.admin() as client:
            runs = client.get("/v1/backup/runs").json()
        assert [r["state"] for r in runs] == ["finished", "interrupted"]
        assert runs[1]["sent_new"] == 3


def test_on_another_wifi_nothing_is_sent(tmp_path: Path) -> None:
    """Away from home the shortcut only tells the service it ran; nothing is sent or shown."""
    with small_batches(tmp_path) as service:
        phone = Phone("Cafe Free Wi-Fi", camera_roll(3))
        backup(service, phone)
        assert [r.url.rsplit("/v1/", 1)[1] for r in phone.requests] == ["backup/runs"]
        assert phone.uploads() == [] and phone.notifications == []


def test_server_error_mid_run_notifies_and_loses_nothing(tmp_path: Path) -> None:
    """From the third upload on the disk is full: the run goes on, names what was not sent
    and why; once there is room, the next run sends the rest."""
    roll = camera_roll(6)
    with small_batches(tmp_path) as service:
        spool = service.server.app_services.spool

        def disk_fills_up(phone: Phone) -> None:
            if len(phone.uploads()) == 2:
                spool.min_free_bytes = 1 << 62

        failing = Phone(HOME, roll)
        backup(service, failing, before_request=disk_fills_up)
        title, body = last_notification(failing)
        assert title == "Photo backup"
        assert "no room" in body.lower() or "space" in body.lower(), body
        assert "4 photos were not sent" in body and "tried again later" in body
        assert [r.status for r in failing.requests if r.uploaded] == [201, 201, 507, 507, 507, 507]
        assert len(stored(service, roll)) == 2
        spool.min_free_bytes = 0
        recovered = Phone(HOME, roll)
        backup(service, recovered)
        assert len(recovered.uploads()) == 4
        assert stored(service, roll) == [a.filename for a in roll]
        with service.admin() as client:
            runs = client.get("/v1/backup/runs").json()
        assert [r["state"] for r in runs] == ["finished", "finished"]
        assert runs[1]["sent_new"] == 2


def test_share_sheet_uploads_each_item_and_notifies(tmp_path: Path) -> None:
    """Shared items are each uploaded; the notification counts new and already safe."""
    roll = camera_roll(3)
    with small_batches(tmp_path) as service:
        answers = [service.base_url, service.device_token]
        first = Phone("anything")
        run_shortcut(build_share(), first, answers, shortcut_input=roll[:1])
        assert last_notification(first) == ("Sent to photo-relay", "1 new photo sent.")
        again = Phone("anything")
        run_shortcut(build_share(), again, answers, shortcut_input=roll)
        assert again.uploads() == [a.filename for a in roll]
        assert last_notification(again)[1] == "2 new photos and videos sent, 1 was already safe."
        assert stored(service, roll) == [a.filename for a in roll]


def test_wrong_token_stops_before_sending(tmp_path: Path) -> None:
    """A revoked or mistyped token gives one notification saying what to check."""
    with small_batches(tmp_path) as service:
        phone = Phone(HOME, camera_roll(2))
        run_shortcut(build_backup(), phone, [service.base_url, "prd_wrong", HOME])
        title, body = last_notification(phone)
        assert title == "Photo backup did not start"
        assert "token" in body and phone.uploads() == []
        assert httpx.get(service.base_url + "/healthz").status_code == 200


def test_runs_limited_to_few_batches_still_reach_every_photo(tmp_path: Path) -> None:
    """With 2 batches a run, each run carries on where the last stopped; overlap cannot stall."""
    roll = camera_roll(6)
    with small_batches(tmp_path, shortcut_max_batches=2) as service:
        sent: list[str] = []
        for _ in range(4):
            phone = Phone(HOME, roll)
            backup(service, phone)
            sent += phone.uploads()
        assert sorted(sent) == sorted(a.filename for a in roll)
        newest = photo(60, days_ago(0, 60))
        runs_needed = 0
        while newest.filename not in sent:
            runs_needed += 1
            assert runs_needed <= 3, "the new photo was never reached"
            phone = Phone(HOME, [*roll, newest])
            backup(service, phone)
            sent += phone.uploads()
            if newest.filename not in phone.uploads():
                assert last_notification(phone)[1].endswith("More to do: the next run carries on.")
        assert sorted(sent) == sorted(a.filename for a in [*roll, newest])
