"""Time as the service writes it, and as people read it.

Written: UTC, ISO 8601, fixed width so strings sort like times (the database, the JSON API).
Read: the owner's local time in plain words ("today 21:38", "yesterday 08:02", "3 Dec 14:10",
"in 5 minutes"). A leaf, so the relay's journal lines, the headline and every face share one
way of saying a time; `app.observe.wording` installs it for the page and the CLI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["duration_words", "iso", "now", "spoken"]


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def duration_words(seconds: float) -> str:
    """'a few seconds', '40 seconds', '5 minutes', '2 hours', '3 days' (rounded down)."""
    whole = max(0, int(seconds))
    if whole < 10:
        return "a few seconds"
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if whole >= length:
            count = whole // length
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "a few seconds"  # unreachable: whole >= 10 matches "second"


def spoken(
    moment: datetime | str | None, zone: tzinfo | None = None, *, reference: datetime | None = None
) -> str:
    """A time for people, in `zone` (None: this machine's zone); '—' for nothing.

    Past and present: 'today 21:38', 'yesterday 08:02', '3 Dec 14:10', '3 Dec 2025, 14:10'
    for another year. Later than a minute from now: 'in 5 minutes', 'in 2 hours', and
    beyond a day the date as above. A time without a zone is shown as it is.
    """
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    current = reference or now()
    if moment.tzinfo is None:
        local, today = moment, current.astimezone(zone).replace(tzinfo=None)
    else:
        local, today = moment.astimezone(zone), current.astimezone(zone)
        ahead = (moment - current).total_seconds()
        if 60 <= ahead < 86400:
            return f"in {duration_words(ahead)}"
        if 0 < ahead < 60:
            return "in less than a minute"
    clock = local.strftime("%H:%M")
    if local.date() == today.date():
        return f"today {clock}"
    if local.date() == today.date() - timedelta(days=1):
        return f"yesterday {clock}"
    if local.year == today.year:
        return f"{local.day} {local:%b} {clock}"
    return f"{local.day} {local:%b %Y}, {clock}"
