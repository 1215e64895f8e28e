"""Deliveries: each destination a received file must reach, and whether all are verified.

The content (SHA-256) is stored once at home, in the items table; each destination it must
reach is a row of `deliveries` with its own state, path, attempts, last error and proof. The
item's own relay columns are the aggregate of its deliveries, kept so by `refresh_item` in
the same transaction as every change: verified only once every delivery is, else the state
of the delivery furthest from done. With one destination the item reads exactly as its one
delivery. `delivery_proofs` is the one place that decides "every delivery of this hash is
verified". Nothing here looks at the destination: that is a fresh check
(`app/relay/recheck.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from app.receipts import ItemState
from app.store.db import Database

__all__ = [
    "DEFAULT_DESTINATION",
    "RELAY_COLUMNS",
    "Delivery",
    "DeliveryProof",
    "delivery_proofs",
    "read_delivery_counts",
    "read_delivery_proofs",
    "refresh_item",
]

# The destination configured in the settings (settings.toml): the one every installation
# had before there could be several; the upgrade gives every existing item a delivery to it.
DEFAULT_DESTINATION = 1

# SQLite's default limit on bound parameters is 999; stay well below it.
_CHUNK = 500

# Which delivery speaks for the item: the one furthest from done (lowest rank first).
_RANK = {
    ItemState.DAMAGED: 0,
    ItemState.FAILED: 1,
    ItemState.RELAYING: 2,
    ItemState.RETRY: 3,
    ItemState.RECEIVED: 4,
    ItemState.VERIFIED: 5,
}

# A delivery's relay columns, which an item's row mirrors from its furthest-behind
# delivery; also the fields of a `DeliveryReceipt`.
RELAY_COLUMNS = (
    "state",
    "planned_path",
    "remote_path",
    "attempts",
    "next_attempt_at",
    "last_error",
    "verified_at",
    "verified_by",
    "remote_etag",
    "remote_file_id",
)


@dataclass(frozen=True)
class Delivery:
    """One verified copy of a file at a destination."""

    path: str
    size: int
    verified_at: str
    destination: int = DEFAULT_DESTINATION


@dataclass(frozen=True)
class DeliveryProof:
    """Whether every delivery of `sha256` is verified; if not, why, in plain words."""

    sha256: str
    verified: bool
    reason: str
    deliveries: tuple[Delivery, ...] = ()


def refresh_item(conn: sqlite3.Connection, sha256: str) -> None:
    """Make the item's relay columns the aggregate of its deliveries (same transaction)."""
    rows = conn.execute(
        "SELECT * FROM deliveries WHERE sha256 = ? ORDER BY destination_id", (sha256,)
    ).fetchall()
    if not rows:
        return
    worst = min(rows, key=lambda r: (_RANK.get(r["state"], 0), r["destination_id"]))
    values = {column: worst[column] for column in RELAY_COLUMNS}
    if worst["state"] == ItemState.VERIFIED:
        # Verified when the last of them was: the retention period counts from then.
        values["verified_at"] = max(r["verified_at"] or "" for r in rows) or None
    sets = ", ".join(f"{column} = ?" for column in RELAY_COLUMNS)
    conn.execute(f"UPDATE items SET {sets} WHERE sha256 = ?", (*values.values(), sha256))


def _proof(sha256: str, size: int | None, rows: list[sqlite3.Row]) -> DeliveryProof:
    if size is None:
        return DeliveryProof(sha256, False, "photo-relay never received these exact bytes")
    for row in rows:
        if row["state"] == ItemState.FAILED:
            why = row["last_error"] or "no reason was recorded"
            return DeliveryProof(sha256, False, f"copying it to the destination failed: {why}")
    if not rows or any(r["state"] != ItemState.VERIFIED or not r["remote_path"] for r in rows):
        return DeliveryProof(
            sha256, False, "received, but its copy at the destination is not verified yet"
        )
    deliveries = tuple(
        Delivery(r["remote_path"], size, r["verified_at"] or "", r["destination_id"]) for r in rows
    )
    return DeliveryProof(sha256, True, "verified at the destination", deliveries)


def delivery_proofs(
    conn: sqlite3.Connection, hashes: Iterable[str], person: int | None = None
) -> dict[str, DeliveryProof]:
    """For each hash (lowercase hex), whether every delivery of it is verified. With
    `person`, a file none of their devices sent answers as never received."""
    wanted = list(dict.fromkeys(hashes))
    sizes: dict[str, int] = {}
    rows: dict[str, list[sqlite3.Row]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        sql = f"SELECT sha256, size FROM items WHERE sha256 IN ({marks})"
        if person is not None:
            sql += " AND sha256 IN (SELECT sha256 FROM item_senders WHERE person_id = ?)"
        for row in conn.execute(sql, [*chunk, *([person] if person is not None else [])]):
            sizes[row["sha256"]] = int(row["size"])
        for row in conn.execute(
            "SELECT sha256, destination_id, state, remote_path, verified_at, last_error "
            f"FROM deliveries WHERE sha256 IN ({marks}) ORDER BY destination_id",
            chunk,
        ):
            rows.setdefault(row["sha256"], []).append(row)
    return {sha: _proof(sha, sizes.get(sha), rows.get(sha, [])) for sha in wanted}


def read_delivery_counts(conn: sqlite3.Connection) -> dict[int, dict[ItemState, int]]:
    """Per destination, how many of its deliveries are in each state."""
    counts: dict[int, dict[ItemState, int]] = {}
    for row in conn.execute(
        "SELECT destination_id, state, COUNT(*) FROM deliveries GROUP BY destination_id, state"
    ):
        counts.setdefault(row[0], dict.fromkeys(ItemState, 0))[ItemState(row[1])] = row[2]
    return counts


def read_delivery_proofs(
    db: Database, hashes: Iterable[str], person: int | None = None
) -> dict[str, DeliveryProof]:
    """`delivery_proofs` in its own transaction (call it off the event loop)."""
    wanted = list(hashes)
    return db.call(lambda conn: delivery_proofs(conn, wanted, person))
