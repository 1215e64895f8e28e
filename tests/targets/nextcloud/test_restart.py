"""The service as a real process relaying big files to the NextCloud test server.

SIGKILL in the middle of a chunked upload resumes after the last complete chunk (or, on a
server that lists no chunk sizes and refuses single-chunk DELETEs, restarts once); a large
file goes through with the service's memory staying far below the file's size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import add_device
from tests.support.faults import Fault
from tests.support.servers import ServiceProcess, find_free_port, wait_for
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.reliability

MiB = 1024 * 1024


def service_env(server: DavServer, **extra: str) -> dict[str, str]:
    return {
        "PHOTO_RELAY_TARGET": "nextcloud",
        "PHOTO_RELAY_TARGET_URL": server.base_url,
        "PHOTO_RELAY_TARGET_USER": server.user,
        "PHOTO_RELAY_TARGET_PASSWORD": server.password,
        "PHOTO_RELAY_TARGET_FOLDER": "/Photos/iPhone",
        "PHOTO_RELAY_MIN_FREE_BYTES": "0",
        "PHOTO_RELAY_RELAY_RETRY_BASE_SECONDS": "0.05",
        "PHOTO_RELAY_RELAY_RETRY_MAX_SECONDS": "0.5",
        "PHOTO_RELAY_LOG_LEVEL": "warning",
        **extra,
    }


def write_file(path: Path, size: int) -> str:
    """A file of `size` pseudo-random bytes, written a block at a time; its SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for offset in range(0, size, MiB):
            piece = block[: min(MiB, size - offset)]
            piece = offset.to_bytes(8, "big") + piece[8:]
            digest.update(piece)
            out.write(piece)
    return digest.hexdigest()


def blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(MiB):
            yield block


def upload(base_url: str, token: str, path: Path, sha: str, name: str) -> None:
    response = httpx.put(
        f"{base_url}/v1/blobs/{sha}",
        content=blocks(path),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Length": str(path.stat().st_size),
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Captured-At": "2024-05-01T21:04:00+02:00",
        },
        timeout=120,
    )
    assert response.status_code == 201, response.text


def state_of(base_url: str, token: str, sha: str) -> str:
    response = httpx.get(
        f"{base_url}/v1/items/{sha}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return str(response.json()["state"])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    for block in blocks(path):
        digest.update(block)
    return digest.hexdigest()


def test_sigkill_during_chunked_upload_resumes_from_the_last_chunk(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Killed while chunk 6 of 12 is on the wire, the service resends from chunk 6 only."""
    data_dir = tmp_path / "data"
    token = add_device(data_dir, "phone")
    env = service_env(
        nextcloud,
        PHOTO_RELAY_TARGET_CHUNK_THRESHOLD_BYTES=str(4 * MiB),
        PHOTO_RELAY_TARGET_CHUNK_BYTES=str(MiB),
    )
    video = tmp_path / "VID_0001.MOV"
    sha = write_file(video, 12 * MiB - 12345)
    hold = nextcloud.faults.add(Fault("hold", methods={"PUT"}, path_contains="/00006", times=1))
    service = ServiceProcess(data_dir, find_free_port(), env)
    with service.running():
        upload(service.base_url, token, video, sha, "VID_0001.MOV")
        wait_for(lambda: hold.fired, timeout=60, what="chunk 6 to be on the wire")
        service.kill()
    hold.released.set()
    for number in range(1, 6):
        assert nextcloud.faults.count("PUT", f"/{number:05d}") == 1
    restarted = ServiceProcess(data_dir, find_free_port(), env)
    with restarted.running():
        wait_for(
            lambda: state_of(restarted.base_url, token, sha) == "verified",
            timeout=60,
            what="the video to be verified after the restart",
        )
    for number in range(1, 6):
        assert nextcloud.faults.count("PUT", f"/{number:05d}") == 1, number
    # Chunk 6 may have reached the server whole from the socket buffer before the kill;
    # either way it is sent at most once more, and every later chunk exactly once.
    assert nextcloud.faults.count("PUT", "/00006") in (1, 2)
    for number in range(7, 13):
        assert nextcloud.faults.count("PUT", f"/{number:05d}") == 1, number
    files = [p for p in nextcloud.files_dir.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["VID_0001.MOV"]
    assert sha256_of(files[0]) == sha
    assert not any(nextcloud.uploads_dir.iterdir())


@pytest.mark.nextcloud(chunk_sizes_listed=False, chunk_delete_refused=True)
def test_sigkill_mid_upload_restarts_once_where_the_server_cannot_say_what_it_has(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Killed at chunk 6 of 12 where chunk sizes are not listed: one clean restart, one copy."""
    data_dir = tmp_path / "data"
    token = add_device(data_dir, "phone")
    env = service_env(
        nextcloud,
        PHOTO_RELAY_TARGET_CHUNK_THRESHOLD_BYTES=str(4 * MiB),
        PHOTO_RELAY_TARGET_CHUNK_BYTES=str(MiB),
    )
    video = tmp_path / "VID_0001.MOV"
    sha = write_file(video, 12 * MiB - 12345)
    hold = nextcloud.faults.add(Fault("hold", methods={"PUT"}, path_contains="/00006", times=1))
    service = ServiceProcess(data_dir, find_free_port(), env)
    with service.running():
        upload(service.base_url, token, video, sha, "VID_0001.MOV")
        wait_for(lambda: hold.fired, timeout=60, what="chunk 6 to be on the wire")
        service.kill()
    hold.released.set()
    restarted = ServiceProcess(data_dir, find_free_port(), env)
    with restarted.running():
        wait_for(
            lambda: state_of(restarted.base_url, token, sha) == "verified",
            timeout=60,
            what="the video to be verified after the restart",
        )
    # Chunks 1-6 of the first upload, then all 12 of a fresh one; nothing chunk by chunk.
    assert nextcloud.faults.count("PUT", "/uploads/") == 6 + 12
    assert nextcloud.faults.count("MKCOL", "/uploads/") == 2
    # The old folder is deleted whole (again if the first DELETE raced the killed chunk's
    # late write on the server), never chunk by chunk.
    assert nextcloud.faults.count("DELETE", "/uploads/") >= 1
    assert nextcloud.faults.count("DELETE", "/0000") == 0
    files = [p for p in nextcloud.files_dir.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["VID_0001.MOV"]
    assert sha256_of(files[0]) == sha
    assert not any(nextcloud.uploads_dir.iterdir())


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_large_file_is_relayed_with_flat_memory(tmp_path: Path, nextcloud: DavServer) -> None:
    """A 256 MiB video reaches NextCloud intact while the service's peak memory stays small."""
    data_dir = tmp_path / "data"
    token = add_device(data_dir, "phone")
    size = 256 * MiB
    video = tmp_path / "VID_0002.MOV"
    sha = write_file(video, size)
    service = ServiceProcess(data_dir, find_free_port(), service_env(nextcloud))
    with service.running():
        assert service.process is not None
        upload(service.base_url, token, video, sha, "VID_0002.MOV")
        wait_for(
            lambda: state_of(service.base_url, token, sha) == "verified",
            timeout=180,
            what="the large video to be verified",
        )
        peak = _peak_rss_bytes(service.process.pid)
    video.unlink()
    stored = nextcloud.file("Photos/iPhone/2024/05/VID_0002.MOV")
    assert sha256_of(stored) == sha
    assert nextcloud.faults.count("PUT", "/uploads/") == 26  # 10 MiB chunks
    assert peak < 160 * MiB, f"peak RSS {peak / MiB:.0f} MiB for a {size / MiB:.0f} MiB file"


def test_batch_survives_a_kill_and_arrives_exactly_once(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A batch with name clashes, a video and a foreign file survives SIGKILL exactly once."""
    # The kill comes while one photo's final MOVE is held by the server, which then
    # completes it: after the restart that photo is found in place, not sent again.
    data_dir = tmp_path / "data"
    token = add_device(data_dir, "phone")
    env = service_env(
        nextcloud,
        PHOTO_RELAY_TARGET_CHUNK_THRESHOLD_BYTES=str(2 * MiB),
        PHOTO_RELAY_TARGET_CHUNK_BYTES=str(MiB),
        PHOTO_RELAY_RELAY_PARALLEL="1",
    )
    foreign = nextcloud.file("Photos/iPhone/2024/05/IMG_0002.JPG")
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"already in NextCloud")
    files: dict[str, tuple[Path, str]] = {}
    for index, (name, size) in enumerate(
        [("IMG_0001.JPG", 3000), ("IMG_0001.JPG", 4000), ("IMG_0002.JPG", 5000)]
    ):
        path = tmp_path / f"photo-{index}"
        files[f"{index}-{name}"] = (path, write_file(path, size))
    video = tmp_path / "VID_0003.MOV"
    files["video-VID_0003.MOV"] = (video, write_file(video, 5 * MiB + 17))
    first_sha = files["0-IMG_0001.JPG"][1]
    hold = nextcloud.faults.add(
        Fault("hold", methods={"MOVE"}, path_contains=first_sha[:16], times=1)
    )
    service = ServiceProcess(data_dir, find_free_port(), env)
    with service.running():
        for key, (path, sha) in files.items():
            upload(service.base_url, token, path, sha, key.partition("-")[2])
        wait_for(lambda: hold.fired, timeout=60, what="the first photo's MOVE to be held")
        service.kill()
    hold.released.set()
    wait_for(lambda: _moved(nextcloud), what="the held MOVE to finish on the server")
    restarted = ServiceProcess(data_dir, find_free_port(), env)
    with restarted.running():
        wait_for(
            lambda: all(
                state_of(restarted.base_url, token, s) == "verified" for _, s in files.values()
            ),
            timeout=90,
            what="every receipt to be verified",
        )
    stored = {
        str(p.relative_to(nextcloud.files_dir)): sha256_of(p)
        for p in nextcloud.files_dir.rglob("*")
        if p.is_file()
    }
    assert sorted(stored.values()) == sorted([s for _, s in files.values()] + [sha256_of(foreign)])
    assert foreign.read_bytes() == b"already in NextCloud"
    assert stored["Photos/iPhone/2024/05/IMG_0001.JPG"] == first_sha
    # The held photo was PUT once only: after the restart it was found in place.
    assert nextcloud.faults.count("PUT", first_sha[:16]) == 1


def _moved(server: DavServer) -> bool:
    return server.file("Photos/iPhone/2024/05/IMG_0001.JPG").exists()
