"""Destinations the relay copies to. `open_target` picks one from the settings."""

from __future__ import annotations

from app.config import Settings
from app.db import Database
from app.targets.base import RemoteFile, Target, Verification
from app.targets.chunk_progress import ChunkProgress
from app.targets.local import LocalTarget

__all__ = ["RemoteFile", "Target", "Verification", "open_target"]


def open_target(settings: Settings, db: Database | None = None) -> Target:
    """The destination the settings name (not yet checked: call `check()`).

    With `db`, chunked uploads keep their progress there and survive a restart.
    """
    # The network targets are imported only when chosen: httpx costs ~90 ms of start-up.
    if settings.target == "webdav":
        from app.targets.webdav import WebDavTarget

        return WebDavTarget(settings, ChunkProgress(db))
    if settings.target == "nextcloud":
        from app.targets.nextcloud import NextcloudTarget

        return NextcloudTarget(settings, ChunkProgress(db))
    return LocalTarget(settings.local_library_dir)
