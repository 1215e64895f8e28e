"""Destination faults: the NextCloud test server fails in every way we know; nothing is lost.

photo-relay runs in a thread against WsgiDAV + the NextCloud layer, behind the fault layer of
tests/support/faults.py (and tests/reliability/fault_plan.py for slow answers). Each test sends a
batch, breaks the server, checks the receipts and journal tell the story, lifts the fault,
and then checks every item is verified exactly once and nothing at the server was replaced.
Retry delays are 0.05–0.5 s, so "minutes" of outage are compressed into seconds of retries.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import add_device, remote_settings
from tests.reliability.fault_plan import Slow, wrap
from tests.reliability.harness import Tally, blob, sha256_hex
from tests.support.faults import Fault
from tests.support.servers import ThreadedService, wait_for
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.reliability

BATCH = 6
PLANNED_FOLDER = "Photos/iPhone"


class Running:
    """A threaded service pointed at the test server, with a device and an admin client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.token = add_device(settings.data_dir, "phone")
        self.server = ThreadedService(settings)
        self.server.start()
        self.base_url = self.server.base_url

    def client(self, admin: bool = False) -> httpx.Client:
        token = self.server.app_services.admin_token if admin else self.token
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def send(self, items: dict[str, bytes]) -> dict[str, dict[str, Any]]:
        receipts = {}
        with self.client() as client:
            for index, (sha, data) in enumerate(items.items()):
                reply = client.put(
                    f"/v1/blobs/{sha}",
                    content=data,
                    headers={"Content-Disposition": f'attachment; filename="IMG_{index:04d}.JPG"'},
                )
                assert reply.status_code == 201, reply.text
                receipts[sha] = reply.json()
        return receipts

    def receipts(self, shas: list[str]) -> dict[str, dict[str, Any]]:
        with self.client() as client:
            return {sha: client.get(f"/v1/items/{sha}").json() for sha in shas}

    def journal(self, sha: str) -> list[dict[str, Any]]:
        with self.client() as client:
            entries: list[dict[str, Any]] = client.get(f"/v1/items/{sha}/journal").json()
            return entries

    def wait_states(self, shas: list[str], accept: Callable[[dict[str, Any]], bool]) -> None:
        wait_for(
            lambda: all(accept(r) for r in self.receipts(shas).values()),
            timeout=60,
            what="the receipts to reach the expected state",
        )

    def stop(self) -> None:
        self.server.stop()


def batch(seed: int, *, big: bool = False) -> dict[str, bytes]:
    sizes = [1_500_000 if big else 40_000 + 7_000 * n for n in range(BATCH)]
    items = [blob(seed + n, size) for n, size in enumerate(sizes)]
    return {sha256_hex(data): data for data in items}


def start(tmp_path: Path, server: DavServer, **overrides: object) -> Running:
    settings = remote_settings(
        tmp_path,
        server,
        relay_max_attempts=1000,
        target_chunk_threshold_bytes=1_000_000,
        target_chunk_bytes=256 * 1024,
        **overrides,
    )
    return Running(settings)


def hidden_temp_files(server: DavServer) -> list[str]:
    return [p for p in server.all_files() if p.rpartition("/")[2].startswith(".photo-relay-")]


def check_landed_once(
    server: DavServer, items: dict[str, bytes], running: Running, *, temps_allowed: bool = False
) -> None:
    """Once every item is verified: its bytes at its remote path, once; no leftover temp files."""
    running.wait_states(list(items), lambda r: r["state"] == "verified")
    files = server.all_files()
    contents: dict[str, list[str]] = {}
    for path, data in files.items():
        if path.rpartition("/")[2].startswith(".photo-relay-"):
            assert temps_allowed, f"a temp file is left at the destination: {path}"
            continue
        contents.setdefault(sha256_hex(data), []).append(path)
    for sha, receipt in running.receipts(list(items)).items():
        assert receipt["state"] == "verified", receipt
        path = f"{PLANNED_FOLDER}/{receipt['remote_path']}"
        assert files[path] == items[sha]
        assert contents[sha] == [path], f"{sha} landed {len(contents[sha])} times"


def saw_error(running: Running, items: dict[str, bytes]) -> bool:
    """Every item shows a retry in its receipt (attempts, last error) while the fault lasts."""
    receipts = running.receipts(list(items))
    return all(r["attempts"] >= 2 and r["last_error"] for r in receipts.values())


STATUS_FAULTS = [500, 502, 503, 423, 429]


@pytest.mark.parametrize("status", STATUS_FAULTS)
@pytest.mark.parametrize("big", [False, True], ids=["single-put", "chunked"])
def test_transient_status_is_retried_until_relayed(
    tmp_path: Path, nextcloud: DavServer, status: int, big: bool
) -> None:
    """500/502/503/423/429 on uploads: retried with back-off, shown in receipts, then relayed."""
    tally = Tally(f"dest-status[{status},{'chunked' if big else 'put'}]")
    fault = nextcloud.faults.add(Fault("status", status=status, methods={"PUT"}))
    running = start(tmp_path, nextcloud)
    try:
        items = batch(status * 10 + big, big=big)
        running.send(items)
        wait_for(lambda: saw_error(running, items), timeout=60, what="retries to show")
        sha = next(iter(items))
        events = [entry["event"] for entry in running.journal(sha)]
        assert "relay.retry_scheduled" in events
        assert str(status) in running.receipts([sha])[sha]["last_error"]
        nextcloud.faults.clear()
        check_landed_once(nextcloud, items, running)
        tally.add("faults_injected", fault.fired)
        tally.add("items_checked", len(items))
    finally:
        running.stop()
    tally.report()


@pytest.mark.parametrize("status", [507, 401])
def test_full_or_refused_pauses_relay_and_resumes_on_retry(
    tmp_path: Path, nextcloud: DavServer, status: int
) -> None:
    """507 (server full) or 401 (password refused) pause the relay; nothing is lost or failed."""
    tally = Tally(f"dest-pause[{status}]")
    fault = nextcloud.faults.add(Fault("status", status=status, methods={"PUT"}))
    running = start(tmp_path, nextcloud)
    try:
        items = batch(status)
        running.send(items)
        with running.client(admin=True) as admin:
            wait_for(
                lambda: admin.get("/v1/status").json()["relay"]["state"] == "paused",
                what="the relay to pause",
            )
            paused = admin.get("/v1/status").json()["relay"]
        assert paused["reason"]
        puts_while_paused = nextcloud.faults.count("PUT")
        receipts = running.receipts(list(items))
        assert all(r["state"] in ("received", "retry") for r in receipts.values())
        assert nextcloud.faults.count("PUT") == puts_while_paused  # it does not hammer
        nextcloud.faults.clear()
        with running.client(admin=True) as admin:
            assert admin.post("/v1/items/retry").status_code == 200  # the owner fixed it
        check_landed_once(nextcloud, items, running)
        tally.add("faults_injected", fault.fired)
        tally.add("items_checked", len(items))
    finally:
        running.stop()
    tally.report()


BROKEN_REPLIES = {
    # kind of fault: which request it breaks
    "drop": "PUT",  # connection cut in the middle of the body
    "store_nothing": "PUT",  # 201 Created, but nothing stored
    "truncate": "PUT",  # 201 Created, but half the file stored
    "error_body": "PUT",  # 200 OK with an HTML error page
}


@pytest.mark.parametrize("kind", list(BROKEN_REPLIES))
@pytest.mark.parametrize("big", [False, True], ids=["single-put", "chunked"])
def test_lying_or_cut_uploads_are_caught_and_redone(
    tmp_path: Path, nextcloud: DavServer, kind: str, big: bool
) -> None:
    """Cut connections and false successes are caught by verification, retried, then relayed."""
    tally = Tally(f"dest-broken[{kind},{'chunked' if big else 'put'}]")
    fault = nextcloud.faults.add(Fault(kind, methods={BROKEN_REPLIES[kind]}))  # type: ignore[arg-type]
    running = start(tmp_path, nextcloud)
    try:
        items = batch(hash(kind) % 1000 + 5000 + big, big=big)
        running.send(items)
        wait_for(lambda: saw_error(running, items), timeout=60, what="retries to show")
        assert not any(r["state"] == "verified" for r in running.receipts(list(items)).values()), (
            "a copy was called verified while the server was lying"
        )
        nextcloud.faults.clear()
        check_landed_once(nextcloud, items, running)
        tally.add("faults_injected", fault.fired)
        tally.add("items_checked", len(items))
    finally:
        running.stop()
    tally.report()


def relay_through_slow_server(tmp_path: Path, nextcloud: DavServer, tally: Tally) -> Slow:
    """PUTs answered after 2 s with a 0.5 s timeout, until every item shows a retry; then
    answered in 0.2 s until all are verified. Returns the stopped service for inspection."""
    slow = wrap(nextcloud, lambda inner: Slow(inner, method="PUT", seconds=2.0))
    running = start(tmp_path, nextcloud, target_timeout_seconds=0.5)
    try:
        items = batch(7000)
        running.send(items)
        wait_for(lambda: saw_error(running, items), timeout=60, what="timeouts to show")
        slow.seconds = 0.2  # slow, but within the timeout
        check_landed_once(nextcloud, items, running, temps_allowed=True)
        tally.add("faults_injected", slow.delayed)
        tally.add("items_checked", len(items))
    finally:
        running.stop()
    return slow


def test_slow_server_times_out_then_relays(tmp_path: Path, nextcloud: DavServer) -> None:
    """Answers slower than the timeout are retried; once the server is quick again all land."""
    tally = Tally("dest-slow")
    relay_through_slow_server(tmp_path, nextcloud, tally)
    tally.report()


@pytest.mark.xfail(
    strict=False,
    reason="known issue: a PUT the relay gave up on (timeout) can still complete on the "
    "server after the retry's MOVE and re-create the hidden temp file; the fix belongs in "
    "app/targets/webdav.py (see docs/RELIABILITY.md)",
)
def test_slow_server_leaves_no_hidden_temp_file(tmp_path: Path, nextcloud: DavServer) -> None:
    """After timed-out PUTs, no hidden .photo-relay- temp file is left beside the photos."""
    slow = relay_through_slow_server(tmp_path, nextcloud, Tally("dest-slow-temps"))
    wait_for(lambda: slow.in_flight == 0, timeout=30, what="the late PUTs to finish")
    assert hidden_temp_files(nextcloud) == []


def test_outage_delays_but_loses_nothing(tmp_path: Path, nextcloud: DavServer) -> None:
    """With the server down, uploads still succeed and queue; when it is back all are relayed."""
    tally = Tally("dest-outage")
    running = start(tmp_path, nextcloud)
    try:
        nextcloud.stop()
        items = batch(8000)
        running.send(items)  # the phone is not bothered by the outage
        with running.client(admin=True) as admin:
            wait_for(
                lambda: admin.get("/v1/status").json()["relay"]["state"] == "waiting",
                timeout=60,
                what="the relay to wait for the server",
            )
        attempts = sum(r["attempts"] for r in running.receipts(list(items)).values())
        # Only the copies under way met the outage; the others wait without trying.
        assert 1 <= attempts <= running.settings.relay_parallel
        nextcloud.start()
        check_landed_once(nextcloud, items, running)
        tally.add("attempts_during_outage", attempts)
        tally.add("items_checked", len(items))
    finally:
        running.stop()
    tally.report()


def test_server_ignoring_if_none_match_overwrites_nothing(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A server ignoring If-None-Match/Overwrite: F: the owner's files stay, ours get new names."""
    tally = Tally("dest-ignores-preconditions")
    nextcloud.faults.ignore_preconditions = True
    running = start(tmp_path, nextcloud, path_template="{name}")
    try:
        items = batch(9000)
        foreign: dict[str, bytes] = {}
        for index in range(BATCH):  # the owner already has files with the same names
            path = nextcloud.file(f"{PLANNED_FOLDER}/IMG_{index:04d}.JPG")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"owner's own photo {index}".encode())
            os.utime(path, (1_600_000_000, 1_600_000_000))
            foreign[str(path)] = path.read_bytes()
        running.send(items)
        running.wait_states(list(items), lambda r: r["state"] == "verified")
        for path_text, data in foreign.items():
            assert Path(path_text).read_bytes() == data
            assert Path(path_text).stat().st_mtime == 1_600_000_000
        for receipt in running.receipts(list(items)).values():
            assert receipt["remote_path"] != receipt["planned_path"]
        check_landed_once(nextcloud, items, running)
        tally.add("name_clashes", BATCH)
        tally.add("items_checked", len(items))
    finally:
        running.stop()
    tally.report()
