"""The destination check: reachable, credentials accepted, a probe file written and removed.

`check_destination` asks the target itself (for `photo-relay doctor`); `destination_from_relay`
reads what the running relay already knows (for the status report, which sends nothing).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from typing import Protocol, runtime_checkable

from app.clock import spoken
from app.config import Settings
from app.errors import (
    ConfigurationError,
    NameTaken,
    TargetAuthFailed,
    TargetError,
    TargetFull,
    TargetUnavailable,
    VerificationFailed,
)
from app.observe.doctor.findings import fail, ok, service_user, warn
from app.observe.wording import verification_words
from app.off_loop import off_loop
from app.receipts import HealthCheck
from app.relay.worker import RelayStatus
from app.store.db import open_read_only
from app.store.people import (
    DestinationInfo,
    nextcloud_credentials_file,
    password_file,
    read_destinations,
)
from app.targets import Target, open_added_target
from app.targets.probe import probe_write

__all__ = [
    "ServerClock",
    "check_added_destinations",
    "check_destination",
    "destination_from_relay",
]


@runtime_checkable
class ServerClock(Protocol):
    """A target that can tell the destination server's time (e.g. from its `Date` header)."""

    async def server_time(self) -> datetime | None: ...


_DESTINATION_FIXES: list[tuple[type[Exception], str]] = [
    (
        TargetAuthFailed,
        "Make a new app password (NextCloud: Personal settings > Security > Create new app "
        "password) and set PHOTO_RELAY_TARGET_USER and PHOTO_RELAY_TARGET_PASSWORD, or run "
        "`photo-relay nextcloud login`; then restart photo-relay.",
    ),
    (
        TargetUnavailable,
        "Check that the destination is running and that this machine reaches it at "
        "PHOTO_RELAY_TARGET_URL (in Docker: by its service name); then run doctor again.",
    ),
    (TargetFull, "Free space at the destination (or raise the user's NextCloud quota)."),
    (
        VerificationFailed,
        "The test file came back different: check the destination's disk, and any proxy or "
        "antivirus that alters uploads.",
    ),
    (NameTaken, "Run doctor again (a leftover test file was in the way)."),
    (
        ConfigurationError,
        "Change the setting the message names, then restart photo-relay.",
    ),
]


def _added_destinations(settings: Settings) -> list[DestinationInfo]:
    """The destinations added with `photo-relay destination add` (read only; none if the
    database is not there or older than people)."""
    if not settings.database_path.exists():
        return []
    try:
        conn = open_read_only(settings.database_path)
        try:
            return [d for d in read_destinations(conn) if d.kind != "settings" and d.location]
        finally:
            conn.close()
    except sqlite3.Error:
        return []


async def check_added_destinations(settings: Settings) -> list[HealthCheck]:
    """The same check for every destination of every person beyond the configured one."""
    results = []
    for info in await off_loop(_added_destinations, settings):
        assert info.location is not None
        secret = password_file(settings.data_dir, info.id)
        password = secret.read_text().strip() if secret.exists() else None
        target = open_added_target(
            settings,
            info.kind,
            info.location,
            info.user,
            password,
            folder=info.folder,
            credentials_file=nextcloud_credentials_file(settings.data_dir, info.person),
        )
        try:
            found, _ = await check_destination(target)
        finally:
            await target.close()
        name = f"destination {info.id} ({info.person})"
        results.append(found.model_copy(update={"name": name}))
    return results


def _local_folder_fix(target: Target) -> str:
    folder = getattr(target, "root", "<folder>")
    return (
        f"Let the user running photo-relay ({service_user()}) write to the folder: "
        f"`sudo mkdir -p {folder} && sudo chown -R {os.getuid()}:{os.getgid()} {folder}`, or "
        "set PHOTO_RELAY_TARGET_FOLDER to a folder it may write to (with the systemd unit, "
        "also add it as ReadWritePaths=)."
    )


async def check_destination(target: Target) -> tuple[HealthCheck, datetime | None]:
    """The destination is reachable, accepts the credentials and takes a write (a probe file).

    Also returns the destination server's time when the target can tell it (ServerClock).
    """
    where = target.describe()
    try:
        await target.check()
        proof = await probe_write(target)
        server_time = await target.server_time() if isinstance(target, ServerClock) else None
    except (ConfigurationError, TargetError) as exc:
        fix = next(
            (f for kind, f in _DESTINATION_FIXES if isinstance(exc, kind)),
            "Fix the problem the message names, then run doctor again.",
        )
        if target.kind == "local" and isinstance(exc, ConfigurationError):
            fix = _local_folder_fix(target)
        return fail("destination", f"Photos cannot be copied to {where}: {exc.message}", fix), None
    except OSError as exc:
        return fail(
            "destination",
            f"photo-relay could not write a test file to {where}: {exc.strerror or exc}.",
            _local_folder_fix(target),
        ), None
    checked = verification_words(proof.method)
    return ok(
        "destination", f"A test file was written to {where}, checked ({checked}) and removed."
    ), server_time


def destination_from_relay(
    where: str, relay: RelayStatus, target_problem: str | None
) -> HealthCheck:
    """The destination as the running relay sees it (no request is sent)."""
    problem = target_problem or relay.reason
    if target_problem or (relay.state == "paused" and relay.paused_until is None):
        return fail(
            "destination",
            f"The relay to {where} is stopped: {problem}",
            "Fix what the message names (`photo-relay doctor` tests the destination and says "
            "how), then restart photo-relay.",
        )
    if relay.state == "paused":
        return warn(
            "destination",
            f"The relay to {where} is waiting until {spoken(relay.paused_until)}: {problem}",
            "Nothing to do if this passes; if it keeps coming back, run `photo-relay doctor`.",
        )
    if relay.state == "waiting":
        return warn(
            "destination",
            f"{where} has not answered since {spoken(relay.down_since)}: {problem} The "
            "files are safe here and go as soon as it answers.",
            "Nothing to do if the server is down on purpose (an update); otherwise check that "
            "it runs and that this machine can reach it.",
        )
    if relay.state == "stopped":
        return fail(
            "destination",
            f"The relay to {where} has stopped.",
            "Restart photo-relay; if it stops again, its log says why.",
        )
    return ok("destination", f"The relay to {where} is {relay.state}.")
