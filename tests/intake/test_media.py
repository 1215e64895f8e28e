"""Capture time and kind: client value first, then EXIF/QuickTime, then the receive time.

The date folder follows the local capture time: the wall clock where a photo was taken
(EXIF carries its offset), and for videos, whose QuickTime date is UTC, the configured
PHOTO_RELAY_TIMEZONE.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import nothing_kept
from tests.support.uploads import post_form, put_blob, sha256_hex, wait_verified

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.fixture
def berlin(start_service: Callable[..., Service]) -> Service:
    return start_service(timezone="Europe/Berlin")


def test_client_header_wins_over_exif(service: Service) -> None:
    """X-Captured-At overrides the EXIF date and names the folder."""
    data = samples.jpeg(datetime(2024, 5, 1, 21, 4, tzinfo=PLUS_TWO), seed=60)
    with service.device() as client:
        response = put_blob(client, data, name="a.jpg", captured_at="2019-11-12T13:14:15+01:00")
    assert response.status_code == 201, response.text
    assert response.json()["captured_source"] == "client"
    assert response.json()["captured_at"] == "2019-11-12T13:14:15+01:00"
    assert response.json()["planned_path"] == "2019/11/a.jpg"


def test_client_query_parameter_and_form_field_give_the_capture_time(service: Service) -> None:
    """`?captured_at=` and the form's `captured_at` field work like the header."""
    by_query, by_form = samples.heic(seed=61), samples.heic(seed=62)
    with service.device() as client:
        query = client.put(
            f"/v1/blobs/{sha256_hex(by_query)}",
            content=by_query,
            params={"captured_at": "2018-03-04T05:06:07Z", "name": "q.HEIC"},
        )
        form = post_form(client, [("f.HEIC", by_form)], {"captured_at": ["2017-08-09T10:11:12"]})
    assert query.status_code == 201, query.text
    assert (query.json()["captured_source"], query.json()["planned_path"]) == (
        "client",
        "2018/03/q.HEIC",
    )
    item = form.json()["items"][0]
    assert (item["captured_source"], item["planned_path"]) == ("client", "2017/08/f.HEIC")


@pytest.mark.parametrize("maker", [samples.jpeg, samples.heic], ids=["jpeg", "heic"])
def test_exif_date_with_offset_names_the_folder_in_local_time(
    service: Service, maker: Callable[..., bytes]
) -> None:
    """Just after midnight on 1 January (+02:00) is 2024/01 (UTC is still 2023); mtime exact."""
    taken = datetime(2024, 1, 1, 0, 30, tzinfo=PLUS_TWO)
    data = maker(taken, seed=63)
    with service.device() as client:
        response = put_blob(client, data, name="IMG.X")
        receipt = wait_verified(client, sha256_hex(data))
    assert response.json()["captured_source"] == "exif"
    assert response.json()["kind"] == "photo"
    assert datetime.fromisoformat(response.json()["captured_at"]) == taken
    assert response.json()["captured_at"].endswith("+02:00")
    assert receipt["remote_path"] == "2024/01/IMG.X"
    stored = service.library / "2024" / "01" / "IMG.X"
    assert stored.stat().st_mtime == taken.timestamp()


def test_exif_date_without_offset_is_taken_as_the_wall_clock(service: Service) -> None:
    """EXIF without OffsetTimeOriginal is the camera's local time, used as is for the folder."""
    data = samples.jpeg(datetime(2022, 12, 31, 23, 59), seed=64)
    with service.device() as client:
        response = put_blob(client, data, name="IMG.JPG")
    assert response.json()["captured_source"] == "exif"
    assert response.json()["captured_at"] == "2022-12-31T23:59:00"
    assert response.json()["planned_path"] == "2022/12/IMG.JPG"


def test_quicktime_date_is_utc_converted_to_the_configured_zone(berlin: Service) -> None:
    """A video made at 23:30 UTC on New Year's Eve lands in 2025/01 for Berlin (00:30)."""
    created = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)
    data = samples.quicktime(created, seed=65)
    with berlin.device() as client:
        response = put_blob(client, data, name="IMG_0065.MOV")
        receipt = wait_verified(client, sha256_hex(data))
    assert response.json()["kind"] == "video"
    assert response.json()["captured_source"] == "quicktime"
    assert datetime.fromisoformat(response.json()["captured_at"]) == created
    assert receipt["remote_path"] == "2025/01/IMG_0065.MOV"
    assert (berlin.library / "2025/01/IMG_0065.MOV").stat().st_mtime == created.timestamp()


def test_without_any_date_the_receive_time_is_used_in_the_configured_zone(
    berlin: Service,
) -> None:
    """A file with no metadata and no client date falls back to now, in local time."""
    data = b"not a photo, just some bytes " * 10
    before = datetime.now(ZoneInfo("Europe/Berlin"))
    with berlin.device() as client:
        response = put_blob(client, data, name="notes.txt")
    after = datetime.now(ZoneInfo("Europe/Berlin"))
    assert response.json()["captured_source"] == "fallback"
    assert response.json()["kind"] == "other"
    captured = datetime.fromisoformat(response.json()["captured_at"])
    assert before - timedelta(seconds=1) <= captured <= after + timedelta(seconds=1)
    assert response.json()["planned_path"] in {
        f"{moment:%Y/%m}/notes.txt" for moment in (before, after)
    }


def test_a_photo_without_exif_falls_back_to_the_receive_time(service: Service) -> None:
    """A JPEG without a date is still a photo, dated when it arrived."""
    data = samples.jpeg(None, seed=66)
    with service.device() as client:
        response = put_blob(client, data, name="scan.jpg")
    assert (response.json()["kind"], response.json()["captured_source"]) == ("photo", "fallback")


def test_damaged_metadata_never_costs_the_upload(service: Service) -> None:
    """A file that looks like a JPEG but is cut short is stored, dated by the fallback."""
    data = samples.jpeg(datetime(2024, 1, 1), seed=67)[:40]
    with service.device() as client:
        response = put_blob(client, data, name="broken.jpg")
    assert response.status_code == 201, response.text
    assert response.json()["captured_source"] == "fallback"


def test_kind_comes_from_the_bytes_not_the_name(service: Service) -> None:
    """A movie named .JPG is a video, a JPEG named .MOV a photo."""
    movie = samples.quicktime(datetime(2024, 1, 1, tzinfo=UTC), seed=68)
    photo = samples.jpeg(seed=69)
    with service.device() as client:
        as_jpg = put_blob(client, movie, name="IMG_0068.JPG")
        as_mov = put_blob(client, photo, name="IMG_0069.MOV")
    assert as_jpg.json()["kind"] == "video"
    assert as_mov.json()["kind"] == "photo"


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00", "01/02/2024", "2024-02-30"])
def test_a_capture_time_that_is_not_iso_8601_is_refused_with_422(
    service: Service, value: str
) -> None:
    """A bad X-Captured-At or ?captured_at= gets 422 naming the expected form; nothing kept."""
    data = samples.jpeg(seed=70)
    with service.device() as client:
        by_header = put_blob(client, data, captured_at=value)
        by_query = client.put(
            f"/v1/blobs/{sha256_hex(data)}", content=data, params={"captured_at": value}
        )
    for response in (by_header, by_query):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "bad_capture_time"
        assert "ISO 8601" in response.json()["error"]["message"]
    assert nothing_kept(service.settings)
