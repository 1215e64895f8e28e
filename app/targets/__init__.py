"""Destinations the relay copies to. `open_target` picks one from the settings."""

from __future__ import annotations

from app.config import Settings
from app.targets.base import RemoteFile, Target, Verification
from app.targets.local import LocalTarget

__all__ = ["RemoteFile", "Target", "Verification", "open_target"]


def open_target(settings: Settings) -> Target:
    """The destination the settings name (not yet checked: call `check()`)."""
    return LocalTarget(settings.local_library_dir)
