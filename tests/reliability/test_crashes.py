"""Crashes: SIGKILL the service at named points of ingest and relay, restart, lose nothing.

Each test kills a real `photo-relay serve` subprocess — at a crash point it reaches itself
(app/crashpoints.py), or from outside while the test WebDAV server holds a request in
mid-body — then starts it again on the same data and checks the verdict of
tests/reliability/harness.py: every acknowledged item verified exactly once at its
destination, nothing partial under a final name, receipts unchanged for clients that retry.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.fault_plan import HoldBody, wrap
from tests.reliability.harness import (
    Rig,
    Tally,
    blob,
    check_nothing_lost,
    dav_env,
    destination_files,
    sha256_hex,
)
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.reliability

RELAY_POINTS = ("relay.after_claim", "relay.before_mark_verified")
# (crash point, upload form). The body-started point is in the raw-body path only.
CASES = [
    ("ingest.body_started", "put"),
    ("ingest.after_fsync", "put"),
    ("ingest.after_fsync", "form"),
    ("ingest.after_link", "put"),
    ("ingest.after_link", "form"),
    ("ingest.after_record", "put"),
    ("ingest.after_record", "form"),
    ("relay.after_claim", "put"),
    ("relay.before_mark_verified", "form"),
]


def send_form(rig: Rig, data: bytes, name: str) -> httpx.Response:
    with rig.client() as client:
        return client.post(
            "/v1/uploads",
            files={"file": (name, data, "application/octet-stream")},
            data={"sha256": sha256_hex(data)},
        )


def send(rig: Rig, form: str, data: bytes, name: str) -> tuple[int, dict[str, Any]]:
    """Upload by PUT or by form; (status, the receipt of this file)."""
    if form == "form":
        reply = send_form(rig, data, name)
        return reply.status_code, reply.json()["items"][0]
    reply = rig.put(data, name)
    return reply.status_code, reply.json()


def local_library(rig: Rig) -> dict[str, bytes]:
    return destination_files(rig.data_dir / "library")


def test_kill_at_each_ingest_and_relay_point_loses_nothing(tmp_path: Path) -> None:
    """Killed at each point, in turn, on one data folder: nothing acknowledged is ever lost.

    After each kill and restart: every item acknowledged so far is verified once with an
    unchanged receipt; the cut upload is absent (or, killed after its commit, whole and
    relayed); a client retrying it gets 201 then 200 with the same receipt.
    """
    tally = Tally("crash-points-local")
    rig = Rig(tmp_path)
    acknowledged: dict[str, bytes] = {}
    receipts: dict[str, dict[str, Any]] = {}
    for round_number, (point, form) in enumerate(CASES):
        data = blob(round_number, 3_000_000 if point.startswith("ingest") else 500_000)
        sha, name = sha256_hex(data), f"IMG_{round_number:04d}.JPG"
        rig.start(crash_at=point)
        if point.startswith("ingest"):
            with pytest.raises(httpx.TransportError):
                send(rig, form, data, name)
        else:
            status, receipts[sha] = send(rig, form, data, name)
            assert status == 201  # acknowledged; the relay then dies at the point
            acknowledged[sha] = data
        rig.wait_died_by_sigkill()
        rig.start()
        try:
            recorded = sha in rig.states()
            # Only a crash after the commit may leave a cut upload recorded (and relayed).
            assert recorded == (point in ("ingest.after_record", *RELAY_POINTS)), point
            # A recorded item is relayed even if its client never heard back: let that copy
            # finish, or its temp file (a copy in progress) would look like a leftover.
            rig.wait_verified([*acknowledged, *([sha] if recorded else [])])
            check_nothing_lost(rig, acknowledged, lambda: local_library(rig), before=receipts)
            if point.startswith("ingest"):
                status, reply = send(rig, form, data, name)  # the client retries
                assert status == (200 if recorded else 201), (point, reply)
                again_status, again = send(rig, form, data, name)
                assert again_status == 200
                assert (again["received_at"], again["planned_path"]) == (
                    reply["received_at"],
                    reply["planned_path"],
                )
                acknowledged[sha], receipts[sha] = data, reply
            else:
                assert "relay.resumed" in rig.journal_events(sha), point
            rig.wait_verified(list(acknowledged))
            checked = check_nothing_lost(
                rig, acknowledged, lambda: local_library(rig), before=receipts
            )
        finally:
            rig.stop()
        tally.add("kills")
    tally.add("items_checked", checked)
    tally.report()


def nextcloud_rig(tmp_path: Path, server: DavServer) -> Rig:
    # Chunk from 1 MB in 256 KiB parts, so a 1.5 MB file takes the chunked path.
    return Rig(
        tmp_path,
        dav_env(
            server,
            PHOTO_RELAY_TARGET_CHUNK_THRESHOLD_BYTES=str(1_000_000),
            PHOTO_RELAY_TARGET_CHUNK_BYTES=str(256 * 1024),
        ),
    )


@pytest.mark.parametrize(
    ("moment", "size"),
    [
        ("during-put", 600_000),
        ("during-chunk-3", 1_500_000),
        ("relay.after_claim", 600_000),
        ("relay.before_mark_verified", 600_000),
        ("relay.before_mark_verified", 1_500_000),
    ],
)
def test_kill_during_nextcloud_relay_lands_exactly_once(
    tmp_path: Path, nextcloud: DavServer, moment: str, size: int
) -> None:
    """Killed mid-PUT, mid-chunked-upload or after the final MOVE: one verified copy."""
    tally = Tally(f"crash-relay-nextcloud[{moment},{size}]")
    rig = nextcloud_rig(tmp_path, nextcloud)
    data = blob(4, size)
    gate: HoldBody | None = None
    if moment == "during-put":
        gate = wrap(nextcloud, lambda inner: HoldBody(inner, method="PUT", path_contains="/files/"))
    elif moment == "during-chunk-3":
        gate = wrap(nextcloud, lambda inner: HoldBody(inner, method="PUT", path_contains="/00003"))
    rig.start(crash_at=None if gate else moment)
    reply = rig.put(data, "IMG_0004.JPG")
    assert reply.status_code == 201, reply.text
    if gate is not None:
        assert gate.reached.wait(timeout=30), "the relay never reached the held request"
        rig.kill()
        gate.release.set()
    else:
        rig.wait_died_by_sigkill()
    tally.add("kills")
    rig.start()
    try:
        rig.wait_verified([sha256_hex(data)])
        tally.add(
            "items_checked",
            check_nothing_lost(
                rig,
                {sha256_hex(data): data},
                nextcloud.all_files,
                before={sha256_hex(data): reply.json()},
            ),
        )
        if moment == "during-chunk-3":
            # The chunks sent before the kill were not sent again: the upload resumed.
            assert nextcloud.faults.count("PUT", "/00001") == 1
    finally:
        rig.stop()
    tally.report()


def test_random_kills_under_load_lose_nothing(tmp_path: Path, nextcloud: DavServer) -> None:
    """Ten SIGKILLs at random moments while clients upload and the relay copies: nothing lost."""
    tally = Tally("crash-random")
    rig = nextcloud_rig(tmp_path, nextcloud)
    rng = random.Random(6)
    acknowledged: dict[str, bytes] = {}
    attempted: dict[str, bytes] = {}
    seed = 100
    for _round in range(10):
        rig.start()
        stop = threading.Event()
        lock = threading.Lock()

        def upload(worker: int, stop: threading.Event = stop, lock: threading.Lock = lock) -> None:
            nonlocal seed
            with rig.client(timeout=10) as client:
                while not stop.is_set():
                    with lock:
                        seed += 1
                        mine = seed
                    data = blob(mine, rng.randint(50_000, 1_600_000))
                    attempted[sha256_hex(data)] = data
                    try:
                        reply = rig.put(data, f"IMG_{mine:04d}.JPG", client)
                    except httpx.TransportError:
                        return
                    if reply.status_code in (200, 201):
                        acknowledged[sha256_hex(data)] = data
                        tally.add("uploads_acknowledged")

        workers = [threading.Thread(target=upload, args=(n,)) for n in range(3)]
        for worker in workers:
            worker.start()
        threading.Event().wait(rng.uniform(0.3, 1.5))  # the random moment of the kill
        rig.kill()
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        tally.add("kills")
    rig.start()
    try:
        lost = set(attempted) - set(acknowledged)
        for sha in lost:  # clients retry what was never acknowledged
            assert rig.put(attempted[sha], "retry.JPG").status_code in (200, 201)
        rig.wait_verified(list(attempted), timeout=120)
        tally.add("items_retried_after_kill", len(lost))
        tally.add("items_checked", check_nothing_lost(rig, attempted, nextcloud.all_files))
    finally:
        rig.stop()
    tally.report()
