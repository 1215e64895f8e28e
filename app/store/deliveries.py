"""Where each received file was delivered, and whether every delivery of it is verified.

Today an installation has one destination, so a file has at most one delivery: its item
row, verified once the relay proved the copy. `delivery_proofs` is the one place that
decides "every delivery of this hash is verified"; when files go to several destinations,
only this module changes. Nothing here looks at the destination: that is a fresh check
(`app/relay/recheck.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from app.receipts import ItemState
from app.store.db import Database

__all__ = ["Delivery", "DeliveryProof", "delivery_proofs", "read_delivery_proofs"]

# SQLite's default limit on bound parameters is 999; stay well below it.
_CHUNK = 500


@dataclass(frozen=True)
class Delivery:
    """One verified copy of a file at a destination."""

    path: str
    size: int
    verified_at: str


@dataclass(frozen=True)
class DeliveryProof:
    """Whether every delivery of `sha256` is verified; if not, why, in plain words."""

    sha256: str
    verified: bool
    reason: str
    deliveries: tuple[Delivery, ...] = ()


def _proof(sha256: str, row: sqlite3.Row | None) -> DeliveryProof:
    if row is None:
        return DeliveryProof(sha256, False, "photo-relay never received these exact bytes")
    state = row["state"]
    if state == ItemState.FAILED:
        why = row["last_error"] or "no reason was recorded"
        return DeliveryProof(sha256, False, f"copying it to the destination failed: {why}")
    if state != ItemState.VERIFIED or not row["remote_path"]:
        return DeliveryProof(
            sha256, False, "received, but its copy at the destination is not verified yet"
        )
    delivery = Delivery(row["remote_path"], int(row["size"]), row["verified_at"] or "")
    return DeliveryProof(sha256, True, "verified at the destination", (delivery,))


def delivery_proofs(conn: sqlite3.Connection, hashes: Iterable[str]) -> dict[str, DeliveryProof]:
    """For each hash (lowercase hex), whether every delivery of it is verified."""
    wanted = list(dict.fromkeys(hashes))
    rows: dict[str, sqlite3.Row] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for row in conn.execute(
            "SELECT sha256, size, state, remote_path, verified_at, last_error FROM items "
            f"WHERE sha256 IN ({marks})",
            chunk,
        ):
            rows[row["sha256"]] = row
    return {sha256: _proof(sha256, rows.get(sha256)) for sha256 in wanted}


def read_delivery_proofs(db: Database, hashes: Iterable[str]) -> dict[str, DeliveryProof]:
    """`delivery_proofs` in its own transaction (call it off the event loop)."""
    wanted = list(hashes)
    return db.call(lambda conn: delivery_proofs(conn, wanted))
