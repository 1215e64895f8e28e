"""Prometheus metrics: counters fed by the live journal feed, gauges read at scrape time.

Counters (received, duplicates, verified, failed, bytes) and the relay latency histogram
count what this service saw since it started, as Prometheus expects; those about a copy
to a destination (verified, failed, retries, verified bytes) count per destination. The
queue depth and the items per state are read from the database at each scrape, so they
are right even after a restart. Each app has its own counts: no module-level state. The counts are
plain numbers here; `app.observe.metrics_text` turns them into Prometheus' text at a scrape.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from app.observe.events import Event
from app.store.deliveries import DEFAULT_DESTINATION

__all__ = ["COUNTERS", "LATENCY_BUCKETS", "PER_DESTINATION", "Metrics", "Snapshot"]

# Each counter's name (exposed with `_total` and `_created`) and help, in scrape order.
COUNTERS = {
    "photo_relay_received": "New files received and stored.",
    "photo_relay_duplicates": "Files received again (nothing new stored).",
    "photo_relay_verified": "Files copied and verified at the destination.",
    "photo_relay_failed": "Files marked failed: a person must act (the reason says what).",
    "photo_relay_retries": "Copy attempts that failed and were scheduled again.",
    "photo_relay_received_bytes": "Bytes of new files received.",
    "photo_relay_verified_bytes": "Bytes of files verified at the destination.",
}

# The counters about one delivery, labelled with its destination's number.
PER_DESTINATION = frozenset(
    {
        "photo_relay_verified",
        "photo_relay_failed",
        "photo_relay_retries",
        "photo_relay_verified_bytes",
    }
)

# From receipt to verified copy: seconds on a LAN, hours when NextCloud was down.
LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


@dataclass(frozen=True)
class Snapshot:
    """The counts at one moment, consistent with each other."""

    started: float  # Unix time the counting began (Prometheus' `_created`)
    counters: dict[str, float]  # those not in PER_DESTINATION
    per_destination: dict[str, dict[int, float]]  # counter -> destination -> count
    latency_buckets: list[int]  # files per bucket (not cumulative); the last is +Inf
    latency_sum: float


class Metrics:
    """The service's metrics; `observe` takes events from the hub, `snapshot` feeds a scrape."""

    def __init__(self) -> None:
        self.started = time.time()
        # The scrape reads from a worker thread while the event loop counts.
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(set(COUNTERS) - PER_DESTINATION, 0.0)
        self._per_destination: dict[str, dict[int, float]] = {n: {} for n in PER_DESTINATION}
        self._latency_buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0

    def observe(self, event: Event) -> None:
        if event.get("type") != "journal":
            return
        kind, item = event.get("event"), event.get("item") or {}
        # Entries written before the journal named destinations were all about the one
        # destination there was then.
        destination = event.get("destination") or DEFAULT_DESTINATION
        if kind == "item.received":
            self._count("photo_relay_received")
            self._count("photo_relay_received_bytes", item.get("size") or 0)
        elif kind == "item.duplicate":
            self._count("photo_relay_duplicates")
        elif kind == "relay.verified":
            self._count_at(destination, "photo_relay_verified")
            self._count_at(destination, "photo_relay_verified_bytes", item.get("size") or 0)
            if item.get("received_at") and item.get("verified_at"):
                took = datetime.fromisoformat(item["verified_at"]) - datetime.fromisoformat(
                    item["received_at"]
                )
                self._observe_latency(max(took.total_seconds(), 0.0))
        elif kind == "relay.failed":
            self._count_at(destination, "photo_relay_failed")
        elif kind in ("relay.retry_scheduled", "relay.problem"):
            self._count_at(destination, "photo_relay_retries")

    def _count(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def _count_at(self, destination: int, name: str, amount: float = 1) -> None:
        with self._lock:
            counts = self._per_destination[name]
            counts[destination] = counts.get(destination, 0.0) + amount

    def _observe_latency(self, seconds: float) -> None:
        # A bucket holds the values up to and including its bound, as in Prometheus.
        with self._lock:
            self._latency_buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                self.started,
                dict(self._counters),
                {name: dict(counts) for name, counts in self._per_destination.items()},
                list(self._latency_buckets),
                self._latency_sum,
            )
