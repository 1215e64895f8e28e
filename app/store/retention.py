"""Spool retention: a home copy is removed only after every delivery of it is verified.

It is kept for `spool_retention_days` after verification (0: removed at once), so a copy
lost or damaged at the destination can still be restored from home for a while. The
relay runs the sweep now and then; each removal is journalled. A photo sent again after
its home copy was removed is not kept again: its copy at the destination is verified.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from app.clock import now
from app.off_loop import off_loop
from app.receipts import ItemState
from app.store.spool import Spool
from app.store.state import State

__all__ = ["SWEEP_INTERVAL", "drop_repeat_copy", "remove_spool_copy", "sweep_spool"]

log = logging.getLogger(__name__)

SWEEP_INTERVAL = timedelta(hours=1)


async def remove_spool_copy(state: State, spool: Spool, sha256: str, days: float) -> None:
    """Remove one verified item's home copy and record it, in one hop off the loop."""
    kept = "right after verification" if days == 0 else f"{days:g} days after verification"
    message = f"The home copy was removed {kept}, as PHOTO_RELAY_SPOOL_RETENTION_DAYS says."
    if await off_loop(_remove_and_record, state, spool, sha256, message):
        log.info("spool.removed sha256=%s", sha256)


async def sweep_spool(state: State, spool: Spool, days: float) -> int:
    """Remove every home copy whose retention period is over; returns how many."""
    removed = 0
    while True:
        due = await off_loop(state.spool_removable, now() - timedelta(days=days))
        if not due:
            return removed
        for sha256 in due:
            await remove_spool_copy(state, spool, sha256, days)
            removed += 1


async def drop_repeat_copy(state: State, spool: Spool, sha256: str) -> None:
    """Content received again after retention removed its home copy: remove the new one.

    The sweep only looks at copies it has not removed yet, so without this the repeat
    would stay in the spool forever.
    """
    if await off_loop(_drop_if_removed_before, state, spool, sha256):
        log.info("spool.repeat_removed sha256=%s", sha256)


def _remove_and_record(state: State, spool: Spool, sha256: str, message: str) -> bool:
    """The file first, then the record: a crash in between just repeats this.

    Only once every delivery of it is verified: one destination done is not enough."""
    receipt = state.get_item(sha256)
    if receipt is None or receipt.state != ItemState.VERIFIED:
        return False
    spool.remove(sha256)
    return state.mark_spool_removed(sha256, message)


def _drop_if_removed_before(state: State, spool: Spool, sha256: str) -> bool:
    if state.spool_removed_at(sha256) is None:
        return False
    spool.remove(sha256)
    state.journal(
        "spool.removed",
        "The copy received again was removed at once: this photo is already verified at the "
        "destination and its retention period at home is over.",
        sha256=sha256,
    )
    return True
