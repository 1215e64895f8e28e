"""SIGKILL at the worst moments: a real `photo-relay serve` subprocess killed and restarted.

Killed while receiving an upload, the restarted service holds no trace of the partial
file and the client's retry succeeds; killed while the relay copies a large file, the
restarted relay finishes it with exactly one verified, byte-identical copy.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.hashing import sha256_file
from app.targets.local import TEMP_PREFIX
from tests.conftest import add_device
from tests.support import samples
from tests.support.on_disk import (
    item_rows,
    library_files,
    library_temp_files,
    spool_objects,
    spool_temp_files,
)
from tests.support.servers import ServiceProcess, find_free_port, wait_for
from tests.support.uploads import wait_verified

pytestmark = pytest.mark.reliability

MiB = 1024 * 1024
TAKEN = datetime(2024, 9, 10, 11, 12)


def write_big_photo(path: Path, size: int, seed: int) -> str:
    """A JPEG of `size` bytes (dated TAKEN) written in chunks; returns its SHA-256."""
    block = os.urandom(MiB)
    with path.open("wb") as out:
        head = samples.jpeg(TAKEN, seed=seed)
        out.write(head)
        remaining = size - len(head)
        while remaining > 0:
            out.write(block[: min(MiB, remaining)])
            remaining -= MiB
    return sha256_file(path)[0]


def partial_body(
    path: Path, stop_after: int, stopped: threading.Event, release: threading.Event
) -> Iterator[bytes]:
    """Stream the start of a file, then signal `stopped` and hang until `release`."""
    sent = 0
    with path.open("rb") as source:
        while sent < stop_after and (chunk := source.read(256 * 1024)):
            yield chunk
            sent += len(chunk)
    stopped.set()
    release.wait(60)
    raise ConnectionAbortedError("the test stopped sending on purpose")


def copy_started_or_done(client: httpx.Client, sha: str, temp: Path) -> Callable[[], bool]:
    """A condition: the relay's temp copy exists, or the item is already verified."""

    def check() -> bool:
        return temp.exists() or client.get(f"/v1/items/{sha}").json()["state"] == "verified"

    return check


@pytest.fixture
def process(tmp_path: Path) -> Iterator[ServiceProcess]:
    data_dir = tmp_path / "data"
    env = {
        "PHOTO_RELAY_MIN_FREE_BYTES": "0",
        "PHOTO_RELAY_LOG_LEVEL": "warning",
        "PHOTO_RELAY_RELAY_RETRY_BASE_SECONDS": "0.05",
        "PHOTO_RELAY_RELAY_RETRY_MAX_SECONDS": "0.5",
    }
    service = ServiceProcess(data_dir, find_free_port(), env=env)
    try:
        yield service
    finally:
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)  # hundreds of MB: do not keep them


def test_killed_mid_upload_leaves_no_partial_object_and_the_retry_succeeds(
    process: ServiceProcess, tmp_path: Path
) -> None:
    """SIGKILL after 2 MiB of an 8 MiB upload: nothing remains, and sending again gives 201."""
    settings = Settings(data_dir=process.data_dir)
    token = add_device(process.data_dir, "phone")
    source = tmp_path / "IMG_0100.JPG"
    sha = write_big_photo(source, 8 * MiB, seed=100)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Length": str(source.stat().st_size),
        "Content-Disposition": 'attachment; filename="IMG_0100.JPG"',
    }
    url = f"{process.base_url}/v1/blobs/{sha}"
    stopped, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def send_part() -> None:
        body = partial_body(source, 2 * MiB, stopped, release)
        try:
            httpx.put(url, content=body, headers=headers, timeout=60)
        except BaseException as exc:
            failures.append(exc)

    process.start()
    sender = threading.Thread(target=send_part)
    sender.start()
    try:
        assert stopped.wait(60)
        wait_for(
            lambda: any(p.stat().st_size >= MiB for p in spool_temp_files(settings)),
            what="the partial upload to reach the spool",
        )
        process.kill()
    finally:
        release.set()
        sender.join(60)
    assert failures, "the interrupted upload must not have been answered"
    assert spool_temp_files(settings), "the kill should have hit a partial upload"
    assert spool_objects(settings) == [] and item_rows(settings) == []

    process.start()
    assert spool_temp_files(settings) == []
    assert spool_objects(settings) == [] and item_rows(settings) == []
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=process.base_url, headers=auth, timeout=60) as client:
        assert client.get(f"/v1/items/{sha}").status_code == 404
        with source.open("rb") as body:
            retry = client.put(f"/v1/blobs/{sha}", content=body, headers=headers)
        assert retry.status_code == 201, retry.text
        receipt = wait_verified(client, sha)
    landed = process.data_dir / "library" / receipt["remote_path"]
    assert landed == process.data_dir / "library/2024/09/IMG_0100.JPG"
    assert sha256_file(landed) == (sha, source.stat().st_size)
    assert [p.name for p in spool_objects(settings)] == [sha]


def test_killed_mid_relay_finishes_after_restart_with_exactly_one_copy(
    process: ServiceProcess, tmp_path: Path
) -> None:
    """SIGKILL while a 128 MiB file is being copied: after restart, one verified copy."""
    settings = Settings(data_dir=process.data_dir)
    library = settings.local_library_dir
    token = add_device(process.data_dir, "phone")
    auth = {"Authorization": f"Bearer {token}"}
    process.start()
    sent: dict[str, str] = {}  # sha256 -> name
    hit: str | None = None
    for attempt in range(3):
        name = f"IMG_02{attempt:02d}.JPG"
        source = tmp_path / name
        sha = write_big_photo(source, 128 * MiB, seed=200 + attempt)
        sent[sha] = name
        with httpx.Client(base_url=process.base_url, headers=auth, timeout=120) as client:
            with source.open("rb") as body:
                response = client.put(
                    f"/v1/blobs/{sha}",
                    content=body,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'},
                )
            assert response.status_code == 201, response.text
            temp = library / "2024" / "09" / f"{TEMP_PREFIX}{sha[:16]}.tmp"
            wait_for(copy_started_or_done(client, sha, temp), what="the relay to start copying")
        source.unlink()
        if temp.exists():
            process.kill()
            if temp.exists() and not (library / "2024" / "09" / name).exists():
                hit = sha
                break
            process.start()  # the copy finished just before the kill: try a new file
    assert hit is not None, "no kill landed while the relay was copying"
    assert library_temp_files(library), "the interrupted copy's temp file should remain"
    assert item_rows(settings) == sorted(sent)

    process.start()
    with httpx.Client(base_url=process.base_url, headers=auth, timeout=60) as client:
        receipts = {sha: wait_verified(client, sha, timeout=120) for sha in sent}
        journal = client.get(f"/v1/items/{hit}/journal").json()
    assert library_temp_files(library) == []
    assert sorted(p.name for p in library_files(library)) == sorted(sent.values())
    copy = library / receipts[hit]["remote_path"]
    assert copy == library / "2024" / "09" / sent[hit]
    assert sha256_file(copy)[0] == hit
    assert receipts[hit]["attempts"] == 2
    assert "relay.resumed" in [e["event"] for e in journal]
