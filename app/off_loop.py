"""Leaving the event loop: `off_loop(fn, ...)` is the one way blocking work leaves it.

Whatever writes, fsyncs, waits for the database's lock or reads a file runs in a worker
thread, so one request (or the relay) never holds up the others. Code on the loop awaits
an async face — `State.a…`, `Overview.a…`, `Spool.a…`, `Database.acall`, each built on
`off_loop` — or hands a whole step of blocking work to `off_loop` in one hop. The
service's database refuses calls on the loop's thread (`Database.guard_event_loop`), so
a slip fails at once in the tests instead of slowing every request in production.
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
