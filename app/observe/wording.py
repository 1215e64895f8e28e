"""How the page says things: sizes, times in the owner's zone, states in plain words.

Installed as Jinja2 filters, and used by `photo-relay status` too, so the terminal and the
page say the same thing the same way. Times are said by `app.clock.spoken` ("today 21:38",
"in 5 minutes"), the one clock format the relay's journal lines use too; the JSON API
keeps ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.clock import now, spoken
from app.receipts import ItemState
from app.targets.base import VERIFICATION_WORDS

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = [
    "COUNT_ORDER",
    "STATE_SHORT",
    "STATE_WORDS",
    "ago",
    "destination_name",
    "display_zone",
    "human_bytes",
    "install",
    "local_time",
    "verification_words",
    "wall_time",
]

STATE_WORDS: dict[ItemState, str] = {
    ItemState.RECEIVED: "Safe here, waiting to be copied",
    ItemState.RELAYING: "Being copied now",
    ItemState.RETRY: "Safe here, waiting to try the copy again",
    ItemState.VERIFIED: "Copied and verified",
    ItemState.FAILED: "Could not be copied (safe here)",
    ItemState.DAMAGED: "Send it again: the copy kept here is damaged",
}

STATE_SHORT: dict[ItemState, str] = {
    ItemState.RECEIVED: "waiting",
    ItemState.RELAYING: "copying",
    ItemState.RETRY: "retrying",
    ItemState.VERIFIED: "verified",
    ItemState.FAILED: "failed",
    ItemState.DAMAGED: "send again",
}

# The order the page and `photo-relay status` list the counts in: the good news first.
COUNT_ORDER: tuple[ItemState, ...] = (
    ItemState.VERIFIED,
    ItemState.RECEIVED,
    ItemState.RELAYING,
    ItemState.RETRY,
    ItemState.FAILED,
    ItemState.DAMAGED,
)


def display_zone(name: str | None) -> tzinfo | None:
    """The configured zone, or None for this machine's local zone."""
    return ZoneInfo(name) if name else None


def human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"


_DESTINATION_NAMES = {
    "nextcloud": "NextCloud",
    "webdav": "The WebDAV server",
    "local": "The library folder",
}


def destination_name(kind: str) -> str:
    """The destination as the headline names it ("NextCloud has not answered since ...")."""
    return _DESTINATION_NAMES.get(kind, "The destination")


def verification_words(method: str | None) -> str:
    """A receipt's `verified_by` code in words: 'read back and compared'."""
    if not method:
        return "—"
    return VERIFICATION_WORDS.get(method, method)


def local_time(stamp: str | None, zone: tzinfo | None = None) -> str:
    """'today 21:04', 'yesterday 08:02', '3 Dec 14:10', 'in 5 minutes' in the owner's zone."""
    return spoken(stamp, zone)


def wall_time(stamp: str | None) -> str:
    """A capture time as the clock showed it where it was taken (no zone conversion)."""
    if not stamp:
        return "—"
    return spoken(datetime.fromisoformat(stamp).replace(tzinfo=None))


def ago(stamp: str | None) -> str:
    """'just now', '5 minutes ago', '3 days ago'; 'never' for nothing."""
    if not stamp:
        return "never"
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        return local_time(stamp)
    seconds = max(0, int((now() - moment).total_seconds()))
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def install(env: Environment) -> None:
    env.filters["bytes"] = human_bytes
    env.filters["local_time"] = local_time
    env.filters["ago"] = ago
    env.filters["wall_time"] = wall_time
    env.filters["verification_words"] = verification_words
    env.globals["STATE_WORDS"] = STATE_WORDS
    env.globals["STATE_SHORT"] = STATE_SHORT
    env.globals["COUNT_ORDER"] = COUNT_ORDER
    env.globals["ItemState"] = ItemState
