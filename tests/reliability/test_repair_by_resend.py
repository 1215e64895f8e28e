"""Repair by re-send: a damaged or missing home copy is named so, and the same bytes repair it.

photo-relay runs in a thread against the test NextCloud. The relay's first request for a
photo is held at the server (the fault layer's "hold") while the test damages the copy in
the spool by hand; then the relay goes on. The photo must end `damaged` — not retried in
a loop, never verified with the wrong bytes — until the same file is sent again, which
replaces the copy and lets the relay deliver it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from app.cli.commands import main
from app.config import Settings
from tests.conftest import Service, remote_settings, running
from tests.phone.test_backup_api import decide, facts, send_page_photo, start
from tests.support import samples
from tests.support.faults import Fault
from tests.support.on_disk import spool_objects, spool_temp_files
from tests.support.servers import wait_for
from tests.support.status_page import logged_in
from tests.support.uploads import post_form, put_blob, sha256_hex, wait_verified
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.reliability

TAKEN = datetime(2024, 5, 4, 9, 30)
FOLDER = "Photos/iPhone/2024/05"


@pytest.fixture
def relayed(tmp_path: Path, nextcloud: DavServer) -> Iterator[Service]:
    with running(remote_settings(tmp_path, nextcloud)) as service:
        yield service


def home_copy(settings: Settings, sha: str) -> Path:
    return settings.spool_dir / "objects" / sha[:2] / sha


def receipt(client: httpx.Client, sha: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/v1/items/{sha}").json()
    return found


def journal(client: httpx.Client, sha: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.get(f"/v1/items/{sha}/journal").json()
    return entries


def send_and_hold(service: Service, nextcloud: DavServer, data: bytes, name: str) -> Fault:
    """Upload `data`; return once the relay's first request for it is held at the server."""
    held = nextcloud.faults.add(Fault("hold", path_contains=FOLDER, times=1))
    with service.device() as client:
        assert put_blob(client, data, name=name).status_code == 201
    wait_for(lambda: held.fired == 1, what="the relay's first request to be held")
    return held


def landed(nextcloud: DavServer, verified: dict[str, Any]) -> bytes:
    return nextcloud.file(f"Photos/iPhone/{verified['remote_path']}").read_bytes()


def flip_a_byte(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))


def wait_state(client: httpx.Client, sha: str, state: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: (r := receipt(client, sha))["state"] == state and r, what=f"state {state}"
    )
    return found


def test_a_damaged_home_copy_is_marked_and_not_retried_until_sent_again(
    relayed: Service, nextcloud: DavServer
) -> None:
    """Bit rot in the spool: `damaged` with a plain reason, no retries, then a re-send repairs."""
    data = samples.jpeg(TAKEN, seed=170, padding=300_000)
    sha = sha256_hex(data)
    held = send_and_hold(relayed, nextcloud, data, "IMG_0170.JPG")
    flip_a_byte(home_copy(relayed.settings, sha))
    held.released.set()
    with relayed.device() as client:
        damaged = wait_state(client, sha, "damaged")
        puts = nextcloud.faults.count("PUT", sha[:16])
        # Another photo goes through meanwhile: the relay is busy, yet leaves this one be.
        other = samples.jpeg(TAKEN, seed=171)
        assert put_blob(client, other, name="IMG_0171.JPG").status_code == 201
        wait_verified(client, sha256_hex(other))
        assert receipt(client, sha) == damaged
        assert nextcloud.faults.count("PUT", sha[:16]) == puts == 1
        events = journal(client, sha)
    assert damaged["attempts"] == 1 and damaged["next_attempt_at"] is None
    assert "damaged" in damaged["last_error"]
    assert not any(sha[:16] in path or "IMG_0170" in path for path in nextcloud.all_files())
    said = [e["message"] for e in events if e["event"] == "relay.home_copy_damaged"]
    assert len(said) == 1 and "Send IMG_0170.JPG (taken 4 May 2024, 09:30) again" in said[0]

    with relayed.device() as client:
        resent = put_blob(client, data, name="IMG_0170.JPG")
        assert resent.status_code == 200, resent.text
        assert resent.json()["state"] in ("received", "relaying", "verified")
        verified = wait_verified(client, sha)
        events = journal(client, sha)
    assert landed(nextcloud, verified) == data
    assert home_copy(relayed.settings, sha).read_bytes() == data
    assert len(spool_objects(relayed.settings)) == 2 and spool_temp_files(relayed.settings) == []
    assert [e["event"] for e in events].count("item.repaired") == 1


def test_a_missing_home_copy_is_repaired_by_a_form_from_another_device(
    relayed: Service, nextcloud: DavServer
) -> None:
    """A copy deleted by hand is `damaged` ("missing"); a form upload from any device repairs it."""
    data = samples.jpeg(TAKEN, seed=172)
    sha = sha256_hex(data)
    held = send_and_hold(relayed, nextcloud, data, "IMG_0172.JPG")
    home_copy(relayed.settings, sha).unlink()
    held.released.set()
    with relayed.device() as client:
        damaged = wait_state(client, sha, "damaged")
    assert "missing" in damaged["last_error"]
    with relayed.client(relayed.add_device("ipad")) as ipad:
        checked = ipad.post("/v1/items/check", json={"sha256": [sha]}).json()
        resent = post_form(ipad, [("IMG_0172.JPG", data)])
        assert resent.status_code == 200, resent.text
        verified = wait_verified(ipad, sha)
    assert checked["missing"] == [sha]  # so a phone asking what to send sends it again
    assert verified["device"] == "phone"  # the receipt stays the first sender's
    assert landed(nextcloud, verified) == data
    assert home_copy(relayed.settings, sha).read_bytes() == data


def test_a_short_home_copy_found_at_upload_time_is_replaced_at_once(
    relayed: Service, nextcloud: DavServer
) -> None:
    """A re-send while the copy is short (a cheap size check) replaces it before the relay reads."""
    data = samples.jpeg(TAKEN, seed=173, padding=100_000)
    sha = sha256_hex(data)
    held = send_and_hold(relayed, nextcloud, data, "IMG_0173.JPG")
    copy = home_copy(relayed.settings, sha)
    with copy.open("r+b") as handle:
        handle.truncate(len(data) // 2)
    with relayed.device() as client:
        assert put_blob(client, data, name="IMG_0173.JPG").status_code == 200
        assert copy.read_bytes() == data
        held.released.set()
        verified = wait_verified(client, sha)
        events = [e["event"] for e in journal(client, sha)]
    assert landed(nextcloud, verified) == data
    assert events.count("item.repaired") == 1 and "relay.home_copy_damaged" not in events
    assert spool_temp_files(relayed.settings) == []


def test_the_pages_and_status_say_send_it_again_with_the_file_name_and_capture_time(
    relayed: Service, nextcloud: DavServer
) -> None:
    """The status page and `photo-relay status` list the damaged photo; its page says so."""
    data = samples.jpeg(TAKEN, seed=174)
    sha = sha256_hex(data)
    held = send_and_hold(relayed, nextcloud, data, "IMG_0174.JPG")
    home_copy(relayed.settings, sha).unlink()
    held.released.set()
    with relayed.device() as client:
        wait_state(client, sha, "damaged")
    with logged_in(relayed) as browser:
        status = browser.get("/").text
        item = browser.get(f"/items/{sha}").text
    terminal = CliRunner().invoke(
        main,
        ["status", "--data-dir", str(relayed.settings.data_dir)],
        env={"PHOTO_RELAY_MIN_FREE_BYTES": "0"},
    )
    assert "1 file(s) must be sent again" in status
    assert 'id="send-again"' in status and "IMG_0174.JPG" in status
    assert "taken 4 May 2024, 09:30" in status
    assert "Send it again: the copy of IMG_0174.JPG (taken 4 May 2024, 09:30)" in item
    assert "Send these again (1)" in terminal.output
    assert "IMG_0174.JPG  taken 4 May 2024, 09:30" in terminal.output


def test_a_copy_removed_by_retention_is_not_damage(start_service: Any) -> None:
    """After verification and removal at home, a re-send answers 200 and changes nothing."""
    service: Service = start_service(spool_retention_days=0)
    data = samples.jpeg(TAKEN, seed=175)
    sha = sha256_hex(data)
    with service.device() as client:
        assert put_blob(client, data, name="IMG_0175.JPG").status_code == 201
        before = wait_verified(client, sha)
        wait_for(lambda: not home_copy(service.settings, sha).exists(), what="the removal")
        resent = put_blob(client, data, name="IMG_0175.JPG")
        events = [e["event"] for e in journal(client, sha)]
    assert resent.status_code == 200
    assert resent.json()["state"] == "verified"
    assert resent.json()["verified_at"] == before["verified_at"]
    assert "item.repaired" not in events and "relay.home_copy_damaged" not in events
    assert spool_objects(service.settings) == [] and spool_temp_files(service.settings) == []


def test_the_backup_shortcut_asks_for_a_damaged_photo_again(
    relayed: Service, nextcloud: DavServer
) -> None:
    """A photo the backup sent, then damaged at home, is "send" (not "safe") on the next run."""
    data = samples.heic(datetime(2024, 5, 1, 21, 4), seed=176)
    sha = sha256_hex(data)
    held = nextcloud.faults.add(Fault("hold", path_contains=FOLDER, times=1))
    with relayed.device() as client:
        first = start(client)["run_id"]
        assert decide(client, first, [facts(data)])["decisions"] == {"1": "send"}
        assert send_page_photo(client, first, 1, data) == "yes"
        wait_for(lambda: held.fired == 1, what="the relay's first request to be held")
        home_copy(relayed.settings, sha).unlink()
        held.released.set()
        wait_state(client, sha, "damaged")
        client.post(f"/v1/backup/runs/{first}/finish")
        second = start(client)["run_id"]
        again = decide(client, second, [facts(data)])
        sent = send_page_photo(client, second, 1, data)
        verified = wait_verified(client, sha)
    assert again["decisions"] == {"1": "send"}
    assert sent == "yes"
    assert landed(nextcloud, verified) == data
