"""The whole service relaying to a real WebDAV/NextCloud test server: names, safety, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
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


def send(client: httpx.Client, data: bytes, name: str, captured: str = TAKEN) -> str:
    sha = sha256_hex(data)
    response = client.put(
        f"/v1/blobs/{sha}",
        params={"name": name},
        content=data,
        headers={"X-Captured-At": captured},
    )
    assert response.status_code in (200, 201), response.text
    return sha


def receipt(service: Service, sha: str) -> dict[str, Any]:
    with service.device() as client:
        body: dict[str, Any] = client.get(f"/v1/items/{sha}").json()
        return body


def wait_verified(service: Service, *hashes: str, timeout: float = 30) -> list[dict[str, Any]]:
    def all_verified() -> list[dict[str, Any]] | None:
        found = [receipt(service, sha) for sha in hashes]
        return found if all(r["state"] == "verified" for r in found) else None

    result: list[dict[str, Any]] = wait_for(all_verified, timeout=timeout, what="verified")
    return result


def relay_status(service: Service) -> dict[str, Any]:
    with service.admin() as client:
        relay: dict[str, Any] = client.get("/v1/status").json()["relay"]
        return relay


def test_same_named_photos_of_one_day_are_both_kept(tmp_path: Path, nextcloud: DavServer) -> None:
    """Two different IMG_0001.JPG taken the same day both arrive; the second gets a new name."""
    first, second = samples.jpeg(seed=1), samples.jpeg(seed=2)
    with running(remote_settings(tmp_path, nextcloud)) as service:
        with service.device() as client:
            a = send(client, first, "IMG_0001.JPG")
            b = send(client, second, "IMG_0001.JPG")
        receipts = wait_verified(service, a, b)
    files = nextcloud.all_files()
    assert sorted(files.values()) == sorted([first, second])
    # The first one received gets the name; the other a deterministic alternative.
    assert [r["remote_path"] for r in receipts] == [
        "2024/05/IMG_0001.JPG",
        f"2024/05/IMG_0001 ({b[:8]}).JPG",
    ]
    for r in receipts:
        assert files[f"Photos/iPhone/{r['remote_path']}"] == (first if r["sha256"] == a else second)
        assert r["remote_file_id"]
        assert r["verified_by"] == "size+x-hash-sha256"


def test_same_photo_from_two_devices_lands_once(tmp_path: Path, nextcloud: DavServer) -> None:
    """The same bytes sent by two phones give one file at the destination."""
    photo = samples.jpeg(seed=3)
    with running(remote_settings(tmp_path, nextcloud)) as service:
        other = service.add_device("ipad")
        with service.device() as client:
            sha = send(client, photo, "IMG_0001.JPG")
        with service.client(other) as client:
            assert send(client, photo, "IMG_7777.JPG") == sha
        wait_verified(service, sha)
    assert nextcloud.all_files() == {f"{FOLDER}/IMG_0001.JPG": photo}


def test_foreign_file_is_untouched_on_a_server_ignoring_preconditions(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """A file already at the target path keeps its bytes; ours lands beside it."""
    webdav_server.faults.ignore_preconditions = True
    foreign = webdav_server.file(f"{FOLDER}/IMG_0001.JPG")
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"someone else's photo")
    photo = samples.jpeg(seed=4)
    with running(remote_settings(tmp_path, webdav_server)) as service:
        with service.device() as client:
            sha = send(client, photo, "IMG_0001.JPG")
        (done,) = wait_verified(service, sha)
    assert done["remote_path"] == f"2024/05/IMG_0001 ({sha[:8]}).JPG"
    assert webdav_server.all_files() == {
        f"{FOLDER}/IMG_0001.JPG": b"someone else's photo",
        f"{FOLDER}/IMG_0001 ({sha[:8]}).JPG": photo,
    }


def test_names_are_nfc_and_compared_case_insensitively(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """An NFD name lands in NFC; a foreign img_0001.jpg blocks IMG_0001.JPG (case clash)."""
    foreign = nextcloud.file(f"{FOLDER}/img_0001.jpg")
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"lower-case foreign file")
    clash, accented = samples.jpeg(seed=6), samples.jpeg(seed=7)
    with running(remote_settings(tmp_path, nextcloud)) as service:
        with service.device() as client:
            a = send(client, clash, "IMG_0001.JPG")
            b = send(client, accented, "Cafe\u0301.JPG")
        receipts = wait_verified(service, a, b)
    assert receipts[0]["remote_path"] == f"2024/05/IMG_0001 ({a[:8]}).JPG"
    assert receipts[1]["remote_path"] == "2024/05/Caf\u00e9.JPG"
    assert nextcloud.all_files() == {
        f"{FOLDER}/img_0001.jpg": b"lower-case foreign file",
        f"{FOLDER}/IMG_0001 ({a[:8]}).JPG": clash,
        f"{FOLDER}/Caf\u00e9.JPG": accented,
    }


def test_same_content_already_at_the_path_counts_as_done(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """After a crash between upload and bookkeeping, the file found there counts (not resent)."""
    photo = samples.jpeg(seed=5)
    landed = webdav_server.file(f"{FOLDER}/IMG_0001.JPG")
    landed.parent.mkdir(parents=True)
    landed.write_bytes(photo)
    with running(remote_settings(tmp_path, webdav_server)) as service:
        with service.device() as client:
            sha = send(client, photo, "IMG_0001.JPG")
        (done,) = wait_verified(service, sha)
    assert done["remote_path"] == "2024/05/IMG_0001.JPG"
    assert webdav_server.faults.count("PUT") == 0
    assert webdav_server.all_files() == {f"{FOLDER}/IMG_0001.JPG": photo}


def test_everything_arrives_after_the_target_comes_back(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Uploads are accepted while NextCloud is down and relayed once it is back."""
    nextcloud.stop()
    photos = [samples.jpeg(seed=10 + i) for i in range(3)]
    with running(remote_settings(tmp_path, nextcloud)) as service:
        with service.device() as client:
            hashes = [send(client, p, f"IMG_{i:04d}.JPG") for i, p in enumerate(photos)]
        wait_for(
            lambda: relay_status(service)["state"] == "waiting",
            what="the relay to notice the target is down",
        )
        # Only the copies already started met the outage; the rest wait without trying.
        tried = [h for h in hashes if receipt(service, h)["attempts"]]
        assert 1 <= len(tried) <= 2  # relay_parallel
        assert all(receipt(service, h)["state"] in ("received", "retry") for h in hashes)
        nextcloud.start()
        wait_verified(service, *hashes)
    assert sorted(nextcloud.all_files().values()) == sorted(photos)


def test_refused_credentials_pause_the_relay_without_hammering(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """401 pauses everything with a plain message; no retries until `retry` is asked for."""
    nextcloud.faults.add(Fault("status", status=401, path_contains="/remote.php/"))
    settings = remote_settings(tmp_path, nextcloud, relay_parallel=1)
    with running(settings) as service:
        status = relay_status(service)
        assert status["state"] == "paused"
        assert "NextCloud rejected the credentials" in status["reason"]
        with service.device() as client:
            hashes = [send(client, samples.jpeg(seed=20 + i), f"IMG_{i}.JPG") for i in range(3)]
        seen = nextcloud.faults.count()
        # Retries are 0.05 s apart in these settings: a relay that kept trying would have
        # sent dozens of requests by the time these receipts are read (about a second).
        for _ in range(3):
            assert all(receipt(service, h)["state"] == "received" for h in hashes)
        assert nextcloud.faults.count() == seen <= 2
        nextcloud.faults.clear()
        result = CliRunner().invoke(cli, ["retry", "--data-dir", str(settings.data_dir)])
        assert result.exit_code == 0, result.output
        wait_verified(service, *hashes)
        assert relay_status(service)["state"] == "running"


def test_401_during_relay_pauses_and_api_retry_resumes(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Credentials refused mid-run pause the relay; POST /v1/items/retry resumes it."""
    with running(remote_settings(tmp_path, nextcloud, relay_parallel=1)) as service:
        fault = nextcloud.faults.add(Fault("status", status=401, methods={"PUT"}))
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=30), "IMG_0001.JPG")
        wait_for(lambda: relay_status(service)["state"] == "paused", what="the pause")
        assert fault.fired == 1
        nextcloud.faults.clear()
        with service.admin() as client:
            assert client.post("/v1/items/retry").status_code == 200
        wait_verified(service, sha)


def test_misconfigured_target_is_reported_and_uploads_still_accepted(tmp_path: Path) -> None:
    """A malformed URL shows on /v1/status in plain words; photos are still taken in."""
    settings = make_broken_settings(tmp_path)
    with running(settings) as service:
        status = relay_status(service)
        assert status["state"] == "paused"
        assert "PHOTO_RELAY_TARGET_URL" in status["reason"]
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=40), "IMG_0001.JPG")
        assert receipt(service, sha)["state"] == "received"


def make_broken_settings(tmp_path: Path) -> Settings:
    from tests.conftest import make_settings

    return make_settings(
        tmp_path,
        target="nextcloud",
        target_url="htp:/cloud",
        target_user="alice",
        target_password="x",
    )


def test_spool_copy_removed_after_verification_when_retention_is_zero(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """Retention 0 removes the home copy right after verification, and journals it."""
    with running(remote_settings(tmp_path, webdav_server, spool_retention_days=0)) as service:
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=50), "IMG_0001.JPG")
        wait_verified(service, sha)
        spool = service.server.app_services.spool
        wait_for(lambda: not spool.path_for(sha).is_file(), what="the spool copy to go")
        with service.device() as client:
            events = [e["event"] for e in client.get(f"/v1/items/{sha}/journal").json()]
        assert events[-1] == "spool.removed"


def test_spool_copy_kept_during_retention(tmp_path: Path, webdav_server: DavServer) -> None:
    """With a retention period the home copy stays after verification."""
    with running(remote_settings(tmp_path, webdav_server, spool_retention_days=30)) as service:
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=51), "IMG_0001.JPG")
        wait_verified(service, sha)
        assert service.server.app_services.spool.path_for(sha).is_file()


def test_locked_file_is_retried_under_the_same_name(tmp_path: Path, nextcloud: DavServer) -> None:
    """423 (and 503) mean "try later": the photo still lands under its planned name."""
    nextcloud.faults.add(Fault("status", status=423, methods={"PUT"}, times=1))
    nextcloud.faults.add(Fault("status", status=503, methods={"MOVE"}, times=1))
    photo = samples.jpeg(seed=60)
    with running(remote_settings(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, photo, "IMG_0001.JPG")
        (done,) = wait_verified(service, sha)
    assert done["remote_path"] == "2024/05/IMG_0001.JPG"
    assert done["attempts"] == 3
    assert nextcloud.all_files() == {f"{FOLDER}/IMG_0001.JPG": photo}


def test_full_nextcloud_pauses_with_a_plain_reason(tmp_path: Path, nextcloud: DavServer) -> None:
    """507 pauses the relay ("NextCloud is full") until a later look; the photo stays queued."""
    nextcloud.faults.add(Fault("status", status=507, methods={"PUT"}))
    with running(remote_settings(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=61), "IMG_0001.JPG")
        wait_for(lambda: relay_status(service)["state"] == "paused", what="the pause")
        status = relay_status(service)
        assert "NextCloud is full" in status["reason"]
        assert status["paused_until"] is not None
        assert receipt(service, sha)["state"] == "received"


def test_failed_after_max_attempts_then_retry_delivers(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A copy that keeps arriving damaged ends `failed` with the reason and the fix;
    `photo-relay retry` revives it."""
    fault = nextcloud.faults.add(Fault("truncate", methods={"PUT"}))
    settings = remote_settings(tmp_path, nextcloud, relay_max_attempts=2)
    with running(settings) as service:
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=70), "IMG_0001.JPG")
        wait_for(lambda: receipt(service, sha)["state"] == "failed", what="the item to fail")
        reason = receipt(service, sha)["last_error"]
        assert "differed from the original 2 times" in reason and "then retry" in reason
        assert receipt(service, sha)["attempts"] == 2 and fault.fired >= 2
        nextcloud.faults.clear()
        result = CliRunner().invoke(cli, ["retry", "--data-dir", str(settings.data_dir)])
        assert result.exit_code == 0 and "1 item(s)" in result.output
        wait_verified(service, sha)  # the running relay notices the CLI's requeue by itself
