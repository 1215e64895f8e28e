"""The doctor: checks a setup and says, in plain words, what is wrong and how to fix it.

`diagnose()` (for `photo-relay doctor`) runs every check actively: it opens the database
read-only and runs SQLite's quick_check, and writes, verifies and deletes a probe file at the
destination. `status_checks()` (for GET /v1/status) runs the same checks passively: no probe,
no scan, the relay's own state speaks for the destination — so a status page that refreshes
every few seconds never hammers NextCloud or trips its brute-force protection.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from app.clock import now as clock_now
from app.config import Settings
from app.errors import ConfigurationError
from app.observe.doctor.clock import check_clock
from app.observe.doctor.database import DatabaseFacts, check_database, newest_file_time
from app.observe.doctor.destination import (
    ServerClock,
    check_added_destinations,
    check_destination,
    destination_from_relay,
)
from app.observe.doctor.devices import check_devices
from app.observe.doctor.findings import fail
from app.observe.doctor.machine import (
    COMFORT_MARGIN_BYTES,
    ROOM_CHECK,
    check_admin_token,
    check_data_dir,
    check_spool_space,
    check_user,
    load_settings_checked,
)
from app.off_loop import off_loop
from app.receipts import HealthCheck
from app.relay.worker import RelayStatus
from app.targets import open_target

__all__ = [
    "COMFORT_MARGIN_BYTES",
    "ROOM_CHECK",
    "ServerClock",
    "check_clock",
    "check_destination",
    "diagnose",
    "print_report",
    "status_checks",
]

Clock = Callable[[], datetime]


async def diagnose(
    data_dir: Path | None = None,
    *,
    clock: Clock = clock_now,
) -> list[HealthCheck]:
    """Every check, actively (quick_check, write probe): what `photo-relay doctor` prints."""
    settings, configuration = load_settings_checked(data_dir=data_dir)
    if settings is None:
        return [configuration]
    results = [configuration, check_user(), check_data_dir(settings), check_admin_token(settings)]
    results.append(await off_loop(check_spool_space, settings))
    database, facts = await off_loop(check_database, settings.database_path, thorough=True)
    results.append(database)
    server_time = None
    try:
        target = open_target(settings)
    except ConfigurationError as exc:
        results.append(fail("destination", exc.message, "Change the setting the message names."))
    else:
        try:
            destination, server_time = await check_destination(target)
        finally:
            await target.close()
        results.append(destination)
    results.extend(await check_added_destinations(settings))
    newest = max(
        (t for t in (facts.newest_record_at if facts else None, newest_file_time(settings)) if t),
        default=None,
    )
    results.append(check_clock(clock(), newest, server_time))
    if facts is not None:
        results.extend(check_devices(facts.devices, clock(), settings.device_quiet_days))
    return results


async def status_checks(
    settings: Settings,
    destination: str,
    relay: RelayStatus,
    target_problem: str | None,
    *,
    clock: Clock = clock_now,
) -> list[HealthCheck]:
    """The checks that need no probe and no scan, for GET /v1/status.

    `destination` describes the target, `relay` is the running relay's status and
    `target_problem` what the start-up check of the target found, if anything.
    """

    def gather() -> tuple[list[HealthCheck], DatabaseFacts | None]:
        found = [
            check_data_dir(settings),
            check_admin_token(settings),
            check_spool_space(settings),
        ]
        database, facts = check_database(settings.database_path, thorough=False)
        return [*found, database], facts

    results, facts = await off_loop(gather)
    results.append(destination_from_relay(destination, relay, target_problem))
    results.append(check_clock(clock(), facts.newest_record_at if facts else None, None))
    if facts is not None:
        results.extend(check_devices(facts.devices, clock(), settings.device_quiet_days))
    return results


def print_report(checks: list[HealthCheck], *, strict: bool, as_json: bool) -> int:
    """Print the checks for a person (or as JSON); return the exit code."""
    failed = [c for c in checks if c.status == "fail"]
    warned = [c for c in checks if c.status == "warn"]
    if as_json:
        click.echo(json.dumps([c.model_dump() for c in checks], indent=2))
    else:
        for check in checks:
            label = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[check.status]
            click.echo(f"{label}  {check.name}: {check.message}")
            if check.fix:
                click.echo(f"      Fix: {check.fix}")
        if failed or warned:
            click.echo(f"\n{len(failed)} problem(s), {len(warned)} warning(s).")
        else:
            click.echo("\nAll is well.")
    return 1 if failed or (strict and warned) else 0
