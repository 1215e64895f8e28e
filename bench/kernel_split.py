"""Where each photo's CPU goes, by library, for the loop, the network floor and photo-relay:
`.venv/bin/python -m bench.kernel_split`.

Each round takes the same photos in three ways, one after the other, each right after
the page-cache warm-up (`rig.warm_page_cache`): the 4-writer local loop (in this process),
the network floor and photo-relay's PUT (4 clients each, as `bench.ingest`). `perf record`
samples only the process doing the work, and the samples are split into the kernel (with
the copy into the page cache, `copy_folio_from_iter_atomic`, on its own), libcrypto
(SHA-256), libpython and the rest, in milliseconds per photo. It prints; nothing is
written to the docs. Needs `perf` (`apt-get install -y linux-perf`, or the kernel's own).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import ingest
from bench.dataset import Dataset, MiB, make_dataset
from bench.rig import NETWORK_FLOOR, FloorService, RelayService, warm_page_cache

HZ = 2000
PAGE_CACHE_COPY = "copy_folio_from_iter_atomic"
# A sample's share by shared object: the first name that matches wins.
PARTS = {"kernel": "[kernel", "libcrypto": "libcrypto", "libpython": "libpython"}


def perf_counts(data: Path, key: str) -> dict[str, int]:
    """Samples per symbol or shared object (`key`) of a `perf record` file."""
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "-n", "--sort", key, "--stdio"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: dict[str, int] = {}
    for line in report.splitlines():
        if match := re.match(r"\s*[\d.]+%\s+(\d+)\s+(.*\S)", line):
            counts[match.group(2)] = int(match.group(1))
    return counts


def split(data: Path, photos: int) -> dict[str, float]:
    """Milliseconds of CPU per photo: all, each part, and the page-cache copy."""
    per_photo = 1000 / HZ / photos
    by_object = perf_counts(data, "dso")
    shares = {"all": sum(by_object.values())}
    for part, marker in PARTS.items():
        shares[part] = sum(n for name, n in by_object.items() if marker in name)
    shares["page-cache copy"] = sum(
        n for name, n in perf_counts(data, "sym").items() if PAGE_CACHE_COPY in name
    )
    return {part: n * per_photo for part, n in shares.items()}


def measured(pid: int, out: Path, work: Callable[[], float]) -> float:
    """`work()` (it returns its seconds) while `perf record` samples `pid` into `out`."""
    spy = subprocess.Popen(
        ["perf", "record", "-F", str(HZ), "-o", str(out), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # perf attached before the first photo
    try:
        return work()
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def one_figure(workdir: Path, data: Dataset, name: str) -> tuple[float, dict[str, float]]:
    server: FloorService | RelayService | None = None
    send: ingest.Send
    if name == "loop":
        pid = os.getpid()

        def work() -> float:
            return ingest.local_loop(data.photos, workdir / "loop", ingest.CLIENTS).seconds

    else:
        if name == "floor":
            floor = FloorService(workdir, NETWORK_FLOOR)
            floor.start()
            server, port, send = floor, floor.port, ingest.put_webdav
        else:
            service = RelayService(workdir)
            service.start()
            server, port, send = service, service.port, ingest.put_ours(data, service)
        pid = server.pid

        def work() -> float:
            return ingest.send_all(port, data.photos, send, ingest.CLIENTS, pid).seconds

    out = workdir / f"{name}.perf"
    try:
        warm_page_cache(workdir)
        seconds = measured(pid, out, work)
    finally:
        if server is not None:
            server.remove()
        os.sync()
    return seconds, split(out, len(data.photos))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=150)
    args = parser.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed: apt-get install -y linux-perf")
    workdir = Path(tempfile.mkdtemp(prefix="photo-relay-kernel-split-"))
    try:
        data = make_dataset(
            workdir / "files", big_bytes=MiB, photos=args.photos, photo_bytes=4 * MiB
        )
        print(f"ms of CPU per 4 MiB photo ({args.photos} photos, 4 at once, perf at {HZ} Hz)")
        for round_number in range(1, args.rounds + 1):
            for name in ("loop", "floor", "photo-relay"):
                seconds, parts = one_figure(workdir, data, name)
                shown = "  ".join(f"{part} {ms:5.2f}" for part, ms in parts.items())
                print(f"round {round_number} {name:11s} {seconds:5.2f} s  {shown}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
