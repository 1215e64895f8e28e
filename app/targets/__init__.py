"""Destinations the relay copies to. `open_target` picks one from the settings."""

from __future__ import annotations

from app.config import Settings
from app.db import Database
from app.targets.base import RemoteFile, Target, Verification
from app.targets.chunk_progress import ChunkProgress
from app.targets.local import LocalTarget
from app.targets.nextcloud import NextcloudTarget
from app.targets.webdav import WebDavTarget

__all__ = ["RemoteFile", "Target", "Verification", "open_target"]


def open_target(settings: Settings, db: Database | None = None) -> Target:
    """The destination the settings name (not yet checked: call `check()`).

    With `db`, chunked uploads keep their progress there and survive a restart.
    """
    if settings.target == "webdav":
        return WebDavTarget(settings, ChunkProgress(db))
    if settings.target == "nextcloud":
        return NextcloudTarget(settings, ChunkProgress(db))
    return LocalTarget(settings.local_library_dir)
