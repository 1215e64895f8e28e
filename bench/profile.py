"""Profile the service on one scenario with py-spy: `.venv/bin/python -m bench.profile`.

Starts `photo-relay serve`, attaches `py-spy record` (all threads, native frames off)
while the scenario runs, and prints the functions holding the most samples, self and
total. py-spy is not a project dependency: `.venv/bin/pip install py-spy` first. Usage:
`python -m bench.profile put|multipart|photos-put|photos-multipart [--mib N]` (ingest) or
`relay-photos|relay-photos-readback|relay-big|relay-big-readback` (the relay into WsgiDAV
from a filled spool, as bench/relay.py times it; py-spy attaches once /healthz answers).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench import ingest, relay
from bench.dataset import MiB, make_dataset
from bench.rig import BIN, RelayService, WebDavService, cpu_seconds

RELAY_SCENARIOS = ["relay-photos", "relay-photos-readback", "relay-big", "relay-big-readback"]


# Leaves where py-spy still sees a waiting thread as active (blocked in C with the GIL
# released): worker pools waiting for work. Left out so the shares are of real work.
WAITING = ("_worker thread.py:81", "Condition.wait ", "Runner.run runners.py:118")


def summarise(collapsed: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")[1:]
        ]
        if not frames or frames[-1].startswith(WAITING):
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples (all threads, waiting workers left out)", "", "self:"]
    lines += [f"  {100 * c / samples:5.1f}%  {f}" for f, c in own.most_common(top)]
    lines += ["", "total:"]
    lines += [f"  {100 * c / samples:5.1f}%  {f}" for f, c in total.most_common(top)]
    return "\n".join(lines)


def record(pid: int, out: Path, idle: bool, gil: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(BIN / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--threads",
            "--output",
            str(out),
            *(["--idle"] if idle else []),
            *(["--gil"] if gil else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_relay(workdir: Path, args: argparse.Namespace) -> None:
    """Fill a spool with the relay held, then relay it into WsgiDAV under py-spy."""
    data = make_dataset(
        workdir / "files", big_bytes=args.mib * MiB, photos=args.photos, photo_bytes=4 * MiB
    )
    files = [data.big] if "big" in args.scenario else data.photos
    spool = relay.fill_spool(workdir, data, files, "profile")
    room = sum(path.stat().st_size for path in files) + 1024 * MiB
    server = relay.server_folder(workdir, room, on_disk=False)
    webdav = WebDavService(server)
    service = RelayService(workdir, relay.target_env(webdav, "readback" in args.scenario))
    service.token = spool.token
    out = workdir / "profile.txt"
    try:
        webdav.start()
        relay.clone_data_dir(spool.data_dir, service.data_dir)
        service.start()
        cpu, started = cpu_seconds(service.pid), time.perf_counter()
        spy = record(service.pid, out, args.idle, args.gil)
        relay.wait_verified(service, spool.hashes)
        seconds, cpu = time.perf_counter() - started, cpu_seconds(service.pid) - cpu
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
        print(f"{args.scenario}: {seconds:.2f} s, service CPU {cpu:.2f} s")
    finally:
        service.remove()
        webdav.remove()
        shutil.rmtree(server, ignore_errors=True)
    if args.raw:
        shutil.copy(out, args.raw)
    print(summarise(out, args.top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenario",
        choices=["put", "multipart", "photos-put", "photos-multipart", *RELAY_SCENARIOS],
    )
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--photos", type=int, default=150)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--idle", action="store_true", help="include idle samples")
    parser.add_argument("--raw", help="keep py-spy's collapsed stacks in this file")
    parser.add_argument(
        "--gil", action="store_true", help="only samples holding the GIL (Python's CPU)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="photo-relay-profile-"))
    if args.scenario in RELAY_SCENARIOS:
        try:
            profile_relay(workdir, args)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    try:
        data = make_dataset(
            workdir / "files", big_bytes=args.mib * MiB, photos=args.photos, photo_bytes=4 * MiB
        )
        service = RelayService(workdir)
        service.start()
        out = workdir / "profile.txt"
        spy = record(service.pid, out, args.idle, args.gil)
        time.sleep(1.0)
        files = [data.big] if args.scenario in ("put", "multipart") else data.photos
        clients = 1 if args.scenario in ("put", "multipart") else ingest.CLIENTS
        send = (
            ingest.put_ours(data, service)
            if args.scenario.endswith("put")
            else ingest.multipart_ours(service)
        )
        run = ingest.send_all(service.port, files, send, clients, service.pid)
        print(f"{args.scenario}: {run.seconds:.2f} s, server CPU {run.server_cpu:.2f} s")
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
        service.remove()
        if args.raw:
            shutil.copy(out, args.raw)
        print(summarise(out, args.top))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
