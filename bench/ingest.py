"""Ingest throughput, side by side in one run: `.venv/bin/python -m bench.ingest`.

Sends a 1 GiB file and 300 photos of 4 MiB (4 concurrent clients) over loopback to
photo-relay by PUT /v1/blobs/{sha} and by multipart POST /v1/uploads, and compares them in
each round with their anchors: a plain Python loop that reads, SHA-256s, writes and fsyncs
the same bytes (the durable limit, no network), the network floor (the same PUTs to
bench/floor_server.py, a stdlib receiver that does only the durable minimum over HTTP),
and a plain WebDAV PUT of the same files to WsgiDAV. Every measurement
starts a fresh server; the order rotates between rounds; the figures (medians, every
run's value, and the per-round ratios) go into docs/PERFORMANCE.md. With `--one-core`
every figure is also measured pinned to CPU 0 (as `taskset -c 0` would: server, client and
loop share one core, a Pi-class box), right before or after its two-core run (the order
alternates), into its own section.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.client import Connection, Response, multipart_body
from bench.dataset import Dataset, MiB, make_dataset
from bench.machine import ONE_CORE, describe, pinned
from bench.report import median, samples, write_section
from bench.rig import (
    FRAMEWORK_FLOOR,
    NETWORK_FLOOR,
    FloorService,
    RelayService,
    WebDavService,
    cpu_seconds,
    warm_page_cache,
)

CLIENTS = 4


@dataclass
class Run:
    """One timed measurement: wall seconds, and CPU seconds of server and client."""

    seconds: float
    server_cpu: float = 0.0
    client_cpu: float = 0.0


@dataclass
class Figures:
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def add(self, name: str, run: Run) -> None:
        self.runs.setdefault(name, []).append(run)
        print(f"  {name:<28} {run.seconds:7.2f} s  (server CPU {run.server_cpu:.1f} s)")


# -- the anchors ------------------------------------------------------------------------


def copy_durably(source: Path, out_dir: Path) -> None:
    """Read, SHA-256, write and fsync one file: what a durable receiver must at least do."""
    digest = hashlib.sha256()
    with source.open("rb") as src, (out_dir / source.name).open("wb") as dst:
        while chunk := src.read(MiB):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    digest.hexdigest()


def local_loop(files: list[Path], out_dir: Path, writers: int = 1) -> Run:
    """The limit: `copy_durably` each file in plain Python, by `writers` threads at once.

    One writer is the limit for one client; as many writers as clients is the limit for
    a receiver that answers each file only once it is on disk (hashing, writing and fsync
    release the GIL, so the threads overlap on the disk as concurrent uploads do).
    """
    out_dir.mkdir()
    cpu, started = time.process_time(), time.perf_counter()
    if writers == 1:
        for source in files:
            copy_durably(source, out_dir)
    else:
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(lambda source: copy_durably(source, out_dir), files))
    seconds = time.perf_counter() - started
    run = Run(seconds, server_cpu=time.process_time() - cpu)
    shutil.rmtree(out_dir)
    return run


# -- sending ----------------------------------------------------------------------------

Send = Callable[[Connection, Path], Response]


def send_all(
    port: int,
    files: list[Path],
    send: Send,
    clients: int,
    server_pid: int,
    expect: dict[Path, str] | None = None,
) -> Run:
    """Send every file with `clients` keep-alive connections pulling from one queue.

    With `expect`, each reply must name the file's SHA-256 (the receipt of our service).
    """
    todo: queue.Queue[Path] = queue.Queue()
    for path in files:
        todo.put(path)
    problems: list[str] = []

    def worker() -> None:
        with Connection(port) as conn:
            while True:
                try:
                    path = todo.get_nowait()
                except queue.Empty:
                    return
                response = send(conn, path)
                if response.status not in (200, 201, 204):
                    problems.append(f"{path.name}: {response.status} {response.body[:300]!r}")
                    return
                if expect is not None and expect[path].encode() not in response.body:
                    problems.append(f"{path.name}: the receipt names another hash")
                    return

    threads = [threading.Thread(target=worker) for _ in range(min(clients, len(files)))]
    server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if problems:
        raise RuntimeError("uploads failed: " + "; ".join(problems))
    return Run(seconds, cpu_seconds(server_pid) - server_cpu, time.process_time() - client_cpu)


def put_ours(data: Dataset, service: RelayService) -> Send:
    def send(conn: Connection, path: Path) -> Response:
        headers = {
            **service.auth,
            "Content-Disposition": f'attachment; filename="{path.name}"',
            "Content-Type": "application/octet-stream",
        }
        return conn.request("PUT", f"/v1/blobs/{data.sha256[path]}", headers, [path])

    return send


def multipart_ours(service: RelayService) -> Send:
    def send(conn: Connection, path: Path) -> Response:
        body, content_type = multipart_body(path)
        headers = {**service.auth, "Content-Type": content_type}
        return conn.request("POST", "/v1/uploads", headers, body)

    return send


def put_webdav(conn: Connection, path: Path) -> Response:
    """A plain PUT by file name: to WsgiDAV, and to the network floor."""
    headers = {"Content-Type": "application/octet-stream"}
    return conn.request("PUT", f"/{path.name}", headers, [path])


def httpx_put_ours(data: Dataset, service: RelayService, path: Path) -> Run:
    """The same PUT sent by httpx streaming the file object: a check on our own client."""
    url = f"http://127.0.0.1:{service.port}/v1/blobs/{data.sha256[path]}"
    server_cpu, client_cpu = cpu_seconds(service.pid), time.process_time()
    started = time.perf_counter()
    with path.open("rb") as handle:
        response = httpx.put(url, content=handle, headers=service.auth, timeout=600)
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"httpx PUT failed: {response.status_code} {response.text[:300]}")
    return Run(seconds, cpu_seconds(service.pid) - server_cpu, time.process_time() - client_cpu)


# -- one round --------------------------------------------------------------------------


def measure_ours(
    workdir: Path, figures: Figures, name: str, run: Callable[[RelayService], Run]
) -> None:
    service = RelayService(workdir)
    try:
        service.start()
        warm_page_cache(workdir)
        figures.add(name, run(service))
    finally:
        service.remove()
        os.sync()  # what one measurement left dirty in the page cache is not the next one's


def measure_webdav(
    workdir: Path, figures: Figures, name: str, files: list[Path], clients: int
) -> None:
    webdav = WebDavService(workdir)
    try:
        webdav.start()
        warm_page_cache(workdir)
        run = send_all(webdav.port, files, put_webdav, clients, webdav.pid)
        figures.add(name, run)
        # WsgiDAV does not fsync: its data is on disk only after this (which also keeps it
        # from spilling into the next figure). Shown apart, as a like-for-like reference.
        started = time.perf_counter()
        os.sync()
        figures.add(name + "_on_disk", Run(run.seconds + time.perf_counter() - started))
    finally:
        webdav.remove()


def measure_floor(
    workdir: Path,
    figures: Figures,
    name: str,
    files: list[Path],
    clients: int,
    data: Dataset,
    module: str,
) -> None:
    """A floor (`module`): the same PUTs, each reply naming the hash."""
    floor = FloorService(workdir, module)
    try:
        floor.start()
        warm_page_cache(workdir)
        figures.add(name, send_all(floor.port, files, put_webdav, clients, floor.pid, data.sha256))
    finally:
        floor.remove()
        os.sync()


def round_steps(
    workdir: Path, data: Dataset, figures: Figures, only: str = ""
) -> list[Callable[[], None]]:
    """Every measurement of one round, each as a step; `only` keeps some figures by name."""
    big, photos = [data.big], data.photos

    def loop(name: str, files: list[Path], writers: int = 1) -> Callable[[], None]:
        def step() -> None:
            warm_page_cache(workdir)
            figures.add(name, local_loop(files, workdir / "loop", writers))
            os.sync()

        return step

    def webdav(name: str, files: list[Path], clients: int) -> Callable[[], None]:
        return lambda: measure_webdav(workdir, figures, name, files, clients)

    def floor(
        name: str, files: list[Path], clients: int, module: str = NETWORK_FLOOR
    ) -> Callable[[], None]:
        return lambda: measure_floor(workdir, figures, name, files, clients, data, module)

    def ours(name: str, files: list[Path], how: str, clients: int) -> Callable[[], None]:
        def run(service: RelayService) -> Run:
            send = put_ours(data, service) if how == "put" else multipart_ours(service)
            return send_all(service.port, files, send, clients, service.pid, data.sha256)

        return lambda: measure_ours(workdir, figures, name, run)

    steps: dict[str, Callable[[], None]] = {
        "big.loop": loop("big.loop", big),
        "big.floor": floor("big.floor", big, 1),
        "big.framework": floor("big.framework", big, 1, FRAMEWORK_FLOOR),
        "big.webdav": webdav("big.webdav", big, 1),
        "big.put": ours("big.put", big, "put", 1),
        "big.multipart": ours("big.multipart", big, "multipart", 1),
        "big.put_httpx": lambda: measure_ours(
            workdir, figures, "big.put_httpx", lambda s: httpx_put_ours(data, s, data.big)
        ),
        "photos.loop": loop("photos.loop", photos),
        "photos.loop_parallel": loop("photos.loop_parallel", photos, CLIENTS),
        "photos.floor": floor("photos.floor", photos, CLIENTS),
        "photos.framework": floor("photos.framework", photos, CLIENTS, FRAMEWORK_FLOOR),
        "photos.webdav": webdav("photos.webdav", photos, CLIENTS),
        "photos.put": ours("photos.put", photos, "put", CLIENTS),
        "photos.multipart": ours("photos.multipart", photos, "multipart", CLIENTS),
    }
    wanted = set(only.split(",")) if only else set(steps)
    if unknown := wanted - set(steps):
        raise ValueError(
            f"--only names no such figure: {', '.join(sorted(unknown))}. "
            f"The figures are: {', '.join(steps)}."
        )
    return [step for name, step in steps.items() if name in wanted]


@dataclass
class Sitting:
    """One set of figures: all cores (`cores` None) or pinned to `cores`; its doc section."""

    section: str
    cores: frozenset[int] | None
    figures: Figures = field(default_factory=lambda: Figures())


def run_round(
    workdir: Path, data: Dataset, sittings: list[Sitting], number: int, only: str
) -> None:
    """One round: each figure for every sitting back to back, so a pair shares the moment."""
    per_sitting = [round_steps(workdir, data, s.figures, only) for s in sittings]
    pairs = list(zip(*per_sitting, strict=True))
    shift = number % len(pairs)
    for index, steps in enumerate(pairs[shift:] + pairs[:shift]):
        order = list(zip(sittings, steps, strict=True))
        if (number + index) % 2:
            order.reverse()
        for sitting, step in order:
            if sitting.cores is not None:
                print(f"  (pinned to CPU {min(sitting.cores)})", flush=True)
            with pinned(sitting.cores):
                step()


# -- the report -------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    figure: str
    anchor: str
    at_least: float


GOALS = [
    Goal("big.put", "big.loop", 1.0),
    Goal("big.multipart", "big.put", 0.8),
    # Issue 20: against the durable limit (4 writers that each fsync before the next file).
    Goal("photos.put", "photos.loop_parallel", 0.8),
    Goal("photos.multipart", "photos.loop_parallel", 0.8),
]

LABELS = {
    "big.loop": "Local loop: read + SHA-256 + write + fsync (the limit)",
    "big.floor": "Network floor: stdlib receiver, PUT + SHA-256 + write + fsync (bench/"
    "floor_server.py)",
    "big.framework": "Framework floor: the same on FastAPI + uvicorn, `request.stream()` "
    "(bench/framework_floor.py)",
    "big.webdav": "WsgiDAV, plain PUT (no fsync)",
    "big.webdav_on_disk": "WsgiDAV, PUT until on disk (PUT, then sync; reference)",
    "big.put": "photo-relay PUT /v1/blobs/{sha}",
    "big.multipart": "photo-relay multipart POST /v1/uploads",
    "big.put_httpx": "photo-relay PUT, sent by httpx (client check)",
    "photos.loop": "Local loop, serial (the limit for one writer)",
    "photos.loop_parallel": "Local loop, 4 writers at once (the limit when each file is on "
    "disk before its reply)",
    "photos.floor": "Network floor, 4 clients (the durable minimum over HTTP)",
    "photos.framework": "Framework floor, 4 clients (FastAPI + uvicorn doing the same)",
    "photos.webdav": "WsgiDAV, plain PUT, 4 clients (no fsync)",
    "photos.webdav_on_disk": "WsgiDAV, 4 clients, until on disk (then sync; reference)",
    "photos.put": "photo-relay PUT, 4 clients",
    "photos.multipart": "photo-relay multipart, 4 clients",
}


# Our figures (the part after the dot), each also compared with its kind's network floor.
OURS = ("put", "multipart", "put_httpx")

ANCHOR_NAMES = {
    "big.loop": "local loop",
    "big.put": "our PUT",
    "photos.webdav": "WsgiDAV",
    "photos.loop_parallel": "4 writers",
}


def rate(name: str, run: Run, data: Dataset) -> float:
    """MiB/s for the big file, photos/s for the photos."""
    if name.startswith("big."):
        return data.big.stat().st_size / MiB / run.seconds
    return len(data.photos) / run.seconds


def round_ratios(figures: Figures, name: str, anchor: str, data: Dataset) -> list[float]:
    """`name`'s rate over `anchor`'s, round by round; [] unless both were measured."""
    return [
        rate(name, mine, data) / rate(anchor, theirs, data)
        for mine, theirs in zip(
            figures.runs.get(name, []), figures.runs.get(anchor, []), strict=False
        )
    ]


def ratio_text(ratios: list[float]) -> str:
    """The median of the rounds' ratios, then every round's."""
    return f"{median(ratios):.2f} × ({samples(ratios, '{:.2f}')})"


def floor_of(name: str) -> str | None:
    """The network floor a figure of ours is compared with (None for the anchors)."""
    kind, _, how = name.partition(".")
    return f"{kind}.floor" if how in OURS else None


def render(figures: Figures, data: Dataset, machine: str, rounds: int) -> str:
    unit = {"big": "MiB/s", "photos": "photos/s"}
    rows = [
        "| Figure | Median | Every run | CPU s/run (server; loop: its own) "
        "| Ratio to anchor (median of rounds) "
        "| Goal | Met | Ours / network floor (median of rounds) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    goals = {g.figure: g for g in GOALS}
    for name, label in LABELS.items():
        runs = figures.runs.get(name, [])
        if not runs:
            continue
        rates = [rate(name, r, data) for r in runs]
        kind = name.split(".")[0]
        cpu_text = (
            "—" if name.endswith("_on_disk") else f"{median([r.server_cpu for r in runs]):.1f}"
        )
        anchor_text = goal_text = met = ""
        goal = goals.get(name)
        if goal is not None and (ratios := round_ratios(figures, name, goal.anchor, data)):
            anchor_text = ratio_text(ratios).replace("×", f"× {ANCHOR_NAMES[goal.anchor]}", 1)
            goal_text = f"≥ {goal.at_least:.1f}"
            met = "yes" if median(ratios) >= goal.at_least else "**no**"
        floor = floor_of(name)
        to_floor = round_ratios(figures, name, floor, data) if floor else []
        floor_text = ratio_text(to_floor) if to_floor else ""
        rows.append(
            f"| {label} | {median(rates):.0f} {unit[kind]} | {samples(rates)} | {cpu_text} "
            f"| {anchor_text} | {goal_text} | {met} | {floor_text} |"
        )
    client = figures.runs.get("photos.put", [])
    client_note = (
        f"The bench's own client (raw sockets, bodies by sendfile) used a median "
        f"{median([r.client_cpu for r in client]):.2f} CPU s for {len(data.photos)} photos; "
        if client
        else ""
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    durable = [
        f"{how} {ratio_text(ratios)}"
        for how in ("put", "multipart")
        if (ratios := round_ratios(figures, f"photos.{how}", "photos.loop_parallel", data))
    ]
    durable_note = (
        f"Against the 4-writer local loop (the durable limit for 4 clients), photo-relay "
        f"reaches: {'; '.join(durable)} (median of rounds; every round)."
        if durable
        else ""
    )
    return "\n".join(
        [
            f"Measured {when}, {rounds} rounds, on: {machine}.",
            "",
            f"1 GiB file: {data.big.stat().st_size / MiB:.0f} MiB, one client. Photos: "
            f"{len(data.photos)} JPEGs of {data.photo_bytes // len(data.photos) // 1024} KiB, "
            f"{CLIENTS} concurrent keep-alive clients.",
            "",
            *rows,
            "",
            client_note + "the httpx row shows what a common Python client reaches on the "
            "same PUT.",
            *(["", durable_note] if durable_note else []),
            *(["", note] if (note := floor_note(figures, data)) else []),
        ]
    )


def floor_note(figures: Figures, data: Dataset) -> str:
    """What the network floor is, and how it and photo-relay compare with it ("" if unmeasured)."""
    if not any(figures.runs.get(f"{kind}.floor") for kind in ("big", "photos")):
        return ""
    found = [
        f"{what} {ratio_text(ratios)}"
        for what, name, anchor in [
            ("the 1 GiB file, floor / local loop:", "big.floor", "big.loop"),
            ("the photos, floor / 4-writer loop:", "photos.floor", "photos.loop_parallel"),
            ("photo-relay's 1 GiB PUT / floor:", "big.put", "big.floor"),
            ("photo-relay's photos by PUT / floor:", "photos.put", "photos.floor"),
            ("the framework floor's photos / floor:", "photos.framework", "photos.floor"),
            ("photo-relay's photos by PUT / framework floor:", "photos.put", "photos.framework"),
            ("the framework floor's 1 GiB / floor:", "big.framework", "big.floor"),
            ("by multipart / floor:", "photos.multipart", "photos.floor"),
        ]
        if (ratios := round_ratios(figures, name, anchor, data))
    ]
    return (
        "The network floor is what a receiver doing only the durable minimum over HTTP "
        "reaches on this machine: bench/floor_server.py, plain Python with one thread per "
        "connection, the body by `recv_into` into a reused 1 MiB buffer, SHA-256, write, "
        "fsync, rename, fsync of the folder, then a 201 (no framework, no database, no "
        "token, no EXIF). What it loses to the local loop is the network's cost; what "
        "photo-relay loses to it is the service's own. The framework floor "
        "(bench/framework_floor.py) does the same as a FastAPI route served by uvicorn as "
        "`serve` does, the body by `request.stream()`, each MiB hashed and written in the "
        "thread pool: what it loses to the network floor is the fixed shape's price."
        + (f" Measured: {'; '.join(found)} (median of rounds; every round)." if found else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    parser.add_argument(
        "--only", default="", help="comma-separated figure names (e.g. big.put), for A/B checks"
    )
    parser.add_argument(
        "--one-core", action="store_true", help="also measure each figure pinned to CPU 0"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="photo-relay-bench-"))
    try:
        print(f"making the files in {workdir} ...", flush=True)
        data = make_dataset(
            workdir / "files",
            big_bytes=args.big_mib * MiB,
            photos=args.photos,
            photo_bytes=4 * MiB,
        )
        sittings = [Sitting("ingest", None)]
        if args.one_core:
            sittings.append(Sitting("ingest-one-core", ONE_CORE))
        for number in range(args.rounds):
            print(f"round {number + 1} of {args.rounds}", flush=True)
            run_round(workdir, data, sittings, number, args.only)
        for sitting in sittings:
            text = render(sitting.figures, data, describe(workdir), args.rounds)
            if sitting.cores is not None:
                text = f"Pinned to CPU {min(sitting.cores)} (one core).\n\n{text}"
            print(text)
            if not args.no_write:
                write_section(sitting.section, text)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
