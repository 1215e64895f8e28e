"""An outage only delays: NextCloud down far longer than the old give-up time costs nothing.

The clock is made fast through settings, not by sleeping: retries 0.01–0.05 s apart and at
most 3 counted problems (`relay_max_attempts`), so the relay of before gave up on every
item after well under a second; the destination probe runs every 0.3 s
(`relay_probe_seconds`). The outage then lasts OUTAGE_SECONDS, dozens of old give-up
times. What must hold: no item ever becomes `failed`; the headline (status page and
`photo-relay status` in another process) names the outage and the count; while it lasts
the relay sends only its probe (requests counted at the server); once the server answers
the relay goes back to work by itself within the probe interval, and every item lands
verified exactly once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from tests.conftest import Service, remote_settings, running
from tests.reliability.harness import Tally, blob, dav_env, sha256_hex
from tests.support.faults import Fault
from tests.support.servers import ThreadedService, wait_for
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.reliability

BATCH = 6
PROBE_SECONDS = 0.3
# How long the destination stays down: the old relay gave up after < 0.1 s here.
OUTAGE_SECONDS = 4.0
# Time the machine may take beyond the probe interval to notice and act (2 shared cores).
SLACK_SECONDS = 2.0
FOLDER = "Photos/iPhone"


def fast_settings(tmp_path: Path, server: DavServer) -> Settings:
    return remote_settings(
        tmp_path,
        server,
        relay_retry_base_seconds=0.01,
        relay_retry_max_seconds=0.05,
        relay_max_attempts=3,
        relay_probe_seconds=PROBE_SECONDS,
    )


@contextmanager
def restarted(settings: Settings, token: str) -> Iterator[Service]:
    """The same data folder served again (its device kept), as after a restart."""
    server = ThreadedService(settings)
    server.start()
    try:
        yield Service(server, settings, token)
    finally:
        server.stop()


def send_batch(service: Service, seed: int) -> dict[str, bytes]:
    items = {sha256_hex(data): data for data in (blob(seed + n, 30_000) for n in range(BATCH))}
    with service.device() as client:
        for index, (sha, data) in enumerate(items.items()):
            reply = client.put(
                f"/v1/blobs/{sha}",
                content=data,
                headers={"Content-Disposition": f'attachment; filename="IMG_{index:04d}.JPG"'},
            )
            assert reply.status_code == 201, reply.text
    return items


def receipts(service: Service, shas: list[str]) -> dict[str, dict[str, Any]]:
    with service.admin() as admin:
        return {sha: admin.get(f"/v1/items/{sha}").json() for sha in shas}


def relay_state(service: Service) -> str:
    with service.admin() as admin:
        state: str = admin.get("/v1/status").json()["relay"]["state"]
        return state


def headline_on_page(service: Service) -> str:
    with service.admin() as admin:
        page = admin.get("/").text
    found = re.search(r'<h1 id="headline">(.*?)</h1>', page, re.S)
    assert found, "the status page has no headline"
    return found.group(1).strip()


def headline_in_terminal(settings: Settings, server: DavServer) -> str:
    """`photo-relay status` in its own process, reading the running service's data folder
    (the service got its destination from these settings; the command from its environment)."""
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "status", "--data-dir", str(settings.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **dav_env(server, PHOTO_RELAY_TARGET_FOLDER=f"/{FOLDER}")},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def outlast_the_old_give_up(service: Service, shas: list[str]) -> int:
    """Keep the outage for OUTAGE_SECONDS, checking all along that nothing turns `failed`.

    Returns how many times the receipts were read.
    """
    deadline = time.monotonic() + OUTAGE_SECONDS
    looks = 0
    while time.monotonic() < deadline:
        states = {r["state"] for r in receipts(service, shas).values()}
        assert "failed" not in states, states
        assert states <= {"received", "retry", "relaying"}, states
        looks += 1
        time.sleep(0.25)  # the outage's own length, not a wait for something to finish
    return looks


def landed_once(server: DavServer, items: dict[str, bytes], service: Service) -> None:
    files = server.all_files()
    places: dict[str, list[str]] = {}
    for path, data in files.items():
        assert not path.rpartition("/")[2].startswith(".photo-relay-"), f"temp left: {path}"
        places.setdefault(sha256_hex(data), []).append(path)
    for sha, receipt in receipts(service, list(items)).items():
        assert receipt["state"] == "verified", receipt
        path = f"{FOLDER}/{receipt['remote_path']}"
        assert files[path] == items[sha]
        assert places[sha] == [path], f"{sha} landed {len(places[sha])} times"


def journal_event_at(service: Service, event: str) -> datetime:
    entries = service.server.app_services.state.db.call(
        lambda conn: conn.execute(
            "SELECT at FROM journal WHERE event = ? ORDER BY id DESC LIMIT 1", (event,)
        ).fetchall()
    )
    assert entries, f"no {event} in the journal"
    return datetime.fromisoformat(entries[0]["at"])


def test_nextcloud_stopped_for_many_give_up_times_only_delays(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """The server process stopped (connections refused) much longer than the old give-up
    time: nothing fails, the headline tells the truth, the relay resumes by itself."""
    tally = Tally("outage-stopped")
    settings = fast_settings(tmp_path, nextcloud)
    with running(settings) as service:
        first = send_batch(service, 100)  # the destination works: the usual path first
        wait_for(
            lambda: all(r["state"] == "verified" for r in receipts(service, list(first)).values()),
            what="the first batch to be verified",
        )
        nextcloud.stop()
        items = send_batch(service, 200)  # the phone is not bothered by the outage
        shas = list(items)
        wait_for(lambda: relay_state(service) == "waiting", what="the relay to notice")

        page = headline_on_page(service)
        terminal = headline_in_terminal(settings, nextcloud)
        for headline in (page, terminal):
            assert re.fullmatch(
                rf"NextCloud has not answered since \d\d:\d\d; {BATCH} photos are safe "
                r"here and wait\.",
                headline,
            ), headline
            assert "being copied" not in headline
        with service.admin() as admin:
            report = admin.get("/v1/status").json()
        assert report["relay"]["down_since"] is not None  # the API keeps ISO 8601 UTC
        (check,) = [c for c in report["checks"] if c["name"] == "destination"]
        assert check["status"] == "warn" and "has not answered since" in check["message"]
        attempts_before = sum(r["attempts"] for r in receipts(service, shas).values())
        looks = outlast_the_old_give_up(service, shas)
        attempts_after = sum(r["attempts"] for r in receipts(service, shas).values())
        # While it is down, files are not sent at all: only the copies under way met it.
        assert attempts_after == attempts_before <= settings.relay_parallel

        nextcloud.start()
        back_at = datetime.now().astimezone()
        wait_for(
            lambda: all(r["state"] == "verified" for r in receipts(service, shas).values()),
            timeout=30,
            what="every item to be verified after the outage",
        )
        noticed = (journal_event_at(service, "relay.destination_back") - back_at).total_seconds()
        assert noticed <= PROBE_SECONDS + SLACK_SECONDS, noticed
        landed_once(nextcloud, {**first, **items}, service)
        journal = service.server.app_services.state.db.call(
            lambda conn: conn.execute("SELECT event FROM journal").fetchall()
        )
        events = [row["event"] for row in journal]
        assert "relay.failed" not in events
        assert events.count("relay.destination_down") == 1
        assert headline_on_page(service).startswith("Everything is safe")
    tally.add("outage_ms", int(OUTAGE_SECONDS * 1000))
    tally.add("receipt_checks_during_outage", looks)
    tally.add("copy_attempts_during_outage", attempts_after)
    tally.add("ms_from_server_back_to_relay_back", int(max(noticed, 0.0) * 1000))
    tally.report()


def test_a_proxy_answering_502_costs_only_the_probe(tmp_path: Path, nextcloud: DavServer) -> None:
    """NextCloud down behind a proxy that answers 502 to everything: the requests that reach
    the server during the outage are the probe's (about one per interval), not a retry
    storm; when it answers again, each item lands verified once."""
    tally = Tally("outage-proxy-502")
    settings = fast_settings(tmp_path, nextcloud)
    with running(settings) as service:
        items = send_batch(service, 300)
        wait_for(
            lambda: all(r["state"] == "verified" for r in receipts(service, list(items)).values()),
            what="the first batch to be verified",
        )
        nextcloud.faults.add(Fault("status", status=502))  # every method, until removed
        more = send_batch(service, 400)
        items.update(more)
        wait_for(lambda: relay_state(service) == "waiting", what="the relay to notice")
        before = nextcloud.faults.count()
        started = time.monotonic()
        outlast_the_old_give_up(service, list(more))
        during = nextcloud.faults.count() - before
        lasted = time.monotonic() - started
        # One probe per interval, and nothing else; a few more for timing at the edges.
        assert during <= lasted / PROBE_SECONDS + 3, during
        assert during >= 1  # it does keep asking
        nextcloud.faults.clear()
        wait_for(
            lambda: all(r["state"] == "verified" for r in receipts(service, list(more)).values()),
            timeout=30,
            what="every item to be verified after the outage",
        )
        landed_once(nextcloud, items, service)
    tally.add("outage_ms", int(lasted * 1000))
    tally.add("requests_during_outage", during)
    tally.add("probe_interval_ms", int(PROBE_SECONDS * 1000))
    tally.report()


def test_a_restart_during_the_outage_keeps_waiting_and_keeps_the_time(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Stopped and started again while NextCloud is down: the relay asks before it sends,
    the headline keeps the outage's first time, and it carries on once the server answers."""
    settings = fast_settings(tmp_path, nextcloud)
    nextcloud.stop()
    with running(settings) as service:
        items = send_batch(service, 500)
        wait_for(lambda: relay_state(service) == "waiting", what="the relay to notice")
        before = headline_on_page(service)
        attempts = sum(r["attempts"] for r in receipts(service, list(items)).values())
        token = service.device_token
    with restarted(settings, token) as service:
        assert relay_state(service) == "waiting"  # from the journal, before any copy
        assert headline_on_page(service) == before
        again = sum(r["attempts"] for r in receipts(service, list(items)).values())
        assert again == attempts  # nothing was sent into the outage after the restart
        nextcloud.start()
        wait_for(
            lambda: all(r["state"] == "verified" for r in receipts(service, list(items)).values()),
            timeout=30,
            what="every item to be verified after the outage",
        )
        landed_once(nextcloud, items, service)
