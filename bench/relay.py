"""Relay throughput and memory, side by side in one run: `.venv/bin/python -m bench.relay`.

photo-relay relays 300 photos of 4 MiB and one 1 GiB file from its spool into WsgiDAV
(bench/webdav_server.py, the server of the ingest bench's direct-PUT anchor) with the
`webdav` target, with and without read-back verification, and `rclone copy` (Debian's
rclone, vendor `other`, `--transfers` = our relay_parallel) copies the same files into the
same server. Each figure gets a fresh WsgiDAV folder and a fresh copy of a spool filled
beforehand (uploaded by PUT while the relay was held, then hard-linked per figure).
WsgiDAV's folders are in /dev/shm when it has room, apart from the service's disk as a
real destination is (`server_folder`; `--server-on-disk` to put them beside the spool).

What is timed, for photo-relay: the service is started on the filled spool with the target
pointing at WsgiDAV; the clock runs from /healthz first answering (the relay task is
started in the lifespan just before the server accepts connections) until every item is
`verified`, polled every 0.1 s by reading the service's SQLite database from the bench
(so polling costs the service no CPU; each receipt is then confirmed once by POST
/v1/items/check). Start-up is shown apart. For rclone: from spawning `rclone copy` until it
exits. Both sides' CPU seconds are counted (the service over the timed interval, rclone
by its rusage, WsgiDAV as the common server), and WsgiDAV counts the requests each needed.

Memory: peak RSS of the service while it relays a 2 GiB file (read-back on, the default)
against the RSS of an idle service. The order of figures rotates between rounds. With
`--one-core` each figure is also measured pinned to CPU 0 (as `taskset -c 0`), right
before or after its two-core run, into its own section (the memory figure only once).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.config import Settings
from bench.client import Connection, GeneratedStream
from bench.dataset import Dataset, GeneratedFile, MiB, make_dataset
from bench.ingest import CLIENTS, put_ours, put_webdav, send_all
from bench.machine import ONE_CORE, describe, pinned
from bench.report import median, samples, write_section
from bench.rig import (
    RelayService,
    RssSampler,
    WebDavService,
    cpu_seconds,
    status_bytes,
    warm_page_cache,
)

__all__ = ["main"]

PARALLEL = 4  # PHOTO_RELAY_RELAY_PARALLEL and rclone's --transfers
POLL_SECONDS = 0.1
MB = 1000 * 1000
FOLDER = "Photos"
USER, PASSWORD = "bench", "bench-password"


@dataclass
class Run:
    """One timed relay: wall seconds, CPU of the copier and of WsgiDAV, requests by method."""

    seconds: float
    copier_cpu: float
    server_cpu: float
    requests: dict[str, int]
    startup: float = 0.0


@dataclass
class Figures:
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def add(self, name: str, run: Run) -> None:
        self.runs.setdefault(name, []).append(run)
        asked = sum(run.requests.values())
        print(
            f"  {name:<22} {run.seconds:7.2f} s  CPU {run.copier_cpu:5.1f} s "
            f"(WsgiDAV {run.server_cpu:4.1f} s)  requests {asked} {run.requests}",
            flush=True,
        )


# -- a filled spool, copied per figure ---------------------------------------------------


@dataclass(frozen=True)
class FilledSpool:
    """A data folder whose spool holds `files` (all `received`), and its device token."""

    data_dir: Path
    token: str
    files: list[Path]
    hashes: list[str]


def fill_spool(workdir: Path, data: Dataset, files: list[Path], name: str) -> FilledSpool:
    """Upload `files` by PUT with the relay held (the bench's default target cannot work)."""
    service = RelayService(workdir)
    service.data_dir = workdir / f"spool-{name}"
    try:
        service.start()
        send_all(service.port, files, put_ours(data, service), CLIENTS, service.pid, data.sha256)
    finally:
        service.stop()
    return FilledSpool(service.data_dir, service.token, files, [data.sha256[p] for p in files])


def clone_data_dir(source: Path, target: Path) -> None:
    """A fresh data folder sharing the spool's files (hard links) but not the database."""

    def copy(src: str, dst: str) -> None:
        if "/spool/" in src:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=copy)


def target_env(webdav: WebDavService, read_back: bool) -> dict[str, str]:
    return {
        "PHOTO_RELAY_TARGET": "webdav",
        "PHOTO_RELAY_TARGET_URL": f"http://127.0.0.1:{webdav.port}/",
        "PHOTO_RELAY_TARGET_USER": USER,
        "PHOTO_RELAY_TARGET_PASSWORD": PASSWORD,
        "PHOTO_RELAY_TARGET_FOLDER": FOLDER,
        "PHOTO_RELAY_TARGET_VERIFY_READ_BACK": "true" if read_back else "false",
        "PHOTO_RELAY_RELAY_PARALLEL": str(PARALLEL),
        "PHOTO_RELAY_LOG_LEVEL": "warning",
    }


def states(conn: Connection, service: RelayService, hashes: list[str]) -> list[str]:
    body = json.dumps({"sha256": hashes}).encode()
    headers = {**service.auth, "Content-Type": "application/json"}
    response = conn.request("POST", "/v1/items/check", headers, [body])
    if response.status != 200:
        raise RuntimeError(f"check answered {response.status}: {response.body[:300]!r}")
    known = json.loads(response.body)["known"]
    return [known[h]["state"] if isinstance(known[h], dict) else known[h] for h in hashes]


def verified_count(database: Path) -> tuple[int, int]:
    """(verified, failed) items, read from the service's database by the bench itself, so
    the polling costs the service no CPU (WAL: a reader never blocks the writer)."""
    with sqlite3.connect(database, timeout=10) as conn:
        rows = dict(conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
    conn.close()
    return rows.get("verified", 0), rows.get("failed", 0)


def wait_verified(service: RelayService, hashes: list[str], timeout: float = 3600) -> None:
    """Poll until every item is verified, then confirm each receipt through the API."""
    deadline = time.monotonic() + timeout
    database = Settings(data_dir=service.data_dir).database_path
    while True:
        verified, failed = verified_count(database)
        if verified >= len(hashes):
            break
        if failed or time.monotonic() > deadline:
            log = (service.data_dir / "service.log").read_text()[-2000:]
            raise RuntimeError(f"the relay did not verify everything ({verified}): {log}")
        time.sleep(POLL_SECONDS)
    with Connection(service.port) as conn:
        now = states(conn, service, hashes)
    if any(s != "verified" for s in now):
        raise RuntimeError(f"a receipt is not verified: {now}")


def check_landed(webdav: WebDavService, files: list[Path]) -> None:
    """Every file is on the server with its size (a content check is the copier's job)."""
    sizes = {p.name: p.stat().st_size for p in webdav.root.rglob("*") if p.is_file()}
    for path in files:
        if sizes.get(path.name) != path.stat().st_size:
            raise RuntimeError(f"{path.name} is not complete on the server: {sizes.get(path.name)}")


def server_folder(workdir: Path, room: int, *, on_disk: bool) -> Path:
    """Where WsgiDAV keeps what it receives: its own storage (RAM, /dev/shm) if there is room.

    A real destination is another machine with its own disk. Sharing the service's disk,
    WsgiDAV leaves up to a GiB of unwritten data there, and the service's next fsync
    (recording a verified copy in its database) waits for ext4 to write that out first:
    the 1 GiB relay took 2.85-3.26 s that way and 1.02-1.54 s with WsgiDAV in /dev/shm,
    against rclone's 1.33-1.78 s either way (rclone records nothing durably).
    """
    shm = Path("/dev/shm")
    if not on_disk and shm.is_dir() and shutil.disk_usage(shm).free >= room:
        return Path(tempfile.mkdtemp(prefix="photo-relay-bench-server-", dir=shm))
    folder = workdir / "server"
    folder.mkdir()
    return folder


def describe_server_folder(folder: Path) -> str:
    if folder.is_relative_to("/dev/shm"):
        return "/dev/shm (RAM), apart from the service's disk as a real destination would be"
    return "on the service's disk (see docs/PERFORMANCE.md: this slows the service's fsyncs)"


def relay_run(workdir: Path, server_dir: Path, spool: FilledSpool, *, read_back: bool) -> Run:
    webdav = WebDavService(server_dir, count_requests=True)
    service = RelayService(workdir, target_env(webdav, read_back))
    service.token = spool.token
    try:
        webdav.start()
        clone_data_dir(spool.data_dir, service.data_dir)
        warm_page_cache(workdir)
        dav_cpu = cpu_seconds(webdav.pid)
        startup = service.start()
        started = time.perf_counter()
        relay_cpu = cpu_seconds(service.pid)
        wait_verified(service, spool.hashes)
        seconds = time.perf_counter() - started
        relay_cpu = cpu_seconds(service.pid) - relay_cpu
        dav_cpu = cpu_seconds(webdav.pid) - dav_cpu
        service.stop()
        check_landed(webdav, spool.files)
        return Run(seconds, relay_cpu, dav_cpu, webdav.request_counts(), startup)
    finally:
        service.remove()
        webdav.remove()
        os.sync()


def rclone_env(webdav: WebDavService, workdir: Path) -> dict[str, str]:
    obscured = subprocess.run(
        ["rclone", "obscure", PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        **os.environ,
        "RCLONE_CONFIG": str(workdir / "rclone.conf"),  # absent: the remote comes from here
        "RCLONE_CONFIG_BENCH_TYPE": "webdav",
        "RCLONE_CONFIG_BENCH_URL": f"http://127.0.0.1:{webdav.port}/",
        "RCLONE_CONFIG_BENCH_VENDOR": "other",
        "RCLONE_CONFIG_BENCH_USER": USER,
        "RCLONE_CONFIG_BENCH_PASS": obscured,
    }


def rclone_run(workdir: Path, server_dir: Path, data: Dataset, files: list[Path]) -> Run:
    """`rclone copy` of `files` into a fresh WsgiDAV folder."""
    webdav = WebDavService(server_dir, count_requests=True)
    try:
        webdav.start()
        env = rclone_env(webdav, workdir)
        source = files[0] if len(files) == 1 else files[0].parent
        only = [] if len(files) == 1 else ["--include", "IMG_*.JPG"]
        command = [
            "rclone",
            "copy",
            str(source),
            f"bench:{FOLDER}",
            "--transfers",
            str(PARALLEL),
            *only,
        ]
        warm_page_cache(workdir)
        dav_cpu = cpu_seconds(webdav.pid)
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        dav_cpu = cpu_seconds(webdav.pid) - dav_cpu
        if process.returncode != 0:
            assert process.stderr is not None
            raise RuntimeError(f"rclone failed: {process.stderr.read()[-2000:]!r}")
        check_landed(webdav, files)
        return Run(seconds, usage.ru_utime + usage.ru_stime, dav_cpu, webdav.request_counts())
    finally:
        webdav.remove()
        os.sync()


def direct_put_run(workdir: Path, server_dir: Path, files: list[Path]) -> Run:
    """The same files PUT straight into a fresh WsgiDAV folder, one request each, by the
    bench's raw-socket client (almost no CPU) on PARALLEL connections: the most any copier
    can reach with this server on this machine."""
    webdav = WebDavService(server_dir, count_requests=True)
    try:
        webdav.start()
        warm_page_cache(workdir)
        dav_cpu = cpu_seconds(webdav.pid)
        sent = send_all(webdav.port, files, put_webdav, PARALLEL, webdav.pid)
        dav_cpu = cpu_seconds(webdav.pid) - dav_cpu
        return Run(sent.seconds, sent.client_cpu, dav_cpu, webdav.request_counts())
    finally:
        webdav.remove()
        os.sync()


# -- memory during a 2 GiB relay ---------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    idle: float  # MB, the service after start with nothing to do
    at_start: float  # MB, the relaying service when /healthz answered
    peak: float  # MB, the relaying service's peak while it relayed
    seconds: float  # the relay of the file, as timed above
    size: int


def measure_memory(workdir: Path, server_dir: Path, size: int) -> Memory:
    big = GeneratedFile(size, seed=5)
    sha = big.sha256()
    holder = RelayService(workdir)
    try:
        holder.start()
        time.sleep(1.0)
        idle = status_bytes(holder.pid, "VmRSS")
        with Connection(holder.port) as conn:
            headers = {**holder.auth, "Content-Disposition": 'attachment; filename="VID_BIG.MOV"'}
            body = [GeneratedStream(big.chunks(), big.size)]
            status = conn.request("PUT", f"/v1/blobs/{sha}", headers, body).status
        if status != 201:
            raise RuntimeError(f"the 2 GiB upload answered {status}")
    finally:
        holder.stop()
    webdav = WebDavService(server_dir)
    service = RelayService(workdir, target_env(webdav, read_back=True))
    service.token = holder.token
    try:
        webdav.start()
        clone_data_dir(holder.data_dir, service.data_dir)
        service.start()
        started = time.perf_counter()
        at_start = status_bytes(service.pid, "VmRSS")
        with RssSampler(service.pid) as sampler:
            wait_verified(service, [sha])
        seconds = time.perf_counter() - started
        peak = max(sampler.peak, status_bytes(service.pid, "VmHWM"))
        return Memory(idle / MB, at_start / MB, peak / MB, seconds, size)
    finally:
        service.remove()
        webdav.remove()
        holder.remove()
        os.sync()


# -- the report --------------------------------------------------------------------------

LABELS = {
    "photos.direct_put": "WsgiDAV's own limit: one plain PUT per file, no copier (reference)",
    "photos.relay": "photo-relay, read-back off (size-checked)",
    "photos.relay_readback": "photo-relay, read-back on (SHA-256 of the copy)",
    "photos.rclone": "rclone copy (the anchor)",
    "big.relay": "photo-relay, read-back off (size-checked)",
    "big.relay_readback": "photo-relay, read-back on (SHA-256 of the copy)",
    "big.rclone": "rclone copy (the anchor)",
    "big.direct_put": "WsgiDAV's own limit: one plain PUT, no copier (reference)",
}

GOALS = {"photos.relay": 3.0, "photos.relay_readback": 1.5, "big.relay": 1.0}  # issue 20


def rate(name: str, run: Run, data: Dataset) -> float:
    if name.startswith("big."):
        return data.big.stat().st_size / MiB / run.seconds
    return len(data.photos) / run.seconds


def render(figures: Figures, data: Dataset, memory: list[Memory], machine: str, rounds: int) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when}, {rounds} round(s), on: {machine}.",
        "",
        f"photo-relay: `webdav` target, relay_parallel = {PARALLEL}; rclone "
        f"{rclone_version()}: `rclone copy --transfers {PARALLEL}`, vendor `other`. "
        f"Photos: {len(data.photos)} JPEGs of "
        f"{data.photo_bytes // len(data.photos) // 1024} KiB; big file: "
        f"{data.big.stat().st_size / MiB:.0f} MiB. Requests are counted by WsgiDAV.",
        "",
        "| Figure | Median | Every run | CPU s/run (copier) | CPU s/run (WsgiDAV) "
        "| Requests per file | Ratio to rclone (median of rounds) | Goal | Met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in LABELS.items():
        runs = figures.runs.get(name, [])
        if not runs:
            continue
        kind, how = name.split(".")
        unit = "MiB/s" if kind == "big" else "photos/s"
        count = 1 if kind == "big" else len(data.photos)
        rates = [rate(name, r, data) for r in runs]
        per_file = median([sum(r.requests.values()) / count for r in runs])
        methods = runs[0].requests
        mix = ", ".join(f"{m} {n / count:.2f}" for m, n in sorted(methods.items()))
        ratio_text = goal_text = met = ""
        anchor = figures.runs.get(f"{kind}.rclone", [])
        if how != "rclone" and anchor:
            ratios = [
                rate(name, mine, data) / rate(f"{kind}.rclone", theirs, data)
                for mine, theirs in zip(runs, anchor, strict=False)
            ]
            ratio_text = f"{median(ratios):.2f} × ({samples(ratios, '{:.2f}')})"
            if name in GOALS:
                goal_text = f"≥ {GOALS[name]}"
                met = "yes" if median(ratios) >= GOALS[name] else "**no**"
        title = "1 GiB file" if kind == "big" else "4 MiB photos"
        lines.append(
            f"| {title}: {label} | {median(rates):.1f} {unit} | {samples(rates, '{:.1f}')} "
            f"| {median([r.copier_cpu for r in runs]):.1f} "
            f"| {median([r.server_cpu for r in runs]):.1f} "
            f"| {per_file:.1f} ({mix}) | {ratio_text} | {goal_text} | {met} |"
        )
    startups = [r.startup for n, rs in figures.runs.items() if "relay" in n for r in rs]
    if startups:
        lines += [
            "",
            f"Not in the timed interval: the service's start-up, spawn to /healthz, "
            f"median {median(startups):.1f} s ({samples(startups, '{:.1f}')}).",
        ]
    if memory:
        growth = [m.peak - m.idle for m in memory]
        size = f"{memory[0].size / MiB / 1024:g} GiB"
        lines += [
            "",
            "| Memory | Median | Every run | Goal | Met |",
            "|---|---|---|---|---|",
            f"| RSS idle (fresh service, nothing to do) | {median([m.idle for m in memory]):.0f}"
            f" MB | {samples([m.idle for m in memory])} | | |",
            f"| RSS of the relaying service when /healthz answered "
            f"| {median([m.at_start for m in memory]):.0f} MB "
            f"| {samples([m.at_start for m in memory])} | | |",
            f"| RSS peak during a {size} relay (read-back on), above idle "
            f"| {median(growth):.0f} MB | {samples(growth)} | ≤ 100 MB "
            f"| {'yes' if median(growth) <= 100 else '**no**'} |",
            f"| That {size} relay, MiB/s (for reference) "
            f"| {median([m.size / MiB / m.seconds for m in memory]):.0f} MiB/s "
            f"| {samples([m.size / MiB / m.seconds for m in memory])} | | |",
        ]
    return "\n".join(lines)


def rclone_version() -> str:
    out = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout
    return out.split()[1] if out else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--memory-mib", type=int, default=2048, help="0: skip the memory figure")
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    parser.add_argument("--only", default="", help="comma-separated figure names, for A/B checks")
    parser.add_argument(
        "--one-core", action="store_true", help="also measure each figure pinned to CPU 0"
    )
    parser.add_argument(
        "--server-on-disk",
        action="store_true",
        help="WsgiDAV writes to the service's disk (its writes then slow the service's fsyncs)",
    )
    args = parser.parse_args()
    if shutil.which("rclone") is None:
        raise SystemExit("rclone is not installed: apt-get install -y rclone")
    workdir = Path(tempfile.mkdtemp(prefix="photo-relay-bench-"))
    room = (max(args.big_mib, 4 * args.photos, args.memory_mib) + 1024) * MiB
    server = server_folder(workdir, room, on_disk=args.server_on_disk)
    try:
        print(f"making the files in {workdir}; WsgiDAV writes to {server} ...", flush=True)
        data = make_dataset(
            workdir / "files", big_bytes=args.big_mib * MiB, photos=args.photos, photo_bytes=4 * MiB
        )
        print("filling the spools ...", flush=True)
        photos = fill_spool(workdir, data, data.photos, "photos")
        big = fill_spool(workdir, data, [data.big], "big")
        sittings: list[tuple[str, frozenset[int] | None, Figures]] = [("relay", None, Figures())]
        if args.one_core:
            sittings.append(("relay-one-core", ONE_CORE, Figures()))
        steps: dict[str, Callable[[], Run]] = {
            "photos.relay": lambda: relay_run(workdir, server, photos, read_back=False),
            "photos.relay_readback": lambda: relay_run(workdir, server, photos, read_back=True),
            "photos.rclone": lambda: rclone_run(workdir, server, data, data.photos),
            "photos.direct_put": lambda: direct_put_run(workdir, server, data.photos),
            "big.relay": lambda: relay_run(workdir, server, big, read_back=False),
            "big.relay_readback": lambda: relay_run(workdir, server, big, read_back=True),
            "big.rclone": lambda: rclone_run(workdir, server, data, [data.big]),
            "big.direct_put": lambda: direct_put_run(workdir, server, [data.big]),
        }
        wanted = [n for n in steps if not args.only or n in args.only.split(",")]
        memory: list[Memory] = []
        for number in range(args.rounds):
            print(f"round {number + 1} of {args.rounds}", flush=True)
            shift = number % len(wanted)
            for index, name in enumerate(wanted[shift:] + wanted[:shift]):
                # With --one-core each figure runs on both sittings back to back, the order
                # alternating, so a pair shares the moment's load.
                order = sittings if (number + index) % 2 == 0 else sittings[::-1]
                for _, cores, figures in order:
                    with pinned(cores):
                        figures.add(name, steps[name]())
        if args.memory_mib:
            memory.append(measure_memory(workdir, server, args.memory_mib * MiB))
            print("memory MB:", memory[-1], flush=True)
        machine = describe(workdir) + f"; WsgiDAV's folder: {describe_server_folder(server)}"
        for section, cores, figures in sittings:
            text = render(figures, data, memory if cores is None else [], machine, args.rounds)
            if cores is not None:
                text = f"Pinned to CPU {min(cores)} (one core).\n\n{text}"
            print(text)
            if not args.no_write:
                write_section(section, text)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(server, ignore_errors=True)


if __name__ == "__main__":
    main()
