"""The doctor: checks a setup and says, in plain words, what is wrong and how to fix it.

`diagnose()` (for `photo-relay doctor`) runs every check actively: it opens the database
read-only and runs SQLite's quick_check, and writes, verifies and deletes a probe file at the
destination. `status_checks()` (for GET /v1/status) runs the same checks passively: no probe,
no scan, the relay's own state speaks for the destination — so a status page that refreshes
every few seconds never hammers NextCloud or trips its brute-force protection.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import click
from pydantic import ValidationError

from app.clock import now as clock_now
from app.config import GiB, Settings
from app.db import MIGRATIONS, open_read_only, quick_check, schema_version
from app.errors import (
    ConfigurationError,
    NameTaken,
    TargetAuthFailed,
    TargetError,
    TargetFull,
    TargetUnavailable,
    VerificationFailed,
)
from app.receipts import DeviceInfo, HealthCheck
from app.services import Services
from app.state import read_devices, read_newest_record_at
from app.targets import Target, open_target
from app.targets.probe import probe_write

__all__ = [
    "CLOCK_TOLERANCE",
    "COMFORT_MARGIN_BYTES",
    "EARLIEST_PLAUSIBLE_TIME",
    "ServerClock",
    "check_admin_token",
    "check_clock",
    "check_data_dir",
    "check_database",
    "check_destination",
    "check_devices",
    "check_spool_space",
    "check_user",
    "diagnose",
    "load_settings_checked",
    "print_report",
    "status_checks",
]

# Below the reserve uploads are refused; below reserve + margin a busy day could get there.
COMFORT_MARGIN_BYTES = 1 * GiB
# Two clocks this far apart are wrong, not merely drifting.
CLOCK_TOLERANCE = timedelta(minutes=5)
# No photo-relay existed before this; a clock showing an earlier time is certainly wrong
# (a Raspberry Pi without a real-time clock boots in the past until NTP answers).
EARLIEST_PLAUSIBLE_TIME = datetime(2025, 1, 1, tzinfo=UTC)

Clock = Callable[[], datetime]


@runtime_checkable
class ServerClock(Protocol):
    """A target that can tell the destination server's time (e.g. from its `Date` header)."""

    async def server_time(self) -> datetime | None: ...


def _ok(name: str, message: str) -> HealthCheck:
    return HealthCheck(name=name, status="ok", message=message, fix=None)


def _warn(name: str, message: str, fix: str) -> HealthCheck:
    return HealthCheck(name=name, status="warn", message=message, fix=fix)


def _fail(name: str, message: str, fix: str) -> HealthCheck:
    return HealthCheck(name=name, status="fail", message=message, fix=fix)


def _whoami() -> str:
    uid, gid = os.getuid(), os.getgid()
    return f"uid {uid}, gid {gid}"


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _ago(moment: datetime, now: datetime) -> str:
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{max(0, int(seconds // 60))} minutes ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} hours ago"
    return f"{int(seconds // 86400)} days ago"


# -- configuration -------------------------------------------------------------------------


def load_settings_checked(**overrides: Any) -> tuple[Settings | None, HealthCheck]:
    """The settings, or None and a failed check naming each bad PHOTO_RELAY_ variable."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"PHOTO_RELAY_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        return None, _fail(
            "configuration",
            f"The configuration is not valid: {problems}.",
            "Correct the variables named above where you set them (the environment, the "
            "compose file, the systemd unit's EnvironmentFile, or .env); the README's "
            "configuration table says what each one takes.",
        )
    return settings, _ok("configuration", f"The settings are valid (target: {settings.target}).")


def check_user() -> HealthCheck:
    """Who runs the checks: root sees no permission problem, so its all-clear means less."""
    if os.geteuid() == 0:
        return _warn(
            "user",
            "These checks ran as root, who may read and write everything: a folder or file "
            "the service's own user may not use looks fine from here.",
            "Run doctor as the user that runs photo-relay: `docker compose exec photo-relay "
            "photo-relay doctor` in Docker, `sudo photo-relay-admin doctor` with the systemd "
            "unit (docs/RUN-AT-HOME.md).",
        )
    return _ok("user", f"The checks ran as {_whoami()}.")


def check_data_dir(settings: Settings) -> HealthCheck:
    """The data folder exists (or can be made) and this user may write to it."""
    folder = settings.data_dir.resolve()
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK):
            return _ok("data folder", f"{folder} does not exist yet; it is made on first start.")
        return _fail(
            "data folder",
            f"The data folder {folder} does not exist and cannot be made ({parent} is not "
            "writable for this user).",
            f"Create it and give it to the user running photo-relay ({_whoami()}): "
            f"`sudo mkdir -p {folder} && sudo chown {os.getuid()}:{os.getgid()} {folder}`, or "
            "set PHOTO_RELAY_DATA_DIR to a folder it owns.",
        )
    if not folder.is_dir():
        return _fail(
            "data folder",
            f"PHOTO_RELAY_DATA_DIR points at {folder}, which is a file, not a folder.",
            "Set PHOTO_RELAY_DATA_DIR to a folder.",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return _fail(
            "data folder",
            f"photo-relay may not write to its data folder {folder}.",
            f"Give it to the user running photo-relay ({_whoami()}): "
            f"`sudo chown -R {os.getuid()}:{os.getgid()} {folder}`. With Docker, this is the "
            "volume mounted at /data.",
        )
    return _ok("data folder", f"{folder} is writable.")


def check_admin_token(settings: Settings) -> HealthCheck:
    """The admin token file, when used, is readable and private to its owner (0600)."""
    if settings.admin_token is not None:
        return _ok("admin token", "The admin token is set by PHOTO_RELAY_ADMIN_TOKEN.")
    path = settings.admin_token_file
    try:
        info = path.stat()
    except FileNotFoundError:
        return _ok("admin token", f"{path} does not exist yet; it is made on first start.")
    except OSError as exc:
        return _fail(
            "admin token",
            f"The admin token file {path} cannot be read: {exc.strerror}.",
            f"Give the data folder to the user running photo-relay ({_whoami()}).",
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return _fail(
            "admin token",
            f"The admin token file {path} can be read by other users of this machine "
            f"(mode {mode:04o}); with it they could read every receipt and device.",
            f"Make it private: `chmod 600 {path}`.",
        )
    if not os.access(path, os.R_OK):
        return _fail(
            "admin token",
            f"The admin token file {path} is not readable by the user running photo-relay.",
            f"`sudo chown {os.getuid()}:{os.getgid()} {path}`.",
        )
    if not path.read_text(encoding="utf-8").strip():
        return _fail(
            "admin token",
            f"The admin token file {path} is empty.",
            f"Delete it (`rm {path}`) and start photo-relay: it makes a new one.",
        )
    return _ok("admin token", f"{path} is private to its owner ({mode:04o}).")


# -- spool space ---------------------------------------------------------------------------


def check_spool_space(settings: Settings) -> HealthCheck:
    """The disk holding the spool has room above the reserve, and a comfortable margin."""
    where = settings.spool_dir.resolve()
    existing = next((p for p in (where, *where.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    reserve = settings.min_free_bytes
    if free < reserve:
        return _fail(
            "spool space",
            f"The disk holding the spool ({existing}) has {_bytes(free)} free, less than the "
            f"reserve of {_bytes(reserve)}: every upload is refused with 507 until there is "
            "room.",
            "Free space on that disk (photos already relayed are removed from the spool by "
            "themselves), move PHOTO_RELAY_DATA_DIR to a bigger disk, or lower "
            "PHOTO_RELAY_MIN_FREE_BYTES.",
        )
    if free < reserve + COMFORT_MARGIN_BYTES:
        return _warn(
            "spool space",
            f"The disk holding the spool ({existing}) has only {_bytes(free)} free; uploads "
            f"stop at the reserve of {_bytes(reserve)}. A few videos could fill it.",
            "Free some space on that disk or move PHOTO_RELAY_DATA_DIR to a bigger one.",
        )
    return _ok("spool space", f"{_bytes(free)} free on the disk holding the spool.")


# -- database ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseFacts:
    """What the clock and device checks need from the database."""

    devices: list[DeviceInfo]
    newest_record_at: datetime | None


def check_database(path: Path, *, thorough: bool) -> tuple[HealthCheck, DatabaseFacts | None]:
    """The database opens, is sound (quick_check when `thorough`) and fully migrated."""
    if not path.exists():
        return _ok("database", f"{path} does not exist yet; it is made on first start."), None
    restore = (
        f"Stop photo-relay, move {path} aside (with its -wal and -shm files) and put back a "
        "backup. Without a backup, start photo-relay with an empty database: the phone then "
        "sends everything again, and photos already at the destination are recognised and "
        "not copied twice."
    )
    if not os.access(path, os.R_OK):
        return _fail(
            "database",
            f"The database {path} is not readable by the user running photo-relay ({_whoami()}).",
            f"Give the data folder to that user: `sudo chown -R {os.getuid()}:{os.getgid()} "
            f"{path.parent}`.",
        ), None
    try:
        conn = open_read_only(path)
    except sqlite3.Error as exc:
        return _fail("database", f"The database {path} cannot be opened: {exc}.", restore), None
    try:
        problems = quick_check(conn) if thorough else []
        version = schema_version(conn)
        facts = DatabaseFacts(
            devices=read_devices(conn),
            newest_record_at=_parse(read_newest_record_at(conn)),
        )
    except sqlite3.DatabaseError as exc:
        return _fail("database", f"The database {path} is damaged: {exc}.", restore), None
    finally:
        conn.close()
    if problems:
        return _fail(
            "database",
            f"The database {path} is damaged: {_first_lines(problems)}.",
            restore,
        ), facts
    expected = len(MIGRATIONS)
    if version > expected:
        return _fail(
            "database",
            f"The database was last used by a newer photo-relay (schema {version}, this one "
            f"knows {expected}).",
            "Install that newer photo-relay again; an older one must not change the database.",
        ), facts
    if version < expected:
        return _warn(
            "database",
            f"The database has schema {version} of {expected}; the service upgrades it at its "
            "next start.",
            "Restart photo-relay.",
        ), facts
    sound = "sound and " if thorough else ""
    return _ok("database", f"{path} is {sound}up to date (schema {version})."), facts


def _first_lines(problems: list[str], count: int = 3) -> str:
    lines = [line.strip("* ") for p in problems for line in p.splitlines() if line.strip("* ")]
    more = f" (and {len(lines) - count} more)" if len(lines) > count else ""
    return "; ".join(lines[:count]) + more


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _newest_file_time(settings: Settings) -> datetime | None:
    """The latest modification time among the database files (written by the service)."""
    times = []
    for suffix in ("", "-wal"):
        path = settings.database_path.with_name(settings.database_path.name + suffix)
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            continue
    return datetime.fromtimestamp(max(times), UTC) if times else None


# -- clock ---------------------------------------------------------------------------------


def check_clock(
    now: datetime, newest_record: datetime | None, server_time: datetime | None
) -> HealthCheck:
    """This machine's clock is plausible, not behind what we recorded, close to the server's."""
    fix = (
        "Turn on network time: `sudo timedatectl set-ntp true` on a Raspberry Pi or Linux "
        "machine, or the NTP setting of your NAS; then restart photo-relay."
    )
    if now < EARLIEST_PLAUSIBLE_TIME:
        return _fail(
            "clock",
            f"This machine's clock says {now:%Y-%m-%d %H:%M} UTC, before photo-relay existed. "
            "Receipts, retries and photos without a capture date would get wrong times.",
            fix,
        )
    if newest_record is not None and newest_record - now > CLOCK_TOLERANCE:
        return _fail(
            "clock",
            f"This machine's clock says {now:%Y-%m-%d %H:%M} UTC, but photo-relay already "
            f"wrote something at {newest_record:%Y-%m-%d %H:%M} UTC: the clock went back.",
            fix,
        )
    if server_time is not None and abs(server_time - now) > CLOCK_TOLERANCE:
        minutes = int(abs(server_time - now).total_seconds() // 60)
        return _warn(
            "clock",
            f"This machine's clock and the destination server's differ by {minutes} minutes.",
            fix + " Do the same on the destination server.",
        )
    compared = " and the destination server's" if server_time is not None else ""
    return _ok("clock", f"The clock ({now:%Y-%m-%d %H:%M} UTC) agrees with our records{compared}.")


# -- devices -------------------------------------------------------------------------------


def check_devices(devices: list[DeviceInfo], now: datetime, stale_days: float) -> list[HealthCheck]:
    """Each active device has been in touch recently; at least one device exists."""
    active = [d for d in devices if not d.revoked]
    if not active:
        return [
            _warn(
                "devices",
                "No device may upload yet.",
                "Add one: `photo-relay device add my-iphone`, and put the token it prints in "
                "the Shortcut.",
            )
        ]
    results = []
    for device in active:
        name = f"device {device.name}"
        if device.last_seen_at is None:
            added = datetime.fromisoformat(device.created_at)
            results.append(
                _warn(
                    name,
                    f"{device.name!r} was added {_ago(added, now)} and has never been in touch.",
                    "Import the Shortcut on that phone, paste the device's token into it and "
                    "run it once while on the same network as photo-relay.",
                )
            )
            continue
        seen = datetime.fromisoformat(device.last_seen_at)
        if now - seen > timedelta(days=stale_days):
            results.append(
                _warn(
                    name,
                    f"{device.name!r} was last in touch {_ago(seen, now)} "
                    f"({seen:%Y-%m-%d %H:%M} UTC): its new photos may not be arriving.",
                    "On the phone: check the Shortcut automation is on and runs without "
                    "asking, that the phone joins the network photo-relay is on, and run the "
                    "Shortcut once by hand to see any error.",
                )
            )
            continue
        results.append(_ok(name, f"{device.name!r} was last in touch {_ago(seen, now)}."))
    return results


# -- destination ---------------------------------------------------------------------------

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


def _local_folder_fix(target: Target) -> str:
    folder = getattr(target, "root", "<folder>")
    return (
        f"Let the user running photo-relay ({_whoami()}) write to the folder: "
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
        return _fail("destination", f"Photos cannot be copied to {where}: {exc.message}", fix), None
    except OSError as exc:
        return _fail(
            "destination",
            f"photo-relay could not write a test file to {where}: {exc.strerror or exc}.",
            _local_folder_fix(target),
        ), None
    return _ok(
        "destination", f"A test file was written to {where}, checked ({proof.method}) and removed."
    ), server_time


def destination_from_relay(services: Services) -> HealthCheck:
    """The destination as the running relay sees it (no request is sent)."""
    where = services.target.describe()
    relay = services.relay.status
    problem = services.target_problem or relay.reason
    if services.target_problem or (relay.state == "paused" and relay.paused_until is None):
        return _fail(
            "destination",
            f"The relay to {where} is stopped: {problem}",
            "Fix what the message names (`photo-relay doctor` tests the destination and says "
            "how), then restart photo-relay.",
        )
    if relay.state == "paused":
        return _warn(
            "destination",
            f"The relay to {where} is waiting until {relay.paused_until:%H:%M} UTC: {problem}",
            "Nothing to do if this passes; if it keeps coming back, run `photo-relay doctor`.",
        )
    if relay.state == "stopped":
        return _fail(
            "destination",
            f"The relay to {where} has stopped.",
            "Restart photo-relay; if it stops again, its log says why.",
        )
    return _ok("destination", f"The relay to {where} is {relay.state}.")


# -- all together --------------------------------------------------------------------------


async def diagnose(
    data_dir: Path | None = None,
    *,
    clock: Clock = clock_now,
    target_opener: Callable[[Settings], Target] = open_target,
) -> list[HealthCheck]:
    """Every check, actively (quick_check, write probe): what `photo-relay doctor` prints."""
    settings, configuration = load_settings_checked(data_dir=data_dir)
    if settings is None:
        return [configuration]
    results = [configuration, check_user(), check_data_dir(settings), check_admin_token(settings)]
    results.append(await asyncio.to_thread(check_spool_space, settings))
    database, facts = await asyncio.to_thread(check_database, settings.database_path, thorough=True)
    results.append(database)
    server_time = None
    try:
        target = target_opener(settings)
    except ConfigurationError as exc:
        results.append(_fail("destination", exc.message, "Change the setting the message names."))
    else:
        try:
            destination, server_time = await check_destination(target)
        finally:
            await target.close()
        results.append(destination)
    newest = max(
        (t for t in (facts.newest_record_at if facts else None, _newest_file_time(settings)) if t),
        default=None,
    )
    results.append(check_clock(clock(), newest, server_time))
    if facts is not None:
        results.extend(check_devices(facts.devices, clock(), settings.device_stale_days))
    return results


async def status_checks(services: Services, *, clock: Clock = clock_now) -> list[HealthCheck]:
    """The checks that need no probe and no scan, for GET /v1/status."""
    settings = services.settings

    def gather() -> tuple[list[HealthCheck], DatabaseFacts | None]:
        found = [
            check_data_dir(settings),
            check_admin_token(settings),
            check_spool_space(settings),
        ]
        database, facts = check_database(settings.database_path, thorough=False)
        return [*found, database], facts

    results, facts = await asyncio.to_thread(gather)
    results.append(destination_from_relay(services))
    results.append(check_clock(clock(), facts.newest_record_at if facts else None, None))
    if facts is not None:
        results.extend(check_devices(facts.devices, clock(), settings.device_stale_days))
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
