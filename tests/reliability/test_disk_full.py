"""Disk full: the spool sits on a real 16 MiB filesystem (tmpfs) that the test fills up.

Uploads that do not fit get 507 with a message that says what to do; no temp file or partial
object is left; receipts given before are untouched; and once space returns the very same
running service accepts uploads again, with no restart. The same checks also run against
the reserve the code enforces (PHOTO_RELAY_MIN_FREE_BYTES) on the ordinary disk; where
`mount` is not allowed (not root, as on hosted CI) the tmpfs case is skipped, with a reason.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.conftest import add_device, make_settings
from tests.reliability.harness import Tally, blob, sha256_hex
from tests.support.servers import ThreadedService, wait_for

pytestmark = pytest.mark.reliability

SPOOL_SIZE = 16 * 1024 * 1024
# The reserve case shares the disk with everything else on the machine: leave enough room
# that other programs writing meanwhile cannot fill it before the test means to.
RESERVE_ROOM = 256 * 1024 * 1024


def mount_tmpfs(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SPOOL_SIZE}", "tmpfs", str(folder)],
        capture_output=True,
    )
    return result.returncode == 0


@pytest.fixture(params=["tmpfs", "reserve"])
def small_spool(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Settings, bool]]:
    """Settings whose spool is a 16 MiB tmpfs, or 256 MiB above the code-enforced reserve."""
    data_dir = tmp_path / "data"
    spool = data_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    mounted = request.param == "tmpfs" and mount_tmpfs(spool)
    if request.param == "tmpfs" and not mounted:
        pytest.skip("mount -t tmpfs is not allowed here (needs root); the reserve case runs")
    if mounted:
        settings = make_settings(tmp_path, min_free_bytes=0, spool_retention_days=30)
    else:
        free = shutil.disk_usage(spool).free
        settings = make_settings(
            tmp_path, min_free_bytes=max(free - RESERVE_ROOM, 0), spool_retention_days=30
        )
    try:
        yield settings, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(spool)], check=False)


def put(client: httpx.Client, data: bytes, name: str, *, stream: bool = False) -> httpx.Response:
    sha = sha256_hex(data)
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if stream:  # no Content-Length: the size is only found out while writing

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(data), 256 * 1024):
                yield data[start : start + 256 * 1024]

        return client.put(f"/v1/blobs/{sha}", content=chunks(), headers=headers)
    return client.put(f"/v1/blobs/{sha}", content=data, headers=headers)


def spool_is_clean(spool: Path) -> None:
    assert not list((spool / "tmp").iterdir()), "a temp file was left in the spool"
    for obj in (spool / "objects").rglob("*"):
        if obj.is_file():
            assert sha256_hex(obj.read_bytes()) == obj.name, f"partial object {obj}"


def test_full_spool_answers_507_keeps_nothing_partial_and_recovers(
    small_spool: tuple[Settings, bool],
) -> None:
    """Over-full uploads get a clear 507, nothing partial stays, and space returning heals it."""
    settings, mounted = small_spool
    tally = Tally(f"disk-full[{'tmpfs' if mounted else 'reserve'}]")
    token = add_device(settings.data_dir, "phone")
    server = ThreadedService(settings)
    server.start()
    spool = settings.spool_dir
    try:
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            kept = blob(1, 2_000_000)
            first = put(client, kept, "IMG_0001.JPG")
            assert first.status_code == 201
            ballast = spool / "ballast"  # another program eats the rest of the disk
            room = shutil.disk_usage(spool).free - settings.min_free_bytes
            with ballast.open("wb") as handle:
                left = room - 1_000_000
                while left > 0:
                    left -= handle.write(bytes(min(left, 8 * 1024 * 1024)))
            refused = 0
            for index, stream in enumerate([False, True, False, True]):
                data = blob(10 + index, 3_000_000)
                reply = put(client, data, f"IMG_{index + 10:04d}.JPG", stream=stream)
                assert reply.status_code == 507, reply.text
                error = reply.json()["error"]
                assert error["code"] == "insufficient_storage"
                assert "Free some disk space" in error["message"]
                refused += 1
                spool_is_clean(spool)
                assert client.get(f"/v1/items/{sha256_hex(data)}").status_code == 404
            receipt = client.get(f"/v1/items/{sha256_hex(kept)}").json()
            assert receipt["received_at"] == first.json()["received_at"]
            assert (
                spool / "objects" / sha256_hex(kept)[:2] / sha256_hex(kept)
            ).read_bytes() == kept
            ballast.unlink()  # the owner frees some space; the running service notices
            late = blob(99, 3_000_000)
            again = put(client, late, "IMG_0099.JPG", stream=True)
            assert again.status_code == 201, again.text
            wait_for(
                lambda: client.get(f"/v1/items/{sha256_hex(late)}").json()["state"] == "verified",
                what="the relay to copy the upload that fits again",
            )
            spool_is_clean(spool)
            tally.add("uploads_refused_507", refused)
            tally.add("items_checked", 2)
    finally:
        server.stop()
    tally.report()
