"""Prometheus metrics: counters fed by the live journal feed, gauges read at scrape time.

Counters (received, duplicates, verified, failed, bytes) and the relay latency histogram
count what this service saw since it started, as Prometheus expects; the queue depth and
the items per state are read from the database at each scrape, so they are right even
after a restart. Each app has its own registry: no module-level state.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.events import Event
from app.overview import PENDING, Overview

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# From receipt to verified copy: seconds on a LAN, hours when NextCloud was down.
LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class _StateCollector(Collector):
    """Items per state and the queue depth, straight from the database."""

    def __init__(self, overview: Overview) -> None:
        self.overview = overview

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.overview.counts()
        items = GaugeMetricFamily(
            "photo_relay_items", "Files known to photo-relay, by state.", labels=["state"]
        )
        for state, count in counts.items():
            items.add_metric([state], count)
        yield items
        yield GaugeMetricFamily(
            "photo_relay_queue_depth",
            "Files safe at home and not yet verified at the destination (not failed).",
            value=sum(counts[s] for s in PENDING),
        )


class Metrics:
    """The service's metrics; `observe` takes events from the hub, `render` the scrape."""

    def __init__(self, overview: Overview) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "photo_relay_received", "New files received and stored.", registry=r
        )
        self.duplicates = Counter(
            "photo_relay_duplicates", "Files received again (nothing new stored).", registry=r
        )
        self.verified = Counter(
            "photo_relay_verified", "Files copied and verified at the destination.", registry=r
        )
        self.failed = Counter(
            "photo_relay_failed", "Files given up on after every attempt.", registry=r
        )
        self.retries = Counter(
            "photo_relay_retries", "Copy attempts that failed and were scheduled again.", registry=r
        )
        self.received_bytes = Counter(
            "photo_relay_received_bytes", "Bytes of new files received.", registry=r
        )
        self.verified_bytes = Counter(
            "photo_relay_verified_bytes", "Bytes of files verified at the destination.", registry=r
        )
        self.latency = Histogram(
            "photo_relay_relay_latency_seconds",
            "Time from receiving a file to its verified copy at the destination.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        r.register(_StateCollector(overview))

    def observe(self, event: Event) -> None:
        if event.get("type") != "journal":
            return
        kind, item = event.get("event"), event.get("item") or {}
        if kind == "item.received":
            self.received.inc()
            self.received_bytes.inc(item.get("size") or 0)
        elif kind == "item.duplicate":
            self.duplicates.inc()
        elif kind == "relay.verified":
            self.verified.inc()
            self.verified_bytes.inc(item.get("size") or 0)
            if item.get("received_at") and item.get("verified_at"):
                took = datetime.fromisoformat(item["verified_at"]) - datetime.fromisoformat(
                    item["received_at"]
                )
                self.latency.observe(max(took.total_seconds(), 0.0))
        elif kind == "relay.failed":
            self.failed.inc()
        elif kind == "relay.retry_scheduled":
            self.retries.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
