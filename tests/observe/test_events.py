"""Live events: the /v1/events WebSocket (httpx-ws against the real server) and the hub."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketSession, WebSocketUpgradeError, connect_ws

from app.observe.events import EventHub
from app.observe.metrics import Metrics
from app.store.db import Database
from app.store.journal import write_journal
from app.store.overview import Overview
from tests.conftest import Service, make_settings, running, sha256_hex
from tests.support import samples
from tests.support.servers import wait_for
from tests.support.status_page import logged_in, upload


def receive_until(
    ws: WebSocketSession, match: Callable[[dict[str, Any]], bool], *, limit: int = 50
) -> dict[str, Any]:
    """Read events until one matches; each read waits at most 10 s."""
    for _ in range(limit):
        event: dict[str, Any] = ws.receive_json(timeout=10)
        if match(event):
            return event
    raise AssertionError("the expected event did not come")


def test_websocket_streams_journal_events_with_counts(service: Service) -> None:
    """An upload shows up as item.received then relay.verified, each with fresh counts."""
    data = samples.jpeg(seed=21)
    sha = sha256_hex(data)
    headers = {"Authorization": f"Bearer {service.admin_token}"}
    with (
        httpx.Client() as client,
        connect_ws(f"{service.base_url}/v1/events", client, headers=headers) as ws,
    ):
        first = ws.receive_json(timeout=10)
        assert first["type"] == "snapshot"
        assert first["counts"]["verified"] == 0
        upload(service, data, "IMG_0021.JPG")
        received = receive_until(ws, lambda e: e.get("event") == "item.received")
        assert received["sha256"] == sha
        assert received["item"]["original_name"] == "IMG_0021.JPG"
        assert "Received IMG_0021.JPG" in received["message"]
        verified = receive_until(ws, lambda e: e.get("event") == "relay.verified")
    assert verified["item"]["state"] == "verified"
    assert verified["counts"]["verified"] == 1


def test_websocket_reports_copy_progress_in_bytes(service: Service) -> None:
    """While the relay copies a file, progress events count its bytes up to its size."""
    data = samples.jpeg(seed=22, padding=3 * 1024 * 1024)
    headers = {"Authorization": f"Bearer {service.admin_token}"}
    with (
        httpx.Client() as client,
        connect_ws(f"{service.base_url}/v1/events", client, headers=headers) as ws,
    ):
        upload(service, data, "BIG.JPG")
        done = receive_until(ws, lambda e: e["type"] == "progress" and e["sent"] == len(data))
        finished = receive_until(ws, lambda e: e["type"] == "progress_done")
    assert done["size"] == len(data) and done["name"] == "BIG.JPG"
    assert finished["sha256"] == sha256_hex(data)


def test_websocket_replays_what_happened_after_the_page_was_rendered(service: Service) -> None:
    """With ?after=<id> the entries since that id come first, each once; older ones never."""
    upload(service, samples.jpeg(seed=23), "OLD.JPG")
    with service.admin() as admin:
        wait_for(lambda: admin.get("/v1/status").json()["counts"]["verified"] == 1)
    rendered_at = service.server.app_services.monitoring.overview.last_journal_id()
    upload(service, samples.jpeg(seed=24), "NEW.JPG")  # between rendering and connecting
    headers = {"Authorization": f"Bearer {service.admin_token}"}
    with (
        httpx.Client() as client,
        connect_ws(
            f"{service.base_url}/v1/events?after={rendered_at}", client, headers=headers
        ) as ws,
    ):
        assert ws.receive_json(timeout=10)["type"] == "snapshot"
        replayed = ws.receive_json(timeout=10)
        assert replayed["event"] == "item.received"
        assert replayed["item"]["original_name"] == "NEW.JPG"
        assert replayed["id"] == rendered_at + 1
        verified = receive_until(ws, lambda e: e.get("event") == "relay.verified")
        assert verified["item"]["original_name"] == "NEW.JPG"
        upload(service, samples.jpeg(seed=25), "LATER.JPG")
        later = receive_until(ws, lambda e: e.get("event") == "item.received")
    assert later["item"]["original_name"] == "LATER.JPG"
    assert later["id"] > verified["id"]


def test_websocket_accepts_the_page_session_cookie(service: Service) -> None:
    """A browser's session cookie from our own origin opens the stream."""
    with (
        logged_in(service) as client,
        connect_ws(
            f"{service.base_url}/v1/events", client, headers={"Origin": service.base_url}
        ) as ws,
    ):
        assert ws.receive_json(timeout=10)["type"] == "snapshot"


@pytest.mark.parametrize("who", ["nobody", "device", "wrong", "foreign-origin"])
def test_websocket_refuses_everyone_but_the_admin(service: Service, who: str) -> None:
    """No token, a device token, a wrong token, or the cookie from another site: 403."""
    with logged_in(service) as client:
        headers = {
            "nobody": {},
            "device": {"Authorization": f"Bearer {service.device_token}"},
            "wrong": {"Authorization": "Bearer nope"},
            "foreign-origin": {"Origin": "http://evil.example"},
        }[who]
        if who != "foreign-origin":
            client.cookies.clear()
        with (
            pytest.raises(WebSocketUpgradeError) as refused,
            connect_ws(f"{service.base_url}/v1/events", client, headers=headers),
        ):
            pass
    assert refused.value.response.status_code == 403


def test_events_from_another_process_reach_the_stream(tmp_path: Path) -> None:
    """A retry written by the CLI (another connection) is streamed within the poll interval."""
    from app.store.db import Database
    from app.store.state import State
    from tests.support.status_page import blocked_library_settings, photo_from_2024

    settings = blocked_library_settings(tmp_path, events_poll_seconds=0.2)
    with running(settings) as service:
        data = photo_from_2024(seed=7)
        sha = sha256_hex(data)
        headers = {"Authorization": f"Bearer {service.admin_token}"}
        with (
            httpx.Client() as client,
            connect_ws(f"{service.base_url}/v1/events", client, headers=headers) as ws,
        ):
            upload(service, data, "IMG_0007.JPG")
            receive_until(ws, lambda e: e.get("event") == "relay.failed")
            other = Database(settings.database_path)  # what `photo-relay retry` opens
            try:
                assert State(other).requeue_failed(sha) == 1
            finally:
                other.close()
            requeued = receive_until(ws, lambda e: e.get("event") == "relay.requeued")
            assert requeued["sha256"] == sha
            # The relay was woken by it too: it tries (and fails) again at once.
            again = receive_until(ws, lambda e: e.get("event") == "relay.failed")
            assert again["sha256"] == sha


def test_slow_subscriber_is_marked_lagged_and_never_blocks_publishing() -> None:
    """Past its queue size a subscriber drops events for a `lagged` marker; publish returns."""

    async def scenario() -> list[dict[str, Any]]:
        hub = EventHub(queue_size=8)
        hub.bind(asyncio.get_running_loop())
        slow = hub.subscribe()
        for number in range(100):
            hub.publish({"type": "journal", "id": number})
        received = []
        while slow.pending():
            received.append(await slow.next())
        return received

    received = asyncio.run(scenario())
    assert {"type": "lagged"} in received
    assert len(received) <= 8
    assert received[-1] == {"type": "journal", "id": 99}


def test_publish_from_worker_threads_arrives_on_the_loop() -> None:
    """Events published from other threads are delivered on the event loop, all of them."""

    async def scenario() -> list[int]:
        hub = EventHub(queue_size=1000)
        hub.bind(asyncio.get_running_loop())
        subscription = hub.subscribe()
        seen_threads: set[int] = set()
        hub.add_listener(lambda _: seen_threads.add(threading.get_ident()))
        workers = [
            threading.Thread(
                target=lambda base=base: [hub.publish({"id": base + i}) for i in range(50)]
            )
            for base in (0, 1000, 2000)
        ]
        for worker in workers:
            worker.start()
        await asyncio.to_thread(lambda: [w.join() for w in workers])
        ids = [(await subscription.next())["id"] for _ in range(150)]
        assert seen_threads == {threading.get_ident()}
        return ids

    ids = asyncio.run(scenario())
    assert sorted(ids) == sorted([b + i for b in (0, 1000, 2000) for i in range(50)])


def test_metrics_need_the_admin_token_and_count_what_happened(service: Service) -> None:
    """/metrics refuses strangers and devices; after one upload it counts it and its latency."""
    data = samples.jpeg(seed=31)
    upload(service, data, "IMG_0031.JPG")
    upload(service, data, "IMG_0031.JPG")
    with service.client() as stranger, service.device() as device, service.admin() as admin:
        assert stranger.get("/metrics").status_code == 401
        assert device.get("/metrics").status_code == 401

        def scraped() -> str | None:
            text = admin.get("/metrics").text
            return text if "photo_relay_relay_latency_seconds_count 1.0" in text else None

        text = wait_for_text(scraped)
    assert "photo_relay_received_total 1.0" in text
    assert "photo_relay_duplicates_total 1.0" in text
    assert 'photo_relay_verified_total{destination="1"} 1.0' in text
    assert f"photo_relay_received_bytes_total {float(len(data))}" in text
    assert 'photo_relay_items{state="verified"} 1.0' in text
    assert "photo_relay_queue_depth 0.0" in text


def test_metrics_can_be_public_by_setting(tmp_path: Path) -> None:
    """With PHOTO_RELAY_METRICS_PUBLIC the scrape needs no token."""
    with running(make_settings(tmp_path, metrics_public=True)) as service, service.client() as c:
        reply = c.get("/metrics")
    assert reply.status_code == 200
    assert "photo_relay_queue_depth" in reply.text


def wait_for_text(probe: Callable[[], str | None]) -> str:
    result: str = wait_for(probe, what="the metrics to show the copy")
    return result


def test_journal_entries_without_a_destination_count_for_the_first_one(tmp_path: Path) -> None:
    """Entries written before the journal named destinations (as a migrated database has
    them) still count, for destination 1; a new entry counts for its own destination."""
    db = Database(tmp_path / "photo-relay.db")
    try:

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(  # as the code before the journal named destinations wrote it
                "INSERT INTO journal (at, sha256, event, message) VALUES (?, NULL, ?, ?)",
                ("2026-01-01T00:00:00+00:00", "relay.failed", "old"),
            )
            write_journal(conn, "relay.failed", "new", destination=3)

        db.call(write)
        metrics = Metrics()
        for entry in Overview(db).journal_since(0):
            metrics.observe(entry.as_event())
    finally:
        db.close()
    assert metrics.snapshot().per_destination["photo_relay_failed"] == {1: 1.0, 3: 1.0}
