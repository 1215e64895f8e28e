"""One relay per destination, driven as one: a destination that is down delays only its own.

Each `Relay` claims only the deliveries to its destination and keeps its own pause, outage
and probe; this group wakes, resumes and runs them together. What the service reports as
"the relay" (`status`) is the configured destination's, as before there were several.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from app.errors import TargetError
from app.relay.worker import Relay, RelayStatus
from app.store.deliveries import DEFAULT_DESTINATION

__all__ = ["Relays"]


class Relays:
    """The relays of every destination, by destination number."""

    def __init__(self, relays: dict[int, Relay]) -> None:
        assert DEFAULT_DESTINATION in relays, "the configured destination always has a relay"
        self.by_destination = relays

    def __iter__(self) -> Iterator[Relay]:
        return iter(self.by_destination.values())

    @property
    def default(self) -> Relay:
        return self.by_destination[DEFAULT_DESTINATION]

    @property
    def status(self) -> RelayStatus:
        return self.default.status

    def wake(self) -> None:
        for relay in self:
            relay.wake()

    def resume(self) -> None:
        for relay in self:
            relay.resume()

    async def pause(self, exc: TargetError) -> None:
        """The configured destination refused at start-up: only its relay pauses."""
        await self.default.pause(exc)

    async def run(self) -> None:
        await asyncio.gather(*(relay.run() for relay in self))
