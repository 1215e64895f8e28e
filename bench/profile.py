"""Profile the service on one ingest scenario with py-spy: `.venv/bin/python -m bench.profile`.

Starts `photo-relay serve`, attaches `py-spy record` (all threads, native frames off)
while the scenario runs, and prints the functions holding the most samples, self and
total. py-spy is not a project dependency: `.venv/bin/pip install py-spy` first. Usage:
`python -m bench.profile put|multipart|photos-put|photos-multipart|check [--mib N]`.
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

from bench import ingest
from bench.dataset import MiB, make_dataset
from bench.rig import BIN, RelayService


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
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples (all threads, idle included)", "", "self:"]
    lines += [f"  {100 * c / samples:5.1f}%  {f}" for f, c in own.most_common(top)]
    lines += ["", "total:"]
    lines += [f"  {100 * c / samples:5.1f}%  {f}" for f, c in total.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["put", "multipart", "photos-put", "photos-multipart"])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--photos", type=int, default=150)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--idle", action="store_true", help="include idle samples")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="photo-relay-profile-"))
    try:
        data = make_dataset(
            workdir / "files", big_bytes=args.mib * MiB, photos=args.photos, photo_bytes=4 * MiB
        )
        service = RelayService(workdir)
        service.start()
        out = workdir / "profile.txt"
        spy = subprocess.Popen(
            [
                str(BIN / "py-spy"),
                "record",
                "--pid",
                str(service.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--threads",
                "--output",
                str(out),
                *(["--idle"] if args.idle else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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
        print(summarise(out, args.top))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
