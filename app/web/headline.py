"""The status page's headline, worded by the server for the page and for its live feed.

One wording for both, so a page kept open through an outage says what a reload would:
"NextCloud has not answered since 02:10; 214 photos are safe here and wait."
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.observe import wording
from app.relay.worker import RelayState

if TYPE_CHECKING:
    from app.services import Services
    from app.store.overview import Snapshot, Verdict

__all__ = ["headline", "relay_problem"]


def relay_problem(services: Services) -> str | None:
    """Why copying is paused (or the destination unusable), in words; None if it is not."""
    relay = services.relay.status
    return relay.reason if relay.state == RelayState.PAUSED else services.target_problem


def headline(services: Services, snapshot: Snapshot) -> Verdict:
    return snapshot.verdict(
        relay_problem(services),
        destination=wording.destination_name(services.target.kind),
        zone=wording.display_zone(services.settings.timezone),
    )
