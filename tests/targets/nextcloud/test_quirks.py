"""The relay on servers that only claim NextCloud compatibility (issue 16), one quirk each.

Each test switches one behaviour of the test NextCloud (tests/support/nextcloud_dav.py's
`Quirks`, via `@pytest.mark.nextcloud(...)`) and counts what the relay sent, so a re-sent
chunk or a whole file sent again is a failing assertion. A "300 MB video" is modelled as a
few MB cut into many small chunks (30 chunks of 128 KiB; 10 MiB chunks in production): the
number of chunks and where the cut falls are what matter, not the bytes.
With PHOTO_RELAY_QUIRK_REPORT=<file> each test appends what it measured (requests, chunk
PUTs, body bytes) as a JSON line: docs/RELIABILITY.md's section 8 was made that way.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from app.cli.commands import main as cli
from app.config import Settings
from tests.conftest import Service, remote_settings, running, sha256_hex
from tests.support import samples
from tests.support.faults import Fault
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer

TAKEN = "2024-05-01T21:04:00+02:00"
FOLDER = "Photos/iPhone/2024/05"
KiB = 1024
CHUNK = 128 * KiB
CHUNKS = 30
VIDEO_SIZE = CHUNKS * CHUNK - 1000  # the last chunk is a short one
UPLOADS = "/remote.php/dav/uploads/"


@pytest.fixture(autouse=True)
def measured(request: pytest.FixtureRequest) -> Iterator[None]:
    """Appends what the test's server saw to $PHOTO_RELAY_QUIRK_REPORT (for the doc)."""
    yield
    report = os.environ.get("PHOTO_RELAY_QUIRK_REPORT")
    server = request.node.funcargs.get("nextcloud")
    if not report or server is None:
        return
    faults = server.faults
    line = {
        "test": request.node.name,
        "requests": faults.count(),
        "chunk_puts": faults.count("PUT", UPLOADS),
        "bytes_sent": faults.bytes_received(),
        "files": len(server.all_files()),
    }
    with Path(report).open("a") as out:
        out.write(json.dumps(line) + "\n")


def settings_for(tmp_path: Path, server: DavServer, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "target_chunk_threshold_bytes": 2 * CHUNK,
        "target_chunk_bytes": CHUNK,
        "relay_max_attempts": 30,
    }
    values.update(overrides)
    return remote_settings(tmp_path, server, **values)


def video(seed: int = 1, size: int = VIDEO_SIZE) -> bytes:
    block = sha256_hex(f"video {seed}".encode()).encode() * (size // 64 + 1)
    return block[:size]


def send(client: httpx.Client, data: bytes, name: str) -> str:
    sha = sha256_hex(data)
    response = client.put(
        f"/v1/blobs/{sha}", params={"name": name}, content=data, headers={"X-Captured-At": TAKEN}
    )
    assert response.status_code in (200, 201), response.text
    return sha


def receipt(service: Service, sha: str) -> dict[str, Any]:
    with service.device() as client:
        body: dict[str, Any] = client.get(f"/v1/items/{sha}").json()
        return body


def relay_status(service: Service) -> dict[str, Any]:
    with service.admin() as client:
        relay: dict[str, Any] = client.get("/v1/status").json()["relay"]
        return relay


def wait_verified(service: Service, sha: str, timeout: float = 40) -> dict[str, Any]:
    def verified() -> dict[str, Any] | None:
        found = receipt(service, sha)
        return found if found["state"] == "verified" else None

    result: dict[str, Any] = wait_for(verified, timeout=timeout, what=f"{sha[:8]} verified")
    return result


def no_upload_folders(server: DavServer) -> bool:
    return not any(server.uploads_dir.iterdir())


# -- 1. chunked uploads resume or restart cleanly ----------------------------------------


def cut_at_chunk_8(how: str) -> Fault:
    if how == "dropped-connection":
        return Fault("drop", methods={"PUT"}, path_contains="/00008", times=1)
    return Fault("status", status=502, methods={"PUT"}, path_contains="/00008", times=1)


CUTS = ["502", "dropped-connection"]


@pytest.mark.parametrize("cut", CUTS)
def test_a_cut_chunk_is_sent_once_more_where_the_server_lists_sizes(
    tmp_path: Path, nextcloud: DavServer, cut: str
) -> None:
    """A cut at chunk 8 of 30 on a server that lists chunk sizes: chunk 8 sent again, no other."""
    fault = nextcloud.faults.add(cut_at_chunk_8(cut))
    data = video()
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
        wait_verified(service, sha)
    assert fault.fired == 1
    assert nextcloud.all_files() == {f"{FOLDER}/VID_0001.MOV": data}
    for number in range(1, CHUNKS + 1):
        expected = 2 if number == 8 else 1
        assert nextcloud.faults.count("PUT", f"/{number:05d}") == expected, number
    assert nextcloud.faults.bytes_received("PUT", UPLOADS) <= VIDEO_SIZE + CHUNK
    assert no_upload_folders(nextcloud)


@pytest.mark.nextcloud(chunk_sizes_listed=False, chunk_delete_refused=True)
@pytest.mark.parametrize("cut", CUTS)
def test_a_cut_upload_restarts_cleanly_where_the_server_cannot_say_what_it_has(
    tmp_path: Path, nextcloud: DavServer, cut: str
) -> None:
    """No sizes listed, single-chunk DELETE refused: one clean restart, never a stuck upload."""
    nextcloud.faults.add(cut_at_chunk_8(cut))
    data = video()
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
        wait_verified(service, sha)
    assert nextcloud.all_files() == {f"{FOLDER}/VID_0001.MOV": data}
    # 7 chunks before the cut, the cut one, then all 30 again in a fresh upload folder.
    assert nextcloud.faults.count("PUT", UPLOADS) == 7 + 1 + CHUNKS
    assert nextcloud.faults.count("MKCOL", UPLOADS) == 2
    assert nextcloud.faults.count("DELETE", "/00") == 0  # never chunk by chunk
    assert no_upload_folders(nextcloud)


@pytest.mark.nextcloud(chunk_sizes_listed=False, chunk_delete_refused=True, chunk_head=True)
@pytest.mark.parametrize("cut", CUTS)
def test_a_cut_chunk_is_sent_once_more_where_the_server_answers_head(
    tmp_path: Path, nextcloud: DavServer, cut: str
) -> None:
    """No sizes listed, but HEAD of a chunk tells its length: only the cut chunk again."""
    nextcloud.faults.add(cut_at_chunk_8(cut))
    data = video()
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
        wait_verified(service, sha)
    assert nextcloud.all_files() == {f"{FOLDER}/VID_0001.MOV": data}
    assert nextcloud.faults.count("PUT", UPLOADS) == CHUNKS + 1
    assert nextcloud.faults.count("MKCOL", UPLOADS) == 1
    assert nextcloud.faults.count("HEAD", UPLOADS) <= 8
    assert no_upload_folders(nextcloud)


def test_a_connection_cut_at_the_assembly_move_resends_no_chunk(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """The MOVE of `.file` is cut before the server assembles: only the MOVE is repeated."""
    cut = nextcloud.faults.add(Fault("drop", methods={"MOVE"}, path_contains="/.file", times=1))
    data = video()
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
        wait_verified(service, sha)
    assert cut.fired == 1
    assert nextcloud.all_files() == {f"{FOLDER}/VID_0001.MOV": data}
    assert nextcloud.faults.count("PUT", UPLOADS) == CHUNKS
    assert nextcloud.faults.count("MOVE", "/.file") == 2
    assert no_upload_folders(nextcloud)


@pytest.mark.nextcloud(chunk_sizes_listed=False, chunk_delete_refused=True)
def test_an_outage_mid_upload_ends_with_one_clean_restart(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A 45 s-style outage after chunk 8 (every request 503, modelled by count, not time)."""
    hold = nextcloud.faults.add(Fault("hold", methods={"PUT"}, path_contains="/00008", times=1))
    data = video()
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
        wait_for(lambda: hold.fired, what="chunk 8 on the wire")
        outage = nextcloud.faults.add(Fault("status", status=503, times=6))
        hold.released.set()
        wait_verified(service, sha)
    assert outage.fired == 6
    assert nextcloud.all_files() == {f"{FOLDER}/VID_0001.MOV": data}
    # Chunks 1-8, chunk 9 answered 503, then one clean restart of all 30.
    assert nextcloud.faults.count("PUT", UPLOADS) == 9 + CHUNKS
    assert nextcloud.faults.count("DELETE", "/00") == 0
    assert no_upload_folders(nextcloud)


@pytest.mark.nextcloud(chunk_sizes_listed=False)
def test_retry_after_failure_starts_the_upload_clean(tmp_path: Path, nextcloud: DavServer) -> None:
    """`photo-relay retry` drops the saved progress: the old upload folder is deleted.

    A 502 is transient, so the item waits (here an hour: the back-off is made long) instead
    of failing; asking by hand then means "now, from a clean start"."""
    fault = nextcloud.faults.add(
        Fault("status", status=502, methods={"PUT"}, path_contains="/00005")
    )
    settings = settings_for(
        tmp_path, nextcloud, relay_retry_base_seconds=3600, relay_retry_max_seconds=3600
    )
    data = video()
    with running(settings) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
        wait_for(lambda: receipt(service, sha)["state"] == "retry", what="the item to wait")
        assert len(list(nextcloud.uploads_dir.iterdir())) == 1
        fault.times = fault.fired  # the server is fine again
        result = CliRunner().invoke(cli, ["retry", "--data-dir", str(settings.data_dir)])
        assert result.exit_code == 0, result.output
        wait_verified(service, sha)
    assert nextcloud.all_files() == {f"{FOLDER}/VID_0001.MOV": data}
    assert nextcloud.faults.count("MKCOL", UPLOADS) == 2
    assert nextcloud.faults.count("PUT", UPLOADS) == 5 + CHUNKS
    assert no_upload_folders(nextcloud)


# -- 2. a reply is judged by what the server did -----------------------------------------


@pytest.mark.nextcloud(proxy_504_on_move=True)
def test_a_proxy_504_after_the_moves_costs_no_resend(tmp_path: Path, nextcloud: DavServer) -> None:
    """504 to every MOVE though the server did it: the video and a photo are each sent once."""
    data, photo = video(), samples.jpeg(seed=5)
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
            photo_sha = send(client, photo, "IMG_0001.JPG")
        wait_verified(service, sha)
        wait_verified(service, photo_sha)
    assert nextcloud.all_files() == {
        f"{FOLDER}/VID_0001.MOV": data,
        f"{FOLDER}/IMG_0001.JPG": photo,
    }
    assert nextcloud.faults.count("PUT", UPLOADS) == CHUNKS
    assert nextcloud.faults.bytes_received("PUT") == len(data) + len(photo) + 2  # + trial files
    assert no_upload_folders(nextcloud)


@pytest.mark.nextcloud(cut_names_at="?")
def test_a_name_cut_at_a_question_mark_is_not_called_verified(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """`Trip: Paris?.JPG` stored as `Trip: Paris`: the copy is moved to a safe name, not resent."""
    first, second = samples.jpeg(seed=6), samples.jpeg(seed=7)
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            a = send(client, first, "Trip: Paris?.JPG")
        done = wait_verified(service, a)
        with service.device() as client:
            b = send(client, second, "Trip: Paris?.JPG")
        other = wait_verified(service, b)
    assert done["remote_path"] == "2024/05/Trip_ Paris_.JPG"
    assert other["remote_path"] == f"2024/05/Trip_ Paris_ ({b[:8]}).JPG"
    assert nextcloud.all_files() == {
        f"{FOLDER}/Trip_ Paris_.JPG": first,
        f"{FOLDER}/Trip_ Paris_ ({b[:8]}).JPG": second,
    }
    assert nextcloud.faults.bytes_received("PUT") == len(first) + len(second) + 2


@pytest.mark.nextcloud(refused_characters=':?"<>|*')
def test_a_refused_name_gets_a_safe_name_at_once(tmp_path: Path, nextcloud: DavServer) -> None:
    """400 for `:` and `?`: the proven temp copy is moved to `Trip_ Paris_.JPG`, no retries."""
    photo = samples.jpeg(seed=8)
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, photo, "Trip: Paris?.JPG")
        done = wait_verified(service, sha)
    assert done["remote_path"] == "2024/05/Trip_ Paris_.JPG"
    assert done["attempts"] == 1
    assert nextcloud.all_files() == {f"{FOLDER}/Trip_ Paris_.JPG": photo}
    assert nextcloud.faults.count("MOVE", f".photo-relay-upload-{sha[:16]}") == 2  # no, then yes
    assert nextcloud.faults.bytes_received("PUT") == len(photo) + 2


def test_a_name_taken_mid_upload_moves_the_proven_copy(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A file appears at the video's name while its chunks go up: moved to the alternative."""
    hold = nextcloud.faults.add(Fault("hold", methods={"MOVE"}, path_contains="/.file", times=1))
    data = video()
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
        wait_for(lambda: hold.fired, what="the assembly MOVE")
        nextcloud.file(f"{FOLDER}/VID_0001.MOV").write_bytes(b"someone else's video")
        hold.released.set()
        done = wait_verified(service, sha)
    assert done["remote_path"] == f"2024/05/VID_0001 ({sha[:8]}).MOV"
    assert nextcloud.all_files() == {
        f"{FOLDER}/VID_0001.MOV": b"someone else's video",
        f"{FOLDER}/VID_0001 ({sha[:8]}).MOV": data,
    }
    assert nextcloud.faults.count("PUT", UPLOADS) == CHUNKS
    assert nextcloud.faults.bytes_received("PUT", UPLOADS) == len(data)


# -- 3. quota, per file ------------------------------------------------------------------


@pytest.mark.nextcloud(quota_bytes=3 * 1024 * 1024, quota_status=403)
@pytest.mark.parametrize("sent_as", ["one PUT", "chunks"])
def test_a_403_for_quota_is_full_not_bad_credentials(
    tmp_path: Path, nextcloud: DavServer, sent_as: str
) -> None:
    """The video does not fit (403 "Quota exceeded"): it waits, a photo that fits goes on.

    In one PUT the server's 403 is read as the quota; in chunks the space left is looked
    at first, so not one chunk is sent in vain.
    """
    data, photo = video(), samples.jpeg(seed=9)
    threshold = 8 * 1024 * 1024 if sent_as == "one PUT" else 2 * CHUNK
    settings = settings_for(tmp_path, nextcloud, target_chunk_threshold_bytes=threshold)
    with running(settings) as service:
        with service.device() as client:
            sha = send(client, data, "VID_0001.MOV")
        wait_for(lambda: receipt(service, sha)["last_error"], what="the quota refusal")
        with service.device() as client:
            photo_sha = send(client, photo, "IMG_0001.JPG")
        wait_verified(service, photo_sha)
        status, waiting = relay_status(service), receipt(service, sha)
    assert status["state"] == "running"
    assert "credentials" not in (status["reason"] or "")
    assert waiting["state"] != "verified"
    assert "MB left, not enough for this file" in waiting["last_error"]
    assert nextcloud.all_files() == {f"{FOLDER}/IMG_0001.JPG": photo}
    assert nextcloud.faults.count("PUT", UPLOADS) == 0
    assert no_upload_folders(nextcloud)


@pytest.mark.parametrize("status", [403, 413, 507])
def test_a_quota_refusal_on_one_chunk_pauses_as_full_and_frees_its_chunks(
    tmp_path: Path, nextcloud: DavServer, status: int
) -> None:
    """403 "Quota exceeded", 413 or 507 on chunk 5: paused as full; the chunks are deleted."""
    nextcloud.faults.add(
        Fault(
            "status",
            status=status,
            methods={"PUT"},
            path_contains="/00005",
            message="Insufficient space in /alice/files: Quota exceeded",
        )
    )
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            send(client, video(), "VID_0001.MOV")
        wait_for(lambda: relay_status(service)["state"] == "paused", what="the pause")
        status_now = relay_status(service)
    assert "NextCloud is full" in status_now["reason"]
    assert "credentials" not in status_now["reason"]
    assert nextcloud.faults.count("PUT", UPLOADS) == 5
    assert no_upload_folders(nextcloud)


@pytest.mark.nextcloud(quota_bytes=600 * 1024)
def test_a_full_server_pauses_as_full_with_the_free_space(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """507 on a chunk with almost nothing left: paused as full, saying how much is free."""
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            send(client, video(), "VID_0001.MOV")
        wait_for(lambda: relay_status(service)["state"] == "paused", what="the pause")
        status = relay_status(service)
    assert "NextCloud is full" in status["reason"]
    assert "MB free" in status["reason"]
    assert no_upload_folders(nextcloud)


# -- 4. our own copies, our own deletions, honest messages -------------------------------


@pytest.mark.parametrize("spelling", ["NFD", "lower case"])
def test_our_copy_is_recognised_as_the_server_spells_it(
    tmp_path: Path, nextcloud: DavServer, spelling: str
) -> None:
    """Our earlier copy under an NFD or lower-case name is found there, not duplicated."""
    photo = samples.jpeg(seed=10)
    name = unicodedata.normalize("NFC", "Café.JPG")
    stored = unicodedata.normalize("NFD", name) if spelling == "NFD" else name.lower()
    existing = nextcloud.file(f"{FOLDER}/{stored}")
    existing.parent.mkdir(parents=True)
    existing.write_bytes(photo)
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, photo, name)
        done = wait_verified(service, sha)
    assert done["remote_path"] == f"2024/05/{stored}"
    assert nextcloud.all_files() == {f"{FOLDER}/{stored}": photo}
    assert nextcloud.faults.bytes_received("PUT") == 0  # nothing sent


@pytest.mark.nextcloud(trash_bin=True)
def test_our_deleted_temp_copies_do_not_stay_in_the_trash_bin(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A copy that failed its check is deleted and purged from the trash bin (quota kept)."""
    nextcloud.faults.add(
        Fault("truncate", methods={"PUT"}, path_contains=".photo-relay-upload-", times=1)
    )
    photo = samples.jpeg(seed=11, padding=200_000)
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, photo, "IMG_0001.JPG")
        wait_verified(service, sha)
    assert nextcloud.nextcloud is not None
    assert not any(nextcloud.nextcloud.trash_dir.iterdir())
    assert nextcloud.nextcloud.used_bytes() == len(photo)


@pytest.mark.nextcloud(max_depth=3)
def test_a_folder_deeper_than_the_server_allows_is_said_plainly(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """MKCOL refused with nothing there: not "is a file, not a folder"."""
    with running(settings_for(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=12), "IMG_0001.JPG")
        error = wait_for(lambda: receipt(service, sha)["last_error"], what="the error")
    assert "is a file" not in error
    assert "refuses to create the folder /Photos/iPhone/2024/05" in error
