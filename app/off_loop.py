"""Leaving the event loop: `off_loop(fn, ...)` is the one way blocking work leaves it.

Whatever writes, fsyncs, waits for the database's lock or reads a file runs in a worker
thread, so one request (or the relay) never holds up the others. Code on the loop awaits
an async face — `State.a…`, `Overview.a…`, `Spool.a…`, `Database.acall`, each built on
`off_loop` — or hands a whole step of blocking work to `off_loop` in one hop. The
service's database refuses calls on the loop's thread (`Database.guard_event_loop`), so
a slip fails at once in the tests instead of slowing every request in production.

Two exceptions, each for a measured reason (docs/PERFORMANCE.md, issue 20): a relayed
file's blocks are read on the loop when they are already in the page cache (`preadv`
with RWF_NOWAIT, which never waits) and off it only when they would wait; and upload
bodies read from the socket run on `app.socket_body`'s own threads, apart from these, so
slow senders never take the threads the disk and the database need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["off_loop"]

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn(*args, **kwargs)` in a worker thread and return (or raise) what it did."""
    return await asyncio.to_thread(fn, *args, **kwargs)
