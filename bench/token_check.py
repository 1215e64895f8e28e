"""The device-token check alone, old and new side by side: `python -m bench.token_check`.

On an event loop whose thread the database refuses (as the service's), checks one
device's token N times by reading its row in a worker thread (`State`, what every request
did before issue 20) and through `TokenCache` (the devices generation read on the loop),
alternating, on a quiet database and while another thread commits (with its fsync) in a
loop, as uploads do. Prints per check: wall time (median, 99th percentile, longest) and the CPU
time of the event loop's thread.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.store.db import Database
from app.store.state import Device, State
from app.store.token_cache import TokenCache

TOKEN_HASH = "f" * 64
Check = Callable[[str], Awaitable[Device | None]]


def busy_writer(db: Database, stop: threading.Event) -> None:
    """Commit one journal row after another until told to stop: the lock is mostly held."""
    while not stop.is_set():
        db.call(lambda conn: conn.execute(
            "INSERT INTO journal (at, event, message) VALUES ('now', 'bench.write', 'x')"
        ))  # fmt: skip


async def timed(check: Check, count: int) -> tuple[list[float], float]:
    """Each check's wall seconds, and the loop thread's CPU seconds for all of them."""
    walls = []
    cpu = time.thread_time()
    for _ in range(count):
        started = time.perf_counter()
        assert await check(TOKEN_HASH) is not None
        walls.append(time.perf_counter() - started)
    return walls, time.thread_time() - cpu


def line(name: str, walls: list[float], cpu: float) -> str:
    p99 = statistics.quantiles(walls, n=100)[98]
    return (
        f"  {name:<26} wall median {statistics.median(walls) * 1e6:8.1f} µs, "
        f"p99 {p99 * 1e6:9.1f} µs, max {max(walls) * 1e6:9.1f} µs; "
        f"loop CPU {cpu / len(walls) * 1e6:7.1f} µs per check"
    )


async def measure(db: Database, count: int, pairs: int) -> None:
    db.guard_event_loop()
    state = State(db)
    checks: dict[str, Check] = {
        "row read (before)": state.adevice_for_token_hash,
        "cached (issue 20)": TokenCache(state).adevice_for_token_hash,
    }
    for writing in (False, True):
        print("while another thread commits:" if writing else "quiet database:")
        stop = threading.Event()
        writer = threading.Thread(target=busy_writer, args=(db, stop))
        if writing:
            writer.start()
        for pair in range(pairs):
            order = list(checks.items()) if pair % 2 == 0 else list(checks.items())[::-1]
            for name, check in order:
                await check(TOKEN_HASH)  # warm: the cache's first check reads the row
                print(line(name, *await timed(check, count)), flush=True)
        stop.set()
        if writing:
            writer.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(Path(folder) / "photo-relay.db")
        State(db).add_device("phone", TOKEN_HASH)
        # The loop gets a thread of its own (the guarded one), so this one may close.
        loop_thread = threading.Thread(
            target=asyncio.run, args=(measure(db, args.checks, args.pairs),)
        )
        loop_thread.start()
        loop_thread.join()
        db.close()


if __name__ == "__main__":
    main()
