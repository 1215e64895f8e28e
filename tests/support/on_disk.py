"""What photo-relay left on disk, read directly: spool objects and temp files, library, rows.

Tests use these to check that a refused or interrupted upload left nothing behind, that
the relay put exactly one copy where it belongs, and what was fsynced.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from app.config import Settings
from app.targets.local import TEMP_PREFIX


def spool_temp_files(settings: Settings) -> list[Path]:
    """Partial uploads in the spool's temp area."""
    tmp = settings.spool_dir / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def spool_objects(settings: Settings) -> list[Path]:
    """Complete files in the spool, under their content address."""
    objects = settings.spool_dir / "objects"
    return sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []


def library_files(library: Path) -> list[Path]:
    """Every file in the library folder, hidden temp files included."""
    return sorted(p for p in library.rglob("*") if p.is_file()) if library.exists() else []


def library_temp_files(library: Path) -> list[Path]:
    """The local target's temp copies (`.photo-relay-*.tmp`) anywhere in the library."""
    return [p for p in library_files(library) if p.name.startswith(TEMP_PREFIX)]


def item_rows(settings: Settings) -> list[str]:
    """The sha256 of every item row in the database."""
    if not settings.database_path.exists():
        return []
    conn = sqlite3.connect(f"file:{settings.database_path}?mode=ro", uri=True, timeout=10)
    try:
        return [row[0] for row in conn.execute("SELECT sha256 FROM items ORDER BY sha256")]
    finally:
        conn.close()


def nothing_kept(settings: Settings) -> bool:
    """True when the spool holds no object and no temp file, and there is no item row."""
    return not (spool_temp_files(settings) or spool_objects(settings) or item_rows(settings))


def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path this process fsyncs from now on, in order (the real fsync still runs).

    It needs /proc to name a descriptor's file (Linux); elsewhere the test is skipped.
    """
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name an fd")
    seen: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        seen.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return seen
