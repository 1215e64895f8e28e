"""The relay to the local target: never overwrite, deterministic alternatives, verify, journal.

Files at the destination that photo-relay did not put there are never touched; the same
content already in place counts as done.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.targets.local import TEMP_PREFIX, LocalTarget
from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import library_files, library_temp_files, record_fsyncs
from tests.support.servers import wait_for
from tests.support.uploads import put_blob, sha256_hex, wait_verified

DAY = datetime(2024, 7, 14, 10, 0)


def events(client: httpx.Client, sha: str) -> list[dict[str, Any]]:
    journal: list[dict[str, Any]] = client.get(f"/v1/items/{sha}/journal").json()
    return journal


def test_two_different_photos_with_the_same_name_and_day_are_both_kept(service: Service) -> None:
    """The second IMG_0001.JPG lands at 'IMG_0001 (<sha8>).JPG' and the journal says why."""
    first, second = samples.jpeg(DAY, seed=80), samples.jpeg(DAY, seed=81)
    with service.device() as client:
        assert put_blob(client, first, name="IMG_0001.JPG").status_code == 201
        wait_verified(client, sha256_hex(first))
        assert put_blob(client, second, name="IMG_0001.JPG").status_code == 201
        receipt = wait_verified(client, sha256_hex(second))
        journal = events(client, sha256_hex(second))
    alternative = f"2024/07/IMG_0001 ({sha256_hex(second)[:8]}).JPG"
    assert receipt["planned_path"] == "2024/07/IMG_0001.JPG"
    assert receipt["remote_path"] == alternative
    assert (service.library / "2024/07/IMG_0001.JPG").read_bytes() == first
    assert (service.library / alternative).read_bytes() == second
    taken = [e for e in journal if e["event"] == "relay.name_taken"]
    assert len(taken) == 1 and "2024/07/IMG_0001.JPG" in taken[0]["message"]
    assert "taken by another file" in journal[-1]["message"]
    assert len(library_files(service.library)) == 2


def test_a_foreign_file_at_the_target_path_is_left_untouched(service: Service) -> None:
    """A file photo-relay did not write keeps its bytes and mtime; ours gets another name."""
    foreign = service.library / "2024/07/IMG_0002.JPG"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"the owner's own file")
    os.utime(foreign, (1_000_000_000, 1_000_000_000))
    data = samples.jpeg(DAY, seed=82)
    with service.device() as client:
        put_blob(client, data, name="IMG_0002.JPG")
        receipt = wait_verified(client, sha256_hex(data))
    assert foreign.read_bytes() == b"the owner's own file"
    assert foreign.stat().st_mtime == 1_000_000_000
    assert receipt["remote_path"] == f"2024/07/IMG_0002 ({sha256_hex(data)[:8]}).JPG"
    assert (service.library / receipt["remote_path"]).read_bytes() == data


def test_the_same_content_already_at_the_path_counts_as_done(service: Service) -> None:
    """A photo copied there by hand is verified in place: no second copy, journal says so."""
    data = samples.jpeg(DAY, seed=83)
    by_hand = service.library / "2024/07/IMG_0003.JPG"
    by_hand.parent.mkdir(parents=True)
    by_hand.write_bytes(data)
    with service.device() as client:
        put_blob(client, data, name="IMG_0003.JPG")
        receipt = wait_verified(client, sha256_hex(data))
        journal = events(client, sha256_hex(data))
    assert receipt["remote_path"] == "2024/07/IMG_0003.JPG"
    assert receipt["verified_by"] == "sha256-reread"
    assert "found already there" in journal[-1]["message"]
    assert library_files(service.library) == [by_hand]


def test_a_leftover_temp_copy_is_cleared_when_the_file_is_found_in_place(
    service: Service,
) -> None:
    """After a crash between linking and tidying up, no temp copy stays in the library."""
    data = samples.jpeg(DAY, seed=84)
    sha = sha256_hex(data)
    folder = service.library / "2024/07"
    folder.mkdir(parents=True)
    (folder / "IMG_0004.JPG").write_bytes(data)
    (folder / f"{TEMP_PREFIX}{sha[:16]}.tmp").write_bytes(data[:100])
    with service.device() as client:
        put_blob(client, data, name="IMG_0004.JPG")
        wait_verified(client, sha)
    assert library_temp_files(service.library) == []
    assert library_files(service.library) == [folder / "IMG_0004.JPG"]


def test_names_that_differ_only_in_case_are_treated_as_the_same_name(service: Service) -> None:
    """IMG_0005.JPG never sits beside img_0005.jpg (they clash on NextCloud and macOS)."""
    foreign = service.library / "2024/07/img_0005.jpg"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"someone else's photo")
    first, second = samples.jpeg(DAY, seed=85), samples.jpeg(DAY, seed=86)
    with service.device() as client:
        put_blob(client, first, name="IMG_0005.JPG")
        one = wait_verified(client, sha256_hex(first))
        put_blob(client, second, name="Img_0005.Jpg")
        two = wait_verified(client, sha256_hex(second))
    assert one["remote_path"] == f"2024/07/IMG_0005 ({sha256_hex(first)[:8]}).JPG"
    assert two["remote_path"] == f"2024/07/Img_0005 ({sha256_hex(second)[:8]}).Jpg"
    assert foreign.read_bytes() == b"someone else's photo"
    assert len(library_files(service.library)) == 3


def test_same_content_under_another_case_counts_as_done(service: Service) -> None:
    """img_0006.jpg already holding our bytes is the copy of IMG_0006.JPG."""
    data = samples.jpeg(DAY, seed=87)
    existing = service.library / "2024/07/img_0006.jpg"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(data)
    with service.device() as client:
        put_blob(client, data, name="IMG_0006.JPG")
        receipt = wait_verified(client, sha256_hex(data))
    assert receipt["remote_path"] == "2024/07/img_0006.jpg"
    assert library_files(service.library) == [existing]


def test_the_same_photo_always_lands_at_the_same_path(service: Service) -> None:
    """Sending a verified photo again changes nothing at the destination."""
    data = samples.heic(DAY, seed=88)
    with service.device() as client:
        put_blob(client, data, name="IMG_0007.HEIC")
        first = wait_verified(client, sha256_hex(data))
        again = put_blob(client, data, name="IMG_0007.HEIC")
    assert again.status_code == 200
    assert again.json()["remote_path"] == first["remote_path"] == "2024/07/IMG_0007.HEIC"
    assert len(library_files(service.library)) == 1


def test_a_destination_problem_is_retried_until_it_works(service: Service) -> None:
    """A file where the date folder should be makes the copy fail; fixed, the retry lands."""
    blocker = service.library / "2024"
    service.library.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"in the way")
    data = samples.jpeg(DAY, seed=89)
    sha = sha256_hex(data)
    with service.device() as client, service.admin() as admin:
        put_blob(client, data, name="IMG_0008.JPG")
        receipt = wait_for(
            lambda: (r := client.get(f"/v1/items/{sha}").json())["last_error"] and r,
            what="the first attempt to fail",
        )
        assert receipt["state"] in ("retry", "relaying")
        status = admin.get("/v1/status").json()
        assert status["last_error"]["sha256"] == sha
        assert status["oldest_pending"]["sha256"] == sha
        blocker.unlink()
        receipt = wait_verified(client, sha)
        journal = events(client, sha)
    assert receipt["attempts"] >= 2
    assert receipt["last_error"] is None
    # a file in the way is a problem a person may have to fix: it counts towards giving up
    assert any(e["event"] == "relay.problem" for e in journal)
    assert (service.library / "2024/07/IMG_0008.JPG").read_bytes() == data


def test_same_name_sent_back_to_back_still_gives_each_photo_its_own_file(
    service: Service,
) -> None:
    """Two IMG_0009.JPG queued together are copied one after the other, never clobbered."""
    first, second = samples.jpeg(DAY, seed=90), samples.jpeg(DAY, seed=91)
    with service.device() as client:
        assert put_blob(client, first, name="IMG_0009.JPG").status_code == 201
        assert put_blob(client, second, name="IMG_0009.JPG").status_code == 201
        one = wait_verified(client, sha256_hex(first))
        two = wait_verified(client, sha256_hex(second))
    assert one["remote_path"] == "2024/07/IMG_0009.JPG"
    assert two["remote_path"] == f"2024/07/IMG_0009 ({sha256_hex(second)[:8]}).JPG"
    assert (service.library / one["remote_path"]).read_bytes() == first
    assert (service.library / two["remote_path"]).read_bytes() == second


def test_a_folder_with_the_photo_s_name_counts_as_taken(service: Service) -> None:
    """A folder called IMG_0010.JPG is left alone and the photo gets the alternative name."""
    folder = service.library / "2024/07/IMG_0010.JPG"
    folder.mkdir(parents=True)
    data = samples.jpeg(DAY, seed=92)
    with service.device() as client:
        put_blob(client, data, name="IMG_0010.JPG")
        receipt = wait_verified(client, sha256_hex(data), timeout=10)
    assert receipt["remote_path"] == f"2024/07/IMG_0010 ({sha256_hex(data)[:8]}).JPG"
    assert receipt["attempts"] == 1
    assert folder.is_dir()


def test_failed_items_are_put_back_by_the_admin_retry(
    start_service: Callable[..., Service],
) -> None:
    """After the last attempt an item is failed; POST /v1/items/retry requeues it to success."""
    service = start_service(relay_max_attempts=2)
    blocker = service.library / "2024"
    blocker.write_bytes(b"in the way")
    data = samples.jpeg(DAY, seed=93)
    sha = sha256_hex(data)
    with service.device() as client, service.admin() as admin:
        put_blob(client, data, name="IMG_0011.JPG")
        failed = wait_for(
            lambda: (r := client.get(f"/v1/items/{sha}").json())["state"] == "failed" and r,
            what="the item to fail",
        )
        assert failed["attempts"] == 2 and failed["last_error"]
        assert admin.get("/v1/status").json()["counts"]["failed"] == 1
        assert events(client, sha)[-1]["event"] == "relay.failed"
        blocker.unlink()
        assert admin.post("/v1/items/retry").json() == {"requeued": 1}
        receipt = wait_verified(client, sha)
    assert receipt["remote_path"] == "2024/07/IMG_0011.JPG"
    assert (service.library / "2024/07/IMG_0011.JPG").read_bytes() == data


def test_a_new_library_folder_is_made_durable_before_a_copy_is_put_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verified copy lets the spool's copy go, so the folders it sits in must survive a
    power cut too: each new one is fsynced in its parent."""
    library = tmp_path / "library"
    library.mkdir()
    fsynced = record_fsyncs(monkeypatch)
    asyncio.run(LocalTarget(library).ensure_folder("2024/07"))
    assert (library / "2024/07").is_dir()
    assert fsynced == [library, library / "2024"]


def test_the_local_copy_is_whole_and_verified_whether_or_not_blocks_can_be_shared(
    tmp_path: Path,
) -> None:
    """On btrfs or XFS the copy shares the spool file's blocks; elsewhere the bytes are
    copied. Either way the library holds the same bytes, with the capture time as mtime,
    and no temp file is left (run with --basetemp on such a file system to take the
    other way: `python3 run.py test -k blocks_can_be_shared --basetemp /mnt/xfs/t`)."""
    library, spool = tmp_path / "library", tmp_path / "spool"
    library.mkdir()
    spool.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 5)
    source = spool / sha256_hex(data)
    source.write_bytes(data)
    target = LocalTarget(library)
    captured = datetime(2024, 7, 14, 10, 0).astimezone()
    asyncio.run(target.ensure_folder("2024/07"))
    put = target.put_new(
        "2024/07/IMG_0003.JPG", source, size=len(data), sha256=sha256_hex(data), captured=captured
    )
    verification = asyncio.run(put)
    copy = library / "2024/07/IMG_0003.JPG"
    assert verification is not None and verification.method == "sha256-reread"
    assert copy.read_bytes() == data
    assert copy.stat().st_mtime == captured.timestamp()
    assert library_temp_files(library) == []
    source.write_bytes(b"changed")  # a shared block is copied on write: the copy keeps its bytes
    assert copy.read_bytes() == data
