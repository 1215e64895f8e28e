"""Time as the service writes it: UTC, ISO 8601, fixed width so strings sort like times."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso", "now"]


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")
