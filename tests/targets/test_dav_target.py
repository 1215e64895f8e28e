"""The WebDAV and NextCloud targets against a real WsgiDAV server, with and without faults."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from app.errors import (
    ConfigurationError,
    NameTaken,
    TargetAuthFailed,
    TargetFull,
    TargetUnavailable,
    VerificationFailed,
)
from app.store.chunk_progress import ChunkProgress
from app.targets import open_target
from app.targets.nextcloud.target import NextcloudTarget
from app.targets.webdav import READ_SIZE, TEMP_PREFIX, DavTarget, file_stream, temp_path
from tests.conftest import remote_settings
from tests.support.faults import Fault
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer

T = TypeVar("T")
CAPTURED = datetime(2024, 5, 1, 21, 4, 0)
FOLDER = "Photos/iPhone/2024/05"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def upload_name(sha: str) -> str:
    """The temporary name a file is uploaded under (requests for it, not the trial's)."""
    return temp_path("IMG.JPG", sha)


def source(tmp_path: Path, size: int, seed: int = 0) -> tuple[Path, bytes, str]:
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    data = data[:size]
    path = tmp_path / f"source-{seed}-{size}"
    path.write_bytes(data)
    return path, data, hashlib.sha256(data).hexdigest()


def target_for(tmp_path: Path, server: DavServer, **overrides: object) -> DavTarget:
    target = open_target(remote_settings(tmp_path, server, **overrides))
    assert isinstance(target, DavTarget)
    return target


async def put(target: DavTarget, path: str, file: Path, sha: str) -> Any:
    try:
        await target.ensure_folder(path.rpartition("/")[0])
        return await target.put_new(
            path, file, size=file.stat().st_size, sha256=sha, captured=CAPTURED
        )
    finally:
        await target.close()


def test_nextcloud_put_lands_with_capture_time_and_server_hash(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A small file arrives byte-identical via one PUT, mtime = capture time, proven by X-Hash."""
    file, data, sha = source(tmp_path, 5000)
    proof = run(put(target_for(tmp_path, nextcloud), "2024/05/IMG_0001.JPG", file, sha))
    assert nextcloud.all_files() == {f"{FOLDER}/IMG_0001.JPG": data}
    stored = nextcloud.file(f"{FOLDER}/IMG_0001.JPG")
    assert stored.stat().st_mtime == CAPTURED.timestamp()
    assert proof.method == "size+x-hash-sha256"
    assert proof.file_id  # NextCloud keeps a file's id when it is moved into place
    assert nextcloud.nextcloud is not None
    assert nextcloud.nextcloud.checksums[f"{FOLDER}/IMG_0001.JPG"] == f"SHA256:{sha}"
    assert nextcloud.faults.count("PUT", upload_name(sha)) == 1
    assert nextcloud.faults.count("PUT", "uploads") == 0


def test_plain_webdav_is_verified_by_reading_back(tmp_path: Path, webdav_server: DavServer) -> None:
    """Without a server hash the copy is read back and hashed before it counts."""
    file, data, sha = source(tmp_path, 3000)
    proof = run(put(target_for(tmp_path, webdav_server), "2024/05/IMG_0001.JPG", file, sha))
    assert proof.method == "size+sha256-readback"
    assert webdav_server.all_files() == {f"{FOLDER}/IMG_0001.JPG": data}


def test_read_back_off_checks_size_only(tmp_path: Path, webdav_server: DavServer) -> None:
    """With read-back turned off a plain WebDAV copy is checked by size, and says so."""
    file, _, sha = source(tmp_path, 3000)
    target = target_for(tmp_path, webdav_server, target_verify_read_back=False)
    proof = run(put(target, "2024/05/IMG_0001.JPG", file, sha))
    assert proof.method == "size-only"
    assert webdav_server.faults.count("GET") == 0


@pytest.mark.parametrize("ignore_preconditions", [False, True])
def test_foreign_file_is_never_touched(
    tmp_path: Path, nextcloud: DavServer, ignore_preconditions: bool
) -> None:
    """A file already at the path stays as it was, even on a server ignoring Overwrite: F."""
    nextcloud.faults.ignore_preconditions = ignore_preconditions
    foreign = nextcloud.file(f"{FOLDER}/IMG_0001.JPG")
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"the owner's own picture")
    os.utime(foreign, (1_600_000_000, 1_600_000_000))
    file, _, sha = source(tmp_path, 4000)
    with pytest.raises(NameTaken):
        run(put(target_for(tmp_path, nextcloud), "2024/05/IMG_0001.JPG", file, sha))
    # Our own proven temp copy may be kept (for a MOVE to another name); nothing else.
    kept = {k: v for k, v in nextcloud.all_files().items() if upload_name(sha) not in k}
    assert kept == {f"{FOLDER}/IMG_0001.JPG": b"the owner's own picture"}
    assert foreign.stat().st_mtime == 1_600_000_000


def test_move_refused_by_overwrite_f_leaves_existing_file(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """Name taken between the look and the MOVE: the other file stays, and the proven copy
    is moved to the alternative name without being sent again."""
    file, data, sha = source(tmp_path, 4000)
    target = target_for(tmp_path, webdav_server)
    foreign = webdav_server.file(f"{FOLDER}/IMG_0001.JPG")

    async def race() -> None:
        await target.ensure_folder("2024/05")
        original = target.upload

        async def upload_then_someone_writes(*args: Any, **kwargs: Any) -> Any:
            proof = await original(*args, **kwargs)
            foreign.write_bytes(b"appeared meanwhile")
            return proof

        target.upload = upload_then_someone_writes  # type: ignore[method-assign]
        try:
            with pytest.raises(NameTaken):
                await target.put_new(
                    "2024/05/IMG_0001.JPG", file, size=len(data), sha256=sha, captured=CAPTURED
                )
            await target.put_new(
                "2024/05/IMG_0001 (x).JPG", file, size=len(data), sha256=sha, captured=CAPTURED
            )
        finally:
            await target.close()

    run(race())
    assert webdav_server.all_files() == {
        f"{FOLDER}/IMG_0001.JPG": b"appeared meanwhile",
        f"{FOLDER}/IMG_0001 (x).JPG": data,
    }
    assert webdav_server.faults.count("PUT", upload_name(sha)) == 1
    assert webdav_server.faults.bytes_received("PUT", upload_name(sha)) == len(data)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("store_nothing", (TargetUnavailable, VerificationFailed)),
        ("truncate", VerificationFailed),
        ("error_body", TargetUnavailable),
        ("drop", TargetUnavailable),
    ],
)
def test_a_lying_or_broken_put_never_counts_and_leaves_nothing_visible(
    tmp_path: Path, webdav_server: DavServer, kind: str, error: Any
) -> None:
    """201-but-nothing, a truncated copy, 200 with an error page or a cut connection all fail."""
    file, data, sha = source(tmp_path, 20000)
    webdav_server.faults.add(
        Fault(kind, methods={"PUT"}, path_contains=upload_name(sha), times=1)  # type: ignore[arg-type]
    )
    target = target_for(tmp_path, webdav_server)
    with pytest.raises(error):
        run(put(target, "2024/05/IMG_0001.JPG", file, sha))
    assert f"{FOLDER}/IMG_0001.JPG" not in webdav_server.all_files()
    # The next attempt works and leaves exactly one file, no temp.
    run(put(target_for(tmp_path, webdav_server), "2024/05/IMG_0001.JPG", file, sha))
    assert webdav_server.all_files() == {f"{FOLDER}/IMG_0001.JPG": data}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, TargetAuthFailed),
        (403, TargetAuthFailed),
        (507, TargetFull),
        (423, TargetUnavailable),
        (429, TargetUnavailable),
        (503, TargetUnavailable),
        (500, TargetUnavailable),
    ],
)
def test_status_codes_map_to_one_retry_policy(
    tmp_path: Path, nextcloud: DavServer, status: int, error: type[Exception]
) -> None:
    """401/403 mean credentials, 507 full, 423/429/5xx try later."""
    nextcloud.faults.add(Fault("status", status=status, methods={"PUT"}))
    file, _, sha = source(tmp_path, 1000)
    with pytest.raises(error) as raised:
        run(put(target_for(tmp_path, nextcloud), "2024/05/IMG_0001.JPG", file, sha))
    if status in (401, 403):
        assert "NextCloud rejected the credentials" in str(raised.value)
    if status == 507:
        assert "NextCloud is full" in str(raised.value)


def test_chunked_upload_for_large_files(tmp_path: Path, nextcloud: DavServer) -> None:
    """Over the threshold the file goes in numbered chunks and one MOVE with the capture time."""
    file, data, sha = source(tmp_path, 2_500_000)
    target = target_for(
        tmp_path,
        nextcloud,
        target_chunk_threshold_bytes=1_000_000,
        target_chunk_bytes=1 << 20,
    )
    proof = run(put(target, "2024/05/VID_0001.MOV", file, sha))
    assert nextcloud.all_files() == {f"{FOLDER}/VID_0001.MOV": data}
    assert nextcloud.faults.count("PUT", "/uploads/") == 3
    assert nextcloud.faults.count("MOVE", "/.file") == 1
    assert proof.method == "size+x-hash-sha256"
    assert nextcloud.file(f"{FOLDER}/VID_0001.MOV").stat().st_mtime == CAPTURED.timestamp()
    assert not any(nextcloud.uploads_dir.iterdir())


def test_chunked_upload_resumes_after_the_last_complete_chunk(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A connection dropped during chunk 3 resumes at chunk 3; chunks 1-2 are not sent again."""
    file, data, sha = source(tmp_path, 4_500_000)
    overrides: dict[str, Any] = {
        "target_chunk_threshold_bytes": 1_000_000,
        "target_chunk_bytes": 1 << 20,
    }
    nextcloud.faults.add(Fault("drop", methods={"PUT"}, path_contains="/00003", times=1))
    # Progress lives in memory here (no database); the service test covers a restart.
    progress = ChunkProgress(None)
    settings = remote_settings(tmp_path, nextcloud, **overrides)
    with pytest.raises(TargetUnavailable):
        run(put(NextcloudTarget(settings.destination, progress), "a/VID.MOV", file, sha))
    run(put(NextcloudTarget(settings.destination, progress), "a/VID.MOV", file, sha))
    assert nextcloud.all_files() == {"Photos/iPhone/a/VID.MOV": data}
    for chunk in ("00001", "00002"):
        assert nextcloud.faults.count("PUT", f"/{chunk}") == 1
    assert nextcloud.faults.count("PUT", "/00003") == 2
    assert nextcloud.faults.count("PUT", "/00005") == 1


def test_server_without_chunking_gets_one_streamed_put(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """A NextCloud target on a server with no chunk endpoint falls back to a single PUT."""
    file, data, sha = source(tmp_path, 2_000_000)
    settings = remote_settings(
        tmp_path,
        webdav_server,
        target="nextcloud",
        target_url=webdav_server.base_url,
        target_chunk_threshold_bytes=1_000_000,
    )
    target = open_target(settings)
    assert isinstance(target, DavTarget)
    run(put(target, "2024/05/VID.MOV", file, sha))
    assert webdav_server.all_files() == {f"{FOLDER}/VID.MOV": data}
    assert webdav_server.faults.count("MKCOL", "/uploads/") == 1
    assert webdav_server.faults.count("PUT", upload_name(sha)) == 1


def test_413_switches_to_chunked_upload(tmp_path: Path, nextcloud: DavServer) -> None:
    """A proxy refusing the body size (413) makes the target send the file in chunks."""
    file, data, sha = source(tmp_path, 300_000)
    nextcloud.faults.add(
        Fault("status", status=413, methods={"PUT"}, path_contains=upload_name(sha))
    )
    target = target_for(tmp_path, nextcloud, target_chunk_bytes=100_000)
    run(put(target, "2024/05/IMG.JPG", file, sha))
    assert nextcloud.all_files() == {f"{FOLDER}/IMG.JPG": data}
    assert nextcloud.faults.count("PUT", "/uploads/") == 3


def test_a_file_in_the_way_of_a_folder_is_an_error_not_a_folder(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """MKCOL's 405 only counts as 'exists' when PROPFIND shows a collection."""
    blocker = webdav_server.file("Photos/iPhone/2024")
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"not a folder")
    target = target_for(tmp_path, webdav_server)

    async def ensure() -> None:
        try:
            await target.ensure_folder("2024/05")
        finally:
            await target.close()

    with pytest.raises(TargetUnavailable, match="is a file, not a folder"):
        run(ensure())
    assert blocker.read_bytes() == b"not a folder"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"target_url": "ftp://example.org/dav"}, "PHOTO_RELAY_TARGET_URL"),
        ({"target_url": "not a url"}, "PHOTO_RELAY_TARGET_URL"),
        ({"target_user": None}, "PHOTO_RELAY_TARGET_USER"),
        ({"target_url": None}, "PHOTO_RELAY_TARGET_URL"),
    ],
)
def test_misconfiguration_is_reported_in_plain_words(
    tmp_path: Path, nextcloud: DavServer, overrides: dict[str, Any], expected: str
) -> None:
    """A malformed URL or a missing user names the setting to fix."""
    target = target_for(tmp_path, nextcloud, **overrides)
    with pytest.raises(ConfigurationError, match=expected):
        run(target.check())


def test_unreachable_target_is_not_a_configuration_problem(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A server that is down passes check(): the relay just retries later."""
    nextcloud.stop()
    run(target_for(tmp_path, nextcloud).check())


def test_wrong_password_fails_check_as_credentials(tmp_path: Path, nextcloud: DavServer) -> None:
    """check() reports refused credentials so the service starts with the relay paused."""
    target = target_for(tmp_path, nextcloud, target_password="wrong")
    with pytest.raises(TargetAuthFailed):
        run(target.check())


def test_file_stream_sends_the_asked_range_in_order(tmp_path: Path) -> None:
    """A body is the asked byte range, block by block, each block at most READ_SIZE."""
    file, data, _ = source(tmp_path, 3 * READ_SIZE)
    offset, length = 5, 2 * READ_SIZE + READ_SIZE // 2 + 3

    async def collect() -> list[bytes]:
        return [block async for block in file_stream(file, offset, length)]

    blocks = run(collect())
    assert b"".join(blocks) == data[offset : offset + length]
    assert all(0 < len(block) <= READ_SIZE for block in blocks)


def test_file_stream_stopped_early_leaves_no_read_or_open_file(tmp_path: Path) -> None:
    """A request that ends mid-body (server gone) must not leave a read running or the file open."""
    file, _, _ = source(tmp_path, 3 * READ_SIZE)
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc to see open files")

    def open_copies() -> int:
        return sum(1 for fd in fd_dir.iterdir() if os.path.realpath(fd) == str(file))

    async def stop_after_first_block() -> tuple[int, int]:
        stream = file_stream(file, 0, 3 * READ_SIZE)
        await anext(stream)
        opened = open_copies()
        await stream.aclose()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return opened, len(others)

    opened, tasks_left = run(stop_after_first_block())
    assert opened == 1
    assert tasks_left == 0
    assert open_copies() == 0


def test_bodies_have_exact_length_and_move_has_none(tmp_path: Path, nextcloud: DavServer) -> None:
    """Every PUT carries its exact Content-Length (never chunked encoding); MOVE has no body."""
    file, _, sha = source(tmp_path, 2_500_000)
    target = target_for(
        tmp_path,
        nextcloud,
        target_chunk_threshold_bytes=1_000_000,
        target_chunk_bytes=1 << 20,
    )
    run(put(target, "2024/05/VID.MOV", file, sha))
    puts = [h for h in nextcloud.faults.headers if h["method"] == "PUT"]
    assert not any("HTTP_TRANSFER_ENCODING" in h for h in puts)
    puts = [h for h in puts if "/uploads/" in h["path"]]  # not the Overwrite trial's files
    assert [int(h["CONTENT_LENGTH"]) for h in puts] == [1 << 20, 1 << 20, 2_500_000 - (2 << 20)]
    (assembly,) = [h for h in nextcloud.faults.headers if h["path"].endswith("/.file")]
    assert assembly.get("CONTENT_LENGTH", "") in ("", None)
    assert assembly["HTTP_OVERWRITE"] == "F"
    assert assembly["HTTP_OC_TOTAL_LENGTH"] == "2500000"
    assert assembly["HTTP_X_OC_MTIME"] == str(int(CAPTURED.timestamp()))
    assert all(h["HTTP_DESTINATION"] == assembly["HTTP_DESTINATION"] for h in puts)


def test_without_read_back_our_stored_checksum_recognises_our_copy(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Read-back off: size + our OC-Checksum proves our copy; a same-size stranger is refused."""
    file, data, sha = source(tmp_path, 6000)
    run(put(target_for(tmp_path, nextcloud), "2024/05/IMG_0001.JPG", file, sha))
    stranger = nextcloud.file(f"{FOLDER}/IMG_0002.JPG")
    stranger.write_bytes(bytes(len(data)))
    target = target_for(tmp_path, nextcloud, target_verify_read_back=False)

    async def verify_both() -> str:
        try:
            proof = await target.verify("2024/05/IMG_0001.JPG", size=len(data), sha256=sha)
            with pytest.raises(VerificationFailed):
                await target.verify("2024/05/IMG_0002.JPG", size=len(data), sha256=sha)
            return proof.method
        finally:
            await target.close()

    assert run(verify_both()) == "size+stored-checksum"
    assert nextcloud.faults.count("GET", "/remote.php/") == 0  # no file read back


def test_read_back_proves_the_upload_without_a_propfind_of_it(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """With read-back, the temp copy is proven by one GET (size and hash), not a PROPFIND too."""
    file, data, sha = source(tmp_path, 7000)
    proof = run(put(target_for(tmp_path, webdav_server), "2024/05/IMG_0001.JPG", file, sha))
    assert proof.method == "size+sha256-readback"
    assert webdav_server.faults.count("GET", ".photo-relay-upload-") == 1
    assert webdav_server.faults.count("PROPFIND", ".photo-relay-upload-") == 0
    assert webdav_server.all_files() == {f"{FOLDER}/IMG_0001.JPG": data}


def test_four_requests_per_file_where_the_server_refuses_to_overwrite(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """Overwrite: F is tried once on our own files; then each file is PUT, checked, MOVEd,
    and its final name looked at (a server may store it under another name)."""
    target = target_for(tmp_path, webdav_server, target_verify_read_back=False)
    files = [source(tmp_path, 3000 + n, seed=n) for n in range(3)]

    async def put_all() -> None:
        try:
            await target.ensure_folder("2024/05")
            for n, (file, data, sha) in enumerate(files):
                await target.put_new(
                    f"2024/05/IMG_{n}.JPG", file, size=len(data), sha256=sha, captured=CAPTURED
                )
        finally:
            await target.close()

    run(put_all())
    assert webdav_server.all_files() == {
        f"{FOLDER}/IMG_{n}.JPG": data for n, (_, data, _) in enumerate(files)
    }
    assert webdav_server.faults.count("MOVE", "overwrite-trial") == 1  # learned once, not per file
    assert webdav_server.faults.count("PUT", "overwrite-trial") == 2
    faults = webdav_server.faults
    per_photo = faults.count() - faults.count(None, "overwrite-trial") - faults.count("MKCOL")
    assert per_photo == 4 * len(files)
    assert webdav_server.faults.count("PROPFIND", "/IMG_") == len(files)  # after, not before


def test_a_server_ignoring_overwrite_gets_a_look_before_each_write(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """Where the trial MOVE replaces its target, the final path is looked at before each PUT."""
    webdav_server.faults.ignore_preconditions = True
    file, data, sha = source(tmp_path, 3000)
    run(put(target_for(tmp_path, webdav_server), "2024/05/IMG_0001.JPG", file, sha))
    assert webdav_server.all_files() == {f"{FOLDER}/IMG_0001.JPG": data}  # trial files gone
    assert webdav_server.faults.count("PROPFIND", "/IMG_0001.JPG") == 2  # before and after


def test_other_content_under_the_final_name_after_the_move_is_not_verified(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """The look after the MOVE finds a SHA-256 that is not ours: not called verified."""
    file, _, sha = source(tmp_path, 5000)
    final = f"{FOLDER}/IMG_0001.JPG"
    look = nextcloud.faults.add(Fault("hold", methods={"PROPFIND"}, path_contains="/IMG_0001"))
    layer = nextcloud.nextcloud
    assert layer is not None

    def swap_checksum() -> None:
        wait_for(lambda: look.fired, what="the look after the MOVE")
        layer.checksums[final] = "SHA256:" + "0" * 64  # as if another client wrote it
        look.released.set()

    swapper = threading.Thread(target=swap_checksum)
    swapper.start()
    with pytest.raises(VerificationFailed, match="holds other content"):
        run(put(target_for(tmp_path, nextcloud), "2024/05/IMG_0001.JPG", file, sha))
    swapper.join(timeout=10)


async def requests_for_second_photo(target: DavTarget, server: DavServer, tmp_path: Path) -> int:
    """Requests the target sent for one photo once its folder and MOVE trial are done."""
    try:
        for number in (1, 2):
            file, _, sha = source(tmp_path, 4000, seed=number)
            path = f"2024/05/IMG_000{number}.JPG"
            if number == 1:
                await target.ensure_folder(path.rpartition("/")[0])
            before = server.faults.count()
            await target.put_new(path, file, size=4000, sha256=sha, captured=CAPTURED)
        return server.faults.count() - before
    finally:
        await target.close()


@pytest.mark.parametrize("read_back", [True, False])
def test_requests_per_photo(tmp_path: Path, nextcloud: DavServer, read_back: bool) -> None:
    """NextCloud: PUT, MOVE, one PROPFIND of the final name; its X-Hash proves the copy.

    A needless request (a PROPFIND of the temp copy the server's hash already proved, a
    read-back) fails here.
    """
    target = target_for(tmp_path, nextcloud, target_verify_read_back=read_back)
    assert run(requests_for_second_photo(target, nextcloud, tmp_path)) == 3
    assert nextcloud.faults.count("GET", TEMP_PREFIX) == 0  # no read-back


@pytest.mark.parametrize("read_back", [True, False])
def test_requests_per_photo_plain_webdav(
    tmp_path: Path, webdav_server: DavServer, read_back: bool
) -> None:
    """Plain WebDAV: PUT, one check of the temp copy (GET or PROPFIND), MOVE, PROPFIND."""
    target = target_for(tmp_path, webdav_server, target_verify_read_back=read_back)
    assert run(requests_for_second_photo(target, webdav_server, tmp_path)) == 4
    assert webdav_server.faults.count("GET", TEMP_PREFIX) == (2 if read_back else 0)
