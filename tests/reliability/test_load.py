"""Load: many uploads from 8 concurrent clients, 20 % duplicates, relay running, memory flat.

The issue asks for 2,000 uploads of 1–10 MB; that is ~11 GB through the spool and the
library, too slow for CI on 2 cores. CI runs a scaled version (RELIABILITY_LOAD_UPLOADS,
default 500 uploads of 0.1–2 MB); the full size runs by hand with
    RELIABILITY_LOAD_UPLOADS=2000 RELIABILITY_LOAD_MIN_BYTES=1000000 \
    RELIABILITY_LOAD_MAX_BYTES=10000000 .venv/bin/pytest -m reliability -s --timeout=3600 \
    tests/reliability/test_load.py
and both results are in docs/RELIABILITY.md. The service is a real subprocess, so its RSS
(from /proc) is the service's alone.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from pathlib import Path

import pytest

from tests.reliability.harness import (
    Rig,
    Tally,
    blob,
    check_nothing_lost,
    destination_files,
    sha256_hex,
)

pytestmark = pytest.mark.reliability

UPLOADS = int(os.environ.get("RELIABILITY_LOAD_UPLOADS", "500"))
MIN_BYTES = int(os.environ.get("RELIABILITY_LOAD_MIN_BYTES", "100000"))
MAX_BYTES = int(os.environ.get("RELIABILITY_LOAD_MAX_BYTES", "2000000"))
CLIENTS = 8
DUPLICATE_SHARE = 0.2
# RSS may grow this much between the first and the last quarter of the run (caches, pools);
# holding whole files would grow it by the size of files in flight, up to 8 x MAX_BYTES.
RSS_GROWTH_LIMIT = 40 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc")


def plan(rng: random.Random) -> list[tuple[int, int]]:
    """(seed, size) per upload; about 20 % repeat an earlier seed (same content again)."""
    uploads: list[tuple[int, int]] = []
    for index in range(UPLOADS):
        if uploads and rng.random() < DUPLICATE_SHARE:
            uploads.append(rng.choice(uploads))
        else:
            uploads.append((index, rng.randint(MIN_BYTES, MAX_BYTES)))
    return uploads


def test_concurrent_uploads_with_duplicates_lose_nothing_and_memory_stays_flat(
    tmp_path: Path,
) -> None:
    """8 clients, 20 % duplicates, relay on: no errors, none lost, none doubled, RSS flat."""
    tally = Tally(f"load[{UPLOADS}x{MIN_BYTES}-{MAX_BYTES}]")
    rig = Rig(
        tmp_path, {"PHOTO_RELAY_SPOOL_RETENTION_DAYS": "0", "PHOTO_RELAY_LOG_LEVEL": "warning"}
    )
    uploads = plan(random.Random(4))
    process = rig.start()
    assert process.process is not None
    pid = process.process.pid
    samples: list[int] = []
    errors: list[str] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(enumerate(uploads))
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(rss_bytes(pid))
            done.wait(0.25)

    def client_loop() -> None:
        with rig.client(timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    index, (seed, size) = queue.pop()
                data = blob(seed, size)
                try:
                    reply = rig.put(data, f"IMG_{seed:05d}.JPG", client)
                    code = reply.status_code
                except Exception as exc:  # every failure is counted, none is hidden
                    errors.append(f"{index}: {exc!r}")
                    continue
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                if code not in (200, 201):
                    errors.append(f"{index}: {code} {reply.text[:200]}")

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    clients = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    upload_seconds = time.monotonic() - started
    unique = {sha256_hex(blob(seed, size)): (seed, size) for seed, size in set(uploads)}
    try:
        rig.wait_verified(list(unique), timeout=max(120, UPLOADS))
        relay_seconds = time.monotonic() - started
        done.set()
        sampler.join()
        assert errors == [], errors[:5]
        assert statuses.get(201, 0) == len(unique), statuses
        # Every file landed once (the library holds exactly the unique contents).
        library = destination_files(rig.data_dir / "library")
        assert len(library) == len(unique)
        acknowledged = {sha: blob(seed, size) for sha, (seed, size) in unique.items()}
        check_nothing_lost(rig, acknowledged, lambda: library)
        quarter = max(len(samples) // 4, 1)
        early = statistics.median(samples[quarter : 2 * quarter] or samples)
        late = statistics.median(samples[-quarter:])
        assert late - early < RSS_GROWTH_LIMIT, f"RSS grew from {early} to {late}"
        assert max(samples) < 400 * 1024 * 1024, f"RSS peaked at {max(samples)}"
        tally.add("uploads", UPLOADS)
        tally.add("unique", len(unique))
        tally.add("duplicates", UPLOADS - len(unique))
        tally.add("errors", len(errors))
        tally.add("bytes_sent", sum(size for _, size in uploads))
        tally.add("upload_seconds", round(upload_seconds))
        tally.add("relayed_seconds", round(relay_seconds))
        tally.add("rss_first_mib", samples[0] // 2**20)
        tally.add("rss_median_q2_mib", int(early) // 2**20)
        tally.add("rss_median_q4_mib", int(late) // 2**20)
        tally.add("rss_peak_mib", max(samples) // 2**20)
    finally:
        done.set()
        rig.stop()
    tally.report()
