"""What a multipart form costs beyond a PUT of the same file: `.venv/bin/python -m bench.form_cost`.

Two measurements, each side by side in one run; it prints, nothing is written to the docs.

- **The boundary scan, in this process.** A form's file part ends where the boundary
  first appears, so every byte of a form is searched for it; a PUT's body is not. The
  same random bytes, framed as a one-file form and handed over in the 1 MiB pieces the
  socket body reads, are SHA-256'd (what both ways do) and parsed by python-multipart (what
  only a form needs), alternating, with `time.thread_time`.
- **PUT and multipart interleaved in one service.** One `photo-relay serve`, batches of
  new photos sent by PUT and by multipart in the order PUT, form, form, PUT, ..., 4
  clients each, the service's CPU per photo from /proc. One process and alternating
  batches, because the same code's CPU per photo moves by up to 2 × between runs on this
  machine: separate runs cannot tell 5 % apart.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from python_multipart import MultipartParser

from bench import ingest
from bench.dataset import MiB, make_dataset
from bench.report import median, samples
from bench.rig import RelayService, warm_page_cache

PIECE = MiB  # what the socket body hands its consumer (app/socket_body.py BUFFER_BYTES)
BOUNDARY = b"----photo-relay-bench-7d41c9"


def form_pieces(data: bytes) -> list[bytearray]:
    """`data` as the single file part of a form, cut into the pieces a reader thread gets."""
    head = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="IMG_0001.JPG"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    body = head + data + b"\r\n--" + BOUNDARY + b"--\r\n"
    return [bytearray(body[i : i + PIECE]) for i in range(0, len(body), PIECE)]


def hash_pieces(pieces: list[bytearray]) -> None:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)


def parse_pieces(pieces: list[bytearray]) -> None:
    """python-multipart over the pieces, with a part-data callback that only counts."""
    seen = 0

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal seen
        seen += end - start

    parser = MultipartParser(BOUNDARY, callbacks={"on_part_data": on_part_data})
    for piece in pieces:
        parser.write(piece)
    parser.finalize()
    if seen == 0:
        raise RuntimeError("the form parser found no file data")


def thread_ms(work: Callable[[], None], repeat: int) -> float:
    started = time.thread_time()
    for _ in range(repeat):
        work()
    return (time.thread_time() - started) * 1000 / repeat


def boundary_scan(size: int, rounds: int, repeat: int = 20) -> None:
    pieces = form_pieces(os.urandom(size))
    hashed, parsed = [], []
    for _ in range(rounds):
        hashed.append(thread_ms(lambda: hash_pieces(pieces), repeat))
        parsed.append(thread_ms(lambda: parse_pieces(pieces), repeat))
    ratios = [p / h for p, h in zip(parsed, hashed, strict=True)]
    print(f"\nThe boundary scan of a {size // MiB} MiB form, ms of CPU per form ({rounds} rounds)")
    print(f"  SHA-256 (PUT and form alike): {median(hashed):.2f} ({samples(hashed, '{:.2f}')})")
    print(f"  python-multipart parse:       {median(parsed):.2f} ({samples(parsed, '{:.2f}')})")
    print(f"  parse / SHA-256:              {median(ratios):.2f} × ({samples(ratios, '{:.2f}')})")


def interleaved(workdir: Path, photo_bytes: int, batches: int, per_batch: int) -> None:
    folder = workdir / f"photos-{photo_bytes}"
    count = 10 + batches * per_batch
    data = make_dataset(folder, big_bytes=MiB, photos=count, photo_bytes=photo_bytes)
    warm_page_cache(workdir)
    service = RelayService(workdir)
    service.start()
    try:
        put, form = ingest.put_ours(data, service), ingest.multipart_ours(service)
        ingest.send_all(service.port, data.photos[:10], put, ingest.CLIENTS, service.pid)
        cpu: dict[str, list[float]] = {"put": [], "multipart": []}
        for batch in range(batches):
            how = ("put", "multipart")[(batch + batch // 2) % 2]  # PUT, form, form, PUT, ...
            photos = data.photos[10 + batch * per_batch : 10 + (batch + 1) * per_batch]
            send = put if how == "put" else form
            run = ingest.send_all(service.port, photos, send, ingest.CLIENTS, service.pid)
            cpu[how].append(run.server_cpu * 1000 / per_batch)
    finally:
        service.remove()
        shutil.rmtree(folder, ignore_errors=True)
    ratios = [m / p for p, m in zip(cpu["put"], cpu["multipart"], strict=True)]
    size = f"{photo_bytes // MiB} MiB" if photo_bytes >= MiB else f"{photo_bytes // 1024} KiB"
    print(
        f"\n{batches} batches of {per_batch} new {size} photos, {ingest.CLIENTS} clients, "
        "one service: its CPU per photo in ms"
    )
    for how, values in cpu.items():
        print(f"  {how:9s}: {median(values):.2f} ({samples(values, '{:.2f}')})")
    shown = samples(ratios, "{:.2f}")
    print(f"  multipart / PUT, batch by batch: {median(ratios):.2f} × ({shown})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the boundary scan")
    parser.add_argument("--batches", type=int, default=12, help="batches per photo size (even)")
    args = parser.parse_args()
    if args.batches < 2 or args.batches % 2:
        parser.error("--batches must be even: each PUT batch is paired with a form batch")
    boundary_scan(4 * MiB, args.rounds)
    workdir = Path(tempfile.mkdtemp(prefix="photo-relay-form-cost-"))
    try:
        # Batches long enough for /proc's 10 ms CPU ticks: 0.2-0.5 s of service CPU each.
        interleaved(workdir, 4 * MiB, args.batches, per_batch=30)
        interleaved(workdir, 64 * 1024, args.batches, per_batch=150)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
