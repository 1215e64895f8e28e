"""Relay one large file to the NextCloud test server and report time and peak memory.

Run by hand (not in CI): `.venv/bin/python -m bench.relay_large_file --size-mib 2048`.
It starts the WsgiDAV + NextCloud-layer test server and `photo-relay serve` as a real
process on 127.0.0.1, uploads a file of the given size, waits until its receipt is
`verified`, and prints the upload and relay times and the service's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.conftest import add_device
from tests.servers import ServiceProcess, find_free_port, wait_for
from tests.test_nextcloud_restart import (
    MiB,
    _peak_rss_bytes,
    service_env,
    sha256_of,
    state_of,
    upload,
    write_file,
)
from tests.webdav_server import DavServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--chunk-mib", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="photo-relay-bench-") as scratch:
        root = Path(scratch)
        server = DavServer(root / "nextcloud", nextcloud=True).start()
        data_dir = root / "data"
        token = add_device(data_dir, "bench")
        video = root / "VID_BENCH.MOV"
        sha = write_file(video, args.size_mib * MiB)
        env = service_env(server, PHOTO_RELAY_TARGET_CHUNK_BYTES=str(args.chunk_mib * MiB))
        service = ServiceProcess(data_dir, find_free_port(), env)
        try:
            with service.running():
                assert service.process is not None
                started = time.monotonic()
                upload(service.base_url, token, video, sha, "VID_BENCH.MOV")
                uploaded = time.monotonic()
                wait_for(
                    lambda: state_of(service.base_url, token, sha) == "verified",
                    timeout=3600,
                    what="verification",
                )
                relayed = time.monotonic()
                peak = _peak_rss_bytes(service.process.pid)
            stored = server.file("Photos/iPhone/2024/05/VID_BENCH.MOV")
            intact = sha256_of(stored) == sha
        finally:
            server.stop()
    size = args.size_mib * MiB
    print(f"file:            {args.size_mib} MiB, chunks of {args.chunk_mib} MiB")
    for label, seconds in (
        ("upload to spool:", uploaded - started),
        ("relay + verify: ", relayed - uploaded),
    ):
        print(f"{label} {seconds:.1f} s ({size / MiB / seconds:.0f} MiB/s)")
    print(f"service peak RSS {peak / MiB:.0f} MiB")
    print(f"byte-identical:  {intact}")


if __name__ == "__main__":
    main()
