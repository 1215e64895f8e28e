"""Relay throughput into WsgiDAV against `rclone copy` — NOT BUILT YET.

This waits for the WebDAV target (another issue). When it exists, fill in `measure_relay`
and `measure_rclone` and let `main` write the `relay` section of docs/PERFORMANCE.md the
way bench/ingest.py writes `ingest`. The pieces are ready in bench/: `make_dataset` (the
same 1 GiB file and 300 photos), `RelayService` (pass `env=` to point its target at the
`WebDavService`; by default the bench holds the relay), `RssSampler` (peak RSS during a
2 GiB relay), `write_section`.

What to measure, in one run, each on a fresh WsgiDAV folder:
- photo-relay relaying the photos / the 1 GiB file from its spool into WsgiDAV, with and
  without read-back verification: time from the relay starting until every item is
  `verified` (poll GET /v1/status), photos/s and MiB/s;
- `rclone copy` of the same files into the same server (Debian's rclone, `--transfers`
  equal to PHOTO_RELAY_RELAY_PARALLEL);
- goals: photos ≥ 3 × rclone without read-back, ≥ 1.5 × with; 1 GiB ≥ 0.9 × rclone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.dataset import Dataset
from bench.ingest import Run

__all__ = ["measure_rclone", "measure_relay"]


def measure_relay(workdir: Path, data: Dataset, files: list[Path], *, read_back: bool) -> Run:
    """Ingest `files` with the relay held, then release it into WsgiDAV and time it."""
    raise NotImplementedError("needs the WebDAV target")


def measure_rclone(workdir: Path, files: list[Path], transfers: int) -> Run:
    """`rclone copy` of `files` into a fresh WsgiDAV folder (the anchor)."""
    raise NotImplementedError("needs the WebDAV target to be worth comparing")


def main() -> None:
    sys.exit("bench/relay.py is not built yet: it waits for the WebDAV target.")


if __name__ == "__main__":
    main()
