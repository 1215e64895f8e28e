"""Destinations the relay copies to: the interface, local folder, WebDAV, NextCloud.

`open_target` picks one from the settings. Only this package talks HTTP to a destination; it
must not import anything above the leaves but the store's chunk progress and fsync helper.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pydantic import SecretStr

from app.config import Settings
from app.store.chunk_progress import ChunkProgress
from app.targets.base import RemoteFile, Target, Verification
from app.targets.local import LocalTarget

__all__ = ["RemoteFile", "Target", "Verification", "open_added_target", "open_target"]


def open_target(settings: Settings, chunks: ChunkProgress | None = None) -> Target:
    """The destination the settings name (not yet checked: call `check()`).

    With `chunks` (kept in the database), chunked uploads survive a restart.
    """
    # The network targets are imported only when chosen: httpx costs ~90 ms of start-up.
    if settings.target == "webdav":
        from app.targets.webdav import WebDavTarget

        return WebDavTarget(settings.destination, chunks or ChunkProgress(None))
    if settings.target == "nextcloud":
        from app.targets.nextcloud.target import NextcloudTarget

        return NextcloudTarget(settings.destination, chunks or ChunkProgress(None))
    return LocalTarget(settings.local_library_dir)


def open_added_target(
    settings: Settings,
    kind: str,
    location: str,
    user: str | None,
    password: str | None,
    chunks: ChunkProgress | None = None,
    *,
    folder: str | None = None,
    credentials_file: Path | None = None,
) -> Target:
    """A destination added with `photo-relay destination add` (a folder here, or WebDAV at
    `location`) or `nextcloud login --person` (NextCloud at `location`, the app password
    in `credentials_file`); it copies and checks as the configured one does."""
    if kind == "nextcloud":
        from app.targets.nextcloud.target import NextcloudTarget

        assert credentials_file is not None, "a person's NextCloud keeps its own login"
        where = dataclasses.replace(
            settings.destination,
            url=location,
            user=None,
            password=None,
            folder=folder,
            credentials_file=credentials_file,
        )
        return NextcloudTarget(where, chunks or ChunkProgress(None))
    if kind == "webdav":
        from app.targets.webdav import WebDavTarget

        where = dataclasses.replace(
            settings.destination,
            url=location,
            user=user,
            password=SecretStr(password) if password is not None else None,
            folder=None,
        )
        return WebDavTarget(where, chunks or ChunkProgress(None))
    return LocalTarget(Path(location))
