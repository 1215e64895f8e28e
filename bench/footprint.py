"""Memory, the check endpoint and start-up, in one run: `.venv/bin/python -m bench.footprint`.

- start-up: from spawning `photo-relay serve` until /healthz answers (fresh data folder;
  `--only startup` measures just this);
- memory: resident set of the service process idle, and its peak (sampled VmRSS and the
  kernel's VmHWM) while a 2 GiB file is uploaded by PUT and, on a fresh process, by
  multipart; the file is generated on the fly, so no 2 GiB source file is needed;
- check: POST /v1/items/check with 10,000 hashes (half known) against a database holding
  20,000 items, timed at the client over loopback (an upper bound of the server time).
`--one-core` runs it all pinned to CPU 0 (as `taskset -c 0`) into its own section.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.client import Body, Connection, GeneratedStream
from bench.dataset import GeneratedFile, MiB
from bench.machine import ONE_CORE, describe, pinned
from bench.report import median, samples, write_section
from bench.rig import RelayService, RssSampler, cpu_seconds, status_bytes

MB = 1000 * 1000
BOUNDARY = "photo-relay-bench-boundary"


def measure_startup(workdir: Path, times: int) -> tuple[list[float], list[float]]:
    """Wall seconds until /healthz answered, and the CPU seconds the process used by then.

    The CPU figure is what start-up costs without the waiting a busy machine adds.
    """
    seconds, cpu = [], []
    for _ in range(times):
        service = RelayService(workdir)
        service.prepare().close()
        try:
            seconds.append(service.start())
            cpu.append(cpu_seconds(service.pid))
        finally:
            service.remove()
    return seconds, cpu


def put_generated(service: RelayService, big: GeneratedFile, sha: str) -> int:
    body = GeneratedStream(big.chunks(), big.size)
    with Connection(service.port) as conn:
        return conn.request("PUT", f"/v1/blobs/{sha}", service.auth, [body]).status


def multipart_generated(service: RelayService, big: GeneratedFile, _sha: str) -> int:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        'filename="big.mov"\r\nContent-Type: video/quicktime\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    headers = {**service.auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    body: Body = [head, GeneratedStream(big.chunks(), big.size), tail]
    with Connection(service.port) as conn:
        return conn.request("POST", "/v1/uploads", headers, body).status


def measure_memory(
    workdir: Path, big: GeneratedFile, sha: str, send: Callable[..., int]
) -> dict[str, float]:
    """Idle RSS after start, then the peak while `send` uploads `big`."""
    service = RelayService(workdir)
    try:
        service.start()
        time.sleep(1.0)
        idle = status_bytes(service.pid, "VmRSS")
        with RssSampler(service.pid) as sampler:
            status = send(service, big, sha)
        if status != 201:
            raise RuntimeError(f"the upload answered {status}")
        peak = max(sampler.peak, status_bytes(service.pid, "VmHWM"))
        after = status_bytes(service.pid, "VmRSS")
        return {"idle": idle / MB, "peak": peak / MB, "after": after / MB}
    finally:
        service.remove()


def seed_items(service: RelayService, count: int, rng: random.Random) -> list[str]:
    hashes = [rng.randbytes(32).hex() for _ in range(count)]
    rows = [
        (
            h,
            4 * MiB,
            f"IMG_{i:05d}.JPG",
            "image",
            "2024-05-01T12:00:00+02:00",
            "2024-05-01T12:00:00",
            "exif",
            1,
            "2024-05-01T12:00:00+00:00",
            "verified",
            f"2024/05/IMG_{i:05d}.JPG",
            None,
        )
        for i, h in enumerate(hashes)
    ]
    db = service.prepare()

    def insert(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO items (sha256, size, original_name, kind, captured_at, "
            "captured_local, captured_source, device_id, received_at, state, planned_path, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        # The check answers a device only for its person's items (issue 18): each item
        # is the bench device's, as its upload would have recorded.
        conn.execute(
            "INSERT INTO item_senders (sha256, person_id, device_id, first_at) "
            "SELECT items.sha256, devices.person_id, devices.id, items.received_at "
            "FROM items JOIN devices ON devices.id = items.device_id"
        )

    db.call(insert)
    db.close()
    return hashes


def measure_check(workdir: Path, requests: int) -> tuple[list[float], float]:
    """Round-trip seconds of each request, and the server's CPU seconds per request."""
    rng = random.Random(10)
    service = RelayService(workdir)
    try:
        known = seed_items(service, 20_000, rng)
        asked = rng.sample(known, 5_000) + [rng.randbytes(32).hex() for _ in range(5_000)]
        body = json.dumps({"sha256": asked}).encode()
        service.start()
        headers = {**service.auth, "Content-Type": "application/json"}
        seconds = []
        with Connection(service.port) as conn:
            for number in range(requests + 1):
                if number == 1:
                    cpu = cpu_seconds(service.pid)
                started = time.perf_counter()
                response = conn.request("POST", "/v1/items/check", headers, [body])
                seconds.append(time.perf_counter() - started)
                result = json.loads(response.body)
                if response.status != 200 or len(result["known"]) != 5_000:
                    raise RuntimeError(f"check answered {response.status}: {response.body[:300]!r}")
        # The first request warms the caches and is left out.
        return seconds[1:], (cpu_seconds(service.pid) - cpu) / requests
    finally:
        service.remove()


def render(
    machine: str,
    startup: tuple[list[float], list[float]],
    memory: dict[str, list[dict[str, float]]],
    check: tuple[list[float], float],
    big: GeneratedFile,
) -> str:
    rows = [
        "| Figure | Median | Every run | Goal | Met |",
        "|---|---|---|---|---|",
    ]
    start_ms = [s * 1000 for s in startup[0]]
    start_cpu_ms = [s * 1000 for s in startup[1]]
    ok = median(start_ms) < 1000
    rows.append(
        f"| Start-up: spawn to /healthz answering | {median(start_ms):.0f} ms "
        f"| {samples(start_ms)} | < 1000 ms | {'yes' if ok else '**no**'} |"
    )
    rows.append(
        f"| Start-up: CPU time the process used until then (user + system) "
        f"| {median(start_cpu_ms):.0f} ms | {samples(start_cpu_ms)} | | |"
    )
    for name, runs in memory.items():
        idle = [r["idle"] for r in runs]
        growth = [r["peak"] - r["idle"] for r in runs]
        ok = median(growth) <= 100
        rows.append(
            f"| RSS idle (before the {name} upload) | {median(idle):.0f} MB | {samples(idle)} | | |"
        )
        rows.append(
            f"| RSS peak during a {big.size / MiB / 1024:g} GiB {name} upload, above idle "
            f"| {median(growth):.0f} MB | {samples(growth)} | ≤ 100 MB | "
            f"{'yes' if ok else '**no**'} |"
        )
    check_ms = [s * 1000 for s in check[0]]
    ok = median(check_ms) < 100
    rows.append(
        f"| Check, 10,000 hashes (5,000 known) in one request, round trip "
        f"| {median(check_ms):.0f} ms | {samples(check_ms)} | < 100 ms | "
        f"{'yes' if ok else '**no**'} |"
    )
    rows.append(
        f"| Check: server CPU time per request (mean over the requests above) "
        f"| {check[1] * 1000:.0f} ms | | | |"
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([f"Measured {when} on: {machine}.", "", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    parser.add_argument(
        "--only", choices=["startup"], help="measure only this and print it (the doc is kept)"
    )
    parser.add_argument(
        "--one-core", action="store_true", help="run pinned to CPU 0 (its own doc section)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="photo-relay-bench-"))
    with pinned(ONE_CORE if args.one_core else None):
        measure_all(args, workdir)


def measure_all(args: argparse.Namespace, workdir: Path) -> None:
    try:
        startup = measure_startup(workdir, 2 * args.rounds + 1)
        print("start-up seconds:", samples(startup[0], "{:.3f}"), flush=True)
        print("start-up CPU seconds:", samples(startup[1], "{:.3f}"), flush=True)
        if args.only == "startup":
            print(f"median {median(startup[0]):.3f} s, CPU {median(startup[1]):.3f} s")
            return
        big = GeneratedFile(args.big_mib * MiB, seed=3)
        sha = big.sha256()
        memory: dict[str, list[dict[str, float]]] = {"PUT": [], "multipart": []}
        for _ in range(args.rounds):
            memory["PUT"].append(measure_memory(workdir, big, sha, put_generated))
            memory["multipart"].append(measure_memory(workdir, big, sha, multipart_generated))
            print("memory MB:", memory["PUT"][-1], memory["multipart"][-1], flush=True)
        check = measure_check(workdir, 10 * args.rounds)
        print("check seconds:", samples(check[0], "{:.3f}"), f"CPU {check[1]:.3f}", flush=True)
        text = render(describe(workdir), startup, memory, check, big)
        print(text)
        if not args.no_write:
            write_section("footprint-one-core" if args.one_core else "footprint", text)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
