"""The journal's one writer: every entry, whoever makes it, is appended by `write_journal`.

An entry records a decision and its reason in plain words (`relay.retry_scheduled`,
`device.revoked`, ...), about one item (`sha256`) or about the service as a whole (None).
It is written inside the caller's transaction, so it commits or rolls back with the change
it describes and can never disagree with it.
"""

from __future__ import annotations

import sqlite3

from app.clock import iso, now

__all__ = ["write_journal"]


def write_journal(
    conn: sqlite3.Connection,
    event: str,
    message: str,
    *,
    sha256: str | None = None,
    destination: int | None = None,
) -> int:
    """Append one entry in the open transaction on `conn`; returns its id. `destination`:
    the entry is about the item's delivery to that destination."""
    cursor = conn.execute(
        "INSERT INTO journal (at, sha256, event, message, destination_id) VALUES (?, ?, ?, ?, ?)",
        (iso(now()), sha256, event, message, destination),
    )
    return int(cursor.lastrowid or 0)
