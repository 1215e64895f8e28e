"""State that cannot stick: the database's disk fills while a copy is in flight.

The data folder (database, admin token, lock) is a real 2 MiB tmpfs, the spool a second,
larger tmpfs inside it (the technique of test_disk_full.py; mounting needs root, as on CI,
else the test is skipped with the reason). A copy to the test NextCloud is held at its
MOVE; meanwhile the test empties the database's write-ahead log and fills the disk, then
lets the copy finish: recording "verified" fails with SQLite's "database or disk is full".
What must hold: the service keeps answering; once the disk has room again the relay takes
the item up by itself, with no restart, and it lands verified exactly once (the next
attempt finds our content already there); `retry` brings it back at once as well.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from tests.conftest import Service, remote_settings, running
from tests.reliability.harness import Tally, blob, sha256_hex
from tests.support.faults import Fault
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.reliability

DATA_SIZE = 2 * 1024 * 1024
SPOOL_SIZE = 32 * 1024 * 1024
FOLDER = "Photos/iPhone"


def mount_tmpfs(folder: Path, size: int) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
    )
    return result.returncode == 0


@pytest.fixture
def small_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder on a 2 MiB filesystem, with its spool on a roomier one."""
    data_dir = tmp_path / "data"
    if not mount_tmpfs(data_dir, DATA_SIZE):
        pytest.skip("mount -t tmpfs is not allowed here (needs root, as on CI)")
    spool = data_dir / "spool"
    try:
        if not mount_tmpfs(spool, SPOOL_SIZE):
            pytest.skip("a second tmpfs could not be mounted")
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(spool)], capture_output=True)
        subprocess.run(["umount", "-l", str(data_dir)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem refuses one more byte."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def empty_the_write_ahead_log(database: Path) -> None:
    """Checkpoint and truncate the WAL, so the next commit has to grow it (on a full disk)."""
    conn = sqlite3.connect(database, timeout=10)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def item(service: Service, sha: str) -> dict[str, Any]:
    with service.admin() as admin:
        found: dict[str, Any] = admin.get(f"/v1/items/{sha}").json()
        return found


def journal(service: Service, sha: str) -> list[dict[str, Any]]:
    with service.admin() as admin:
        entries: list[dict[str, Any]] = admin.get(f"/v1/items/{sha}/journal").json()
        return entries


def send(service: Service, data: bytes) -> str:
    sha = sha256_hex(data)
    with service.device() as client:
        reply = client.put(
            f"/v1/blobs/{sha}",
            content=data,
            headers={"Content-Disposition": 'attachment; filename="IMG_0001.JPG"'},
        )
        assert reply.status_code == 201, reply.text
    return sha


def copy_with_a_full_database(
    service: Service, settings: Settings, nextcloud: DavServer, seed: int
) -> tuple[str, bytes, Path]:
    """Send one photo, hold its MOVE, fill the database's disk, let the MOVE go on.

    Returns once the relay has failed to record the outcome (the item still `relaying`).
    """
    data = blob(seed, 200_000)
    sha = sha256_hex(data)
    temp_name = sha[:16]  # the MOVE of our temp file into place names it
    hold = nextcloud.faults.add(Fault("hold", methods={"MOVE"}, path_contains=temp_name, times=1))
    assert send(service, data) == sha
    wait_for(lambda: hold.fired == 1, what="the copy to reach its MOVE")
    empty_the_write_ahead_log(settings.database_path)
    filler = fill(settings.data_dir)
    moves = nextcloud.faults.count("MOVE", temp_name)
    hold.released.set()
    wait_for(
        lambda: any("IMG_0001" in p for p in nextcloud.all_files()),
        what="the copy to land at the server",
    )
    # The outcome cannot be written: the item is still `relaying`, the service answers.
    wait_for(
        lambda: (
            "database" in (item(service, sha).get("last_error") or "")
            or item(service, sha)["state"] == "relaying"
        ),
        what="the relay to meet the full disk",
    )
    assert item(service, sha)["state"] == "relaying"
    with service.admin() as admin:
        assert admin.get("/healthz").status_code == 200
    assert nextcloud.faults.count("MOVE", temp_name) == moves
    return sha, data, filler


def landed_once(nextcloud: DavServer, sha: str, data: bytes, service: Service) -> None:
    receipt = item(service, sha)
    assert receipt["state"] == "verified", receipt
    copies = [p for p, content in nextcloud.all_files().items() if content == data]
    assert copies == [f"{FOLDER}/{receipt['remote_path']}"], copies
    assert [p for p in nextcloud.all_files() if ".photo-relay-" in p] == []


def test_a_full_database_disk_mid_copy_is_taken_up_again_by_itself(
    small_data_dir: Path, tmp_path: Path, nextcloud: DavServer
) -> None:
    """Disk full when the relay records "verified": once there is room, no restart and no
    button, the item is verified, its one copy found already there."""
    tally = Tally("database-disk-full")
    settings = remote_settings(tmp_path, nextcloud, data_dir=small_data_dir, min_free_bytes=0)
    with running(settings) as service:
        sha, data, filler = copy_with_a_full_database(service, settings, nextcloud, 1)
        puts = nextcloud.faults.count("PUT")
        filler.unlink()  # room again
        freed = time.monotonic()
        wait_for(
            lambda: item(service, sha)["state"] == "verified",
            timeout=30,
            what="the relay to take the item up again by itself",
        )
        landed_once(nextcloud, sha, data, service)
        assert nextcloud.faults.count("PUT") == puts  # nothing was sent twice
        messages = " ".join(e["message"] for e in journal(service, sha))
        assert "found already there" in messages
        tally.add("ms_from_room_again_to_verified", int((time.monotonic() - freed) * 1000))
        tally.add("items_checked")
    tally.report()


def test_retry_takes_up_an_item_whose_outcome_could_not_be_recorded(
    small_data_dir: Path, tmp_path: Path, nextcloud: DavServer
) -> None:
    """The same fault; with room again, the admin's retry puts the item to work at once."""
    settings = remote_settings(tmp_path, nextcloud, data_dir=small_data_dir, min_free_bytes=0)
    with running(settings) as service:
        sha, data, filler = copy_with_a_full_database(service, settings, nextcloud, 2)
        with service.admin() as admin:
            refused = admin.post("/v1/items/retry")  # still full: a clear answer, no harm
            assert refused.status_code in (200, 503, 507), refused.text
            filler.unlink()
            asked = time.monotonic()
            assert admin.post("/v1/items/retry").status_code == 200
        wait_for(
            lambda: item(service, sha)["state"] == "verified",
            timeout=10,
            what="retry to take the item up",
        )
        took = time.monotonic() - asked
        landed_once(nextcloud, sha, data, service)
    Tally("database-disk-full-retry", {"ms_from_retry_to_verified": int(took * 1000)}).report()
