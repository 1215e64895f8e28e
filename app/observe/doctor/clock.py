"""The clock check: this machine's time is plausible, not behind our records, near the server's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.clock import duration_words, spoken
from app.observe.doctor.findings import fail, ok, warn
from app.receipts import HealthCheck

__all__ = ["CLOCK_TOLERANCE", "EARLIEST_PLAUSIBLE_TIME", "check_clock"]

# Two clocks this far apart are wrong, not merely drifting.
CLOCK_TOLERANCE = timedelta(minutes=5)
# No photo-relay existed before this; a clock showing an earlier time is certainly wrong
# (a Raspberry Pi without a real-time clock boots in the past until NTP answers).
EARLIEST_PLAUSIBLE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


def check_clock(
    now: datetime, newest_record: datetime | None, server_time: datetime | None
) -> HealthCheck:
    """This machine's clock is plausible, not behind what we recorded, close to the server's."""
    fix = (
        "Turn on network time: `sudo timedatectl set-ntp true` on a Raspberry Pi or Linux "
        "machine, or the NTP setting of your NAS; then restart photo-relay."
    )
    if now < EARLIEST_PLAUSIBLE_TIME:
        return fail(
            "clock",
            f"This machine's clock says it is {spoken(now)}, before photo-relay existed. "
            "Receipts, retries and photos without a capture date would get wrong times.",
            fix,
        )
    if newest_record is not None and newest_record - now > CLOCK_TOLERANCE:
        return fail(
            "clock",
            f"This machine's clock says it is {spoken(now, reference=now)}, but photo-relay "
            f"already wrote something {duration_words((newest_record - now).total_seconds())} "
            "later than that: the clock went back.",
            fix,
        )
    if server_time is not None and abs(server_time - now) > CLOCK_TOLERANCE:
        minutes = int(abs(server_time - now).total_seconds() // 60)
        return warn(
            "clock",
            f"This machine's clock and the destination server's differ by {minutes} minutes.",
            fix + " Do the same on the destination server.",
        )
    compared = " and the destination server's" if server_time is not None else ""
    said = spoken(now, reference=now)
    return ok("clock", f"The clock says {said}, which agrees with our records{compared}.")
