"""The parts that let a person watch the service: live feed, progress, metrics.

`Monitoring.open` builds them (before the relay, which reports progress to the board);
`start` binds them to the running event loop and the database's commit hook, and
`stop` ends the feed. `main.py` holds the one instance for the app's lifespan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from app.config import PageSettings
from app.observe.events import Event, EventHub
from app.observe.journal_feed import JournalFeed
from app.observe.metrics import Metrics
from app.progress import ProgressBoard
from app.store.db import Database
from app.store.overview import Overview
from app.supervisor import SupervisedTask

__all__ = ["Monitoring"]

# Journal events that mean "there may be new work", whichever process wrote them.
NEW_WORK = frozenset({"item.received", "relay.requeued"})


@dataclass
class Monitoring:
    db: Database
    hub: EventHub
    overview: Overview
    feed: JournalFeed
    progress: ProgressBoard
    metrics: Metrics
    _feed_task: SupervisedTask | None = None

    @classmethod
    def open(cls, settings: PageSettings, db: Database) -> Monitoring:
        hub = EventHub(queue_size=settings.events_queue_size)
        overview = Overview(db)
        return cls(
            db=db,
            hub=hub,
            overview=overview,
            feed=JournalFeed(overview, hub, poll_seconds=settings.events_poll_seconds),
            progress=ProgressBoard(hub.publish),
            metrics=Metrics(),
        )

    async def start(self, wake_relay: Callable[[], None]) -> None:
        """Deliver events on this loop; wake the relay when the feed shows new work."""

        def wake_on_new_work(event: Event) -> None:
            if event.get("type") == "journal" and event.get("event") in NEW_WORK:
                wake_relay()

        self.hub.bind(asyncio.get_running_loop())
        self.hub.add_listener(self.metrics.observe)
        self.hub.add_listener(wake_on_new_work)
        await self.feed.start()
        self.db.write_listeners.append(self.feed.nudge)
        self._feed_task = SupervisedTask("journal-feed", self.feed.run)
        self._feed_task.start()

    async def stop(self) -> None:
        if self.feed.nudge in self.db.write_listeners:
            self.db.write_listeners.remove(self.feed.nudge)
        if self._feed_task is not None:
            await self._feed_task.stop()
        self.hub.unbind()
