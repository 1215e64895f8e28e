"""End to end on the embedded default: upload by PUT, get a receipt, find the file in library/."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.conftest import Service, sha256_hex
from tests.support import samples
from tests.support.servers import wait_for


def test_put_new_then_duplicate_lands_once_in_date_folder(service: Service) -> None:
    """A new photo answers 201, the same again 200 with the same receipt; one copy lands."""
    taken = datetime(2024, 5, 1, 21, 4, tzinfo=timezone(timedelta(hours=2)))
    data = samples.heic(taken)
    sha = sha256_hex(data)
    headers = {"Content-Disposition": 'attachment; filename="IMG_0001.HEIC"'}
    with service.device() as client:
        first = client.put(f"/v1/blobs/{sha}", content=data, headers=headers)
        second = client.put(f"/v1/blobs/{sha}", content=data, headers=headers)
        assert first.status_code == 201, first.text
        assert second.status_code == 200, second.text
        assert first.json()["sha256"] == second.json()["sha256"] == sha
        assert first.json()["received_at"] == second.json()["received_at"]
        assert first.json()["captured_source"] == "exif"
        assert first.json()["planned_path"] == "2024/05/IMG_0001.HEIC"
        receipt = wait_for(
            lambda: (r := client.get(f"/v1/items/{sha}").json())["state"] == "verified" and r,
            what="the relay to verify the copy",
        )
    assert receipt["remote_path"] == "2024/05/IMG_0001.HEIC"
    landed = [p for p in service.library.rglob("*") if p.is_file()]
    assert landed == [service.library / "2024" / "05" / "IMG_0001.HEIC"]
    assert landed[0].read_bytes() == data
