"""`/metrics` in Prometheus' text format; admin token unless PHOTO_RELAY_METRICS_PUBLIC."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import ServicesDep, require_admin
from app.off_loop import off_loop
from app.receipts import ItemState
from app.store.deliveries import read_delivery_counts
from app.store.people import read_destinations

__all__ = ["router"]

router = APIRouter(tags=["status"])


@router.get("/metrics", response_class=Response)
async def read_metrics(request: Request, services: ServicesDep) -> Response:
    """Counters since start, items per state, queue depth and relay latency."""
    if not services.settings.metrics_public:
        await require_admin(request, services)
    # Imported at the first scrape, not at start-up: prometheus_client costs ~80 ms.
    from app.observe.metrics_text import CONTENT_TYPE, render_text

    metrics, overview = services.monitoring.metrics, services.monitoring.overview
    # One hop for the whole scrape: the counts' query and the text prometheus_client builds.
    body = await off_loop(
        lambda: render_text(
            metrics.snapshot(), overview.counts(), services.db.call(_every_destinations_counts)
        )
    )
    return Response(body, media_type=CONTENT_TYPE)


def _every_destinations_counts(conn: sqlite3.Connection) -> dict[int, dict[ItemState, int]]:
    """Deliveries per state of every destination, one with none yet too (its counters show 0)."""
    counts = read_delivery_counts(conn)
    for destination in read_destinations(conn):
        counts.setdefault(destination.id, dict.fromkeys(ItemState, 0))
    return counts
