"""The event hub: fans events (journal entries, copy progress) out to live subscribers.

Events are plain JSON-ready dicts. `publish` may be called from any thread: from a worker
thread it hands the event to the event loop with `call_soon_threadsafe`, so subscribers
are only ever touched on the loop. Each subscriber has a bounded queue; one that falls
behind (a slow phone on bad Wi-Fi) loses the events it could not take and finds a
`lagged` marker instead, so publishing never waits and never blocks the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Event", "EventHub", "Subscription"]

log = logging.getLogger(__name__)

Event = dict[str, Any]

LAGGED: Event = {"type": "lagged"}


class Subscription:
    """One listener's queue of events; read it with `await next()`."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)

    def offer(self, event: Event) -> None:
        """Queue an event without waiting; when full, drop the backlog and mark the gap."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(LAGGED)

    async def next(self) -> Event:
        return await self._queue.get()

    def pending(self) -> int:
        return self._queue.qsize()


class EventHub:
    """Subscribers and listeners of the running service's events."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on `loop` from now on (called at start-up, on the loop's thread)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def unbind(self) -> None:
        self._loop = None

    def subscribe(self) -> Subscription:
        subscription = Subscription(self.queue_size)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call `listener(event)` on the loop for every event (metrics, relay wake-up)."""
        self._listeners.append(listener)

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber; safe from any thread, never blocks."""
        loop = self._loop
        if loop is None:
            return  # not serving (e.g. the CLI): nobody can be listening
        if threading.get_ident() == self._loop_thread:
            self._deliver(event)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # one broken listener must not silence the others
                log.exception("events.listener_failed type=%s", event.get("type"))
        for subscription in list(self._subscriptions):
            subscription.offer(event)
