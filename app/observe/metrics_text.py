"""Prometheus' text format for a metrics snapshot and the items per state.

The same families, samples and order that prometheus_client's Counter and Histogram
give; built at each scrape from the plain counts `app.observe.metrics` keeps.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from app.observe.metrics import COUNTERS, LATENCY_BUCKETS, PER_DESTINATION, Snapshot
from app.receipts import PENDING_STATES, ItemState

__all__ = ["CONTENT_TYPE", "render_text"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_NAME = "photo_relay_relay_latency_seconds"
LATENCY_HELP = "Time from receiving a file to its verified copy at the destination."


class _Scrape(Collector):
    """Every family of one scrape: the snapshot's counters and histogram, then the gauges."""

    def __init__(
        self,
        snapshot: Snapshot,
        counts: dict[ItemState, int],
        deliveries: dict[int, dict[ItemState, int]],
    ) -> None:
        self.snapshot = snapshot
        self.counts = counts
        self.deliveries = deliveries

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        for name, help_text in COUNTERS.items():
            if name in PER_DESTINATION:
                yield self._per_destination(name, help_text)
            else:
                yield CounterMetricFamily(
                    name, help_text, value=snap.counters[name], created=snap.started
                )
        bounds = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]
        cumulative = [float(n) for n in itertools.accumulate(snap.latency_buckets)]
        latency = HistogramMetricFamily(
            LATENCY_NAME,
            LATENCY_HELP,
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=snap.latency_sum,
        )
        latency.add_sample(LATENCY_NAME + "_created", {}, snap.started)
        yield latency
        items = GaugeMetricFamily(
            "photo_relay_items", "Files known to photo-relay, by state.", labels=["state"]
        )
        for state, count in self.counts.items():
            items.add_metric([state], count)
        yield items
        per_destination = GaugeMetricFamily(
            "photo_relay_deliveries",
            "Deliveries (a file to one destination), by destination number and state.",
            labels=["destination", "state"],
        )
        for destination, states in sorted(self.deliveries.items()):
            for state, count in states.items():
                per_destination.add_metric([str(destination), state], count)
        yield per_destination
        yield GaugeMetricFamily(
            "photo_relay_queue_depth",
            "Files safe at home and not yet verified at the destination (not failed).",
            value=sum(self.counts[s] for s in PENDING_STATES),
        )

    def _per_destination(self, name: str, help_text: str) -> Metric:
        """One sample per destination: every one known (0 until something happens there)
        and any that counted since and is gone now."""
        counted = self.snapshot.per_destination.get(name, {})
        family = CounterMetricFamily(name, help_text, labels=["destination"])
        for destination in sorted(set(self.deliveries) | set(counted)):
            family.add_metric(
                [str(destination)], counted.get(destination, 0.0), created=self.snapshot.started
            )
        return family


def render_text(
    snapshot: Snapshot,
    counts: dict[ItemState, int],
    deliveries: dict[int, dict[ItemState, int]] | None = None,
) -> bytes:
    return generate_latest(_Scrape(snapshot, counts, deliveries or {}))
