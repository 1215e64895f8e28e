"""Checks of the database: it opens read-only, SQLite finds it sound, its schema is current.

Also reads what the clock and device checks need (devices, the newest record), so the file
is opened once.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.config import Settings
from app.observe.doctor.findings import fail, ok, service_user, warn
from app.receipts import DeviceInfo, HealthCheck
from app.store.db import MIGRATIONS, open_read_only, quick_check, schema_version
from app.store.state import read_devices, read_newest_record_at

__all__ = ["DatabaseFacts", "check_database", "newest_file_time"]


@dataclass(frozen=True)
class DatabaseFacts:
    """What the clock and device checks need from the database."""

    devices: list[DeviceInfo]
    newest_record_at: datetime | None


def check_database(path: Path, *, thorough: bool) -> tuple[HealthCheck, DatabaseFacts | None]:
    """The database opens, is sound (quick_check when `thorough`) and fully migrated."""
    if not path.exists():
        return ok("database", f"{path} does not exist yet; it is made on first start."), None
    restore = (
        f"Stop photo-relay, move {path} aside (with its -wal and -shm files) and put back a "
        "backup. Without a backup, start photo-relay with an empty database: the phone then "
        "sends everything again, and photos already at the destination are recognised and "
        "not copied twice."
    )
    if not os.access(path, os.R_OK):
        return fail(
            "database",
            f"The database {path} is not readable by the user running photo-relay "
            f"({service_user()}).",
            f"Give the data folder to that user: `sudo chown -R {os.getuid()}:{os.getgid()} "
            f"{path.parent}`.",
        ), None
    try:
        conn = open_read_only(path)
    except sqlite3.Error as exc:
        return fail("database", f"The database {path} cannot be opened: {exc}.", restore), None
    try:
        problems = quick_check(conn) if thorough else []
        version = schema_version(conn)
        facts = DatabaseFacts(
            devices=read_devices(conn),
            newest_record_at=_parse(read_newest_record_at(conn)),
        )
    except sqlite3.DatabaseError as exc:
        return fail("database", f"The database {path} is damaged: {exc}.", restore), None
    finally:
        conn.close()
    if problems:
        return fail(
            "database",
            f"The database {path} is damaged: {_first_lines(problems)}.",
            restore,
        ), facts
    expected = len(MIGRATIONS)
    if version > expected:
        return fail(
            "database",
            f"The database was last used by a newer photo-relay (schema {version}, this one "
            f"knows {expected}).",
            "Install that newer photo-relay again; an older one must not change the database.",
        ), facts
    if version < expected:
        return warn(
            "database",
            f"The database has schema {version} of {expected}; the service upgrades it at its "
            "next start.",
            "Restart photo-relay.",
        ), facts
    sound = "sound and " if thorough else ""
    return ok("database", f"{path} is {sound}up to date (schema {version})."), facts


def _first_lines(problems: list[str], count: int = 3) -> str:
    lines = [line.strip("* ") for p in problems for line in p.splitlines() if line.strip("* ")]
    more = f" (and {len(lines) - count} more)" if len(lines) > count else ""
    return "; ".join(lines[:count]) + more


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def newest_file_time(settings: Settings) -> datetime | None:
    """The latest modification time among the database files (written by the service)."""
    times = []
    for suffix in ("", "-wal"):
        path = settings.database_path.with_name(settings.database_path.name + suffix)
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            continue
    return datetime.fromtimestamp(max(times), UTC) if times else None
