"""Crash points: a test hook that SIGKILLs the service at one named step, to prove recovery.

Off unless the environment variable PHOTO_RELAY_TEST_CRASH_AT names a point (for example
`ingest.after_fsync`); then the process kills itself with SIGKILL the moment it reaches that
point — no cleanup, no flush, exactly like a power cut or the OOM killer. This is not a
setting and not for users: only the reliability suite (tests/reliability/) sets it, on a
service subprocess it is about to restart. docs/RELIABILITY.md lists the points.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_AT_VARIABLE", "POINTS", "reached"]

CRASH_AT_VARIABLE = "PHOTO_RELAY_TEST_CRASH_AT"

POINTS = (
    "ingest.body_started",  # the first bytes of an upload are in the spool's temp file
    "ingest.after_fsync",  # file complete and fsynced, not yet linked to its content address
    "ingest.after_link",  # linked into the spool, not yet recorded in the database
    "ingest.after_record",  # recorded (committed), the client has not had its reply
    "relay.after_claim",  # item marked `relaying`, nothing sent to the destination yet
    "relay.before_mark_verified",  # copy at its final name and verified, database not updated
)


def reached(point: str) -> None:
    """SIGKILL this process if the test hook names `point`; otherwise do nothing."""
    # Read on every call (cheap) rather than cached, so the hook has no state of its own.
    if os.environ.get(CRASH_AT_VARIABLE) == point:
        os.kill(os.getpid(), signal.SIGKILL)
