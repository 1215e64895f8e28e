"""Checks of this machine: the settings, who runs photo-relay, its folders, its free disk space."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.config import GiB, Settings
from app.observe.doctor.findings import fail, human_bytes, ok, service_user, warn
from app.receipts import HealthCheck

__all__ = [
    "COMFORT_MARGIN_BYTES",
    "ROOM_CHECK",
    "check_admin_token",
    "check_data_dir",
    "check_spool_space",
    "check_user",
    "load_settings_checked",
]

# Below the reserve uploads are refused; below reserve + margin a busy day could get there.
COMFORT_MARGIN_BYTES = 1 * GiB


def load_settings_checked(**overrides: Any) -> tuple[Settings | None, HealthCheck]:
    """The settings, or None and a failed check naming each bad PHOTO_RELAY_ variable."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"PHOTO_RELAY_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        return None, fail(
            "configuration",
            f"The configuration is not valid: {problems}.",
            "Correct the variables named above where you set them (the environment, "
            "compose.yaml or photo-relay.env, or the .env file in photo-relay's working "
            "folder); the README's configuration table says what each one takes.",
        )
    return settings, ok("configuration", f"The settings are valid (target: {settings.target}).")


def check_user() -> HealthCheck:
    """Who runs the checks: root sees no permission problem, so its all-clear means less."""
    if os.geteuid() == 0:
        return warn(
            "user",
            "These checks ran as root, who may read and write everything: a folder or file "
            "the service's own user may not use looks fine from here.",
            "Run doctor as the user that runs photo-relay: `docker compose exec photo-relay "
            "photo-relay doctor` in Docker, `sudo photo-relay-admin doctor` with the systemd "
            "unit (docs/RUN-AT-HOME.md).",
        )
    return ok("user", f"The checks ran as {service_user()}.")


def check_data_dir(settings: Settings) -> HealthCheck:
    """The data folder exists (or can be made) and this user may write to it."""
    folder = settings.data_dir.resolve()
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK):
            return ok("data folder", f"{folder} does not exist yet; it is made on first start.")
        return fail(
            "data folder",
            f"The data folder {folder} does not exist and cannot be made ({parent} is not "
            "writable for this user).",
            f"Create it and give it to the user running photo-relay ({service_user()}): "
            f"`sudo mkdir -p {folder} && sudo chown {os.getuid()}:{os.getgid()} {folder}`, or "
            "set PHOTO_RELAY_DATA_DIR to a folder it owns.",
        )
    if not folder.is_dir():
        return fail(
            "data folder",
            f"PHOTO_RELAY_DATA_DIR points at {folder}, which is a file, not a folder.",
            "Set PHOTO_RELAY_DATA_DIR to a folder.",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return fail(
            "data folder",
            f"photo-relay may not write to its data folder {folder}.",
            f"Give it to the user running photo-relay ({service_user()}): "
            f"`sudo chown -R {os.getuid()}:{os.getgid()} {folder}`. With Docker, this is the "
            "volume mounted at /data.",
        )
    return ok("data folder", f"{folder} is writable.")


def check_admin_token(settings: Settings) -> HealthCheck:
    """The admin token file, when used, is readable and private to its owner (0600)."""
    if settings.admin_token is not None:
        return ok("admin token", "The admin token is set by PHOTO_RELAY_ADMIN_TOKEN.")
    path = settings.admin_token_file
    try:
        info = path.stat()
    except FileNotFoundError:
        return ok("admin token", f"{path} does not exist yet; it is made on first start.")
    except OSError as exc:
        return fail(
            "admin token",
            f"The admin token file {path} cannot be read: {exc.strerror}.",
            f"Give the data folder to the user running photo-relay ({service_user()}).",
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return fail(
            "admin token",
            f"The admin token file {path} can be read by other users of this machine "
            f"(mode {mode:04o}); with it they could read every receipt and device.",
            f"Make it private: `chmod 600 {path}`.",
        )
    if not os.access(path, os.R_OK):
        return fail(
            "admin token",
            f"The admin token file {path} is not readable by the user running photo-relay.",
            f"`sudo chown {os.getuid()}:{os.getgid()} {path}`.",
        )
    if not path.read_text(encoding="utf-8").strip():
        return fail(
            "admin token",
            f"The admin token file {path} is empty.",
            f"Delete it (`rm {path}`) and start photo-relay: it makes a new one.",
        )
    return ok("admin token", f"{path} is private to its owner ({mode:04o}).")


# The check's name, as `photo-relay doctor` and the status page print it.
ROOM_CHECK = "room for photos kept on this machine"


def check_spool_space(settings: Settings) -> HealthCheck:
    """The disk holding the spool has room above the reserve, and a comfortable margin."""
    where = settings.spool_dir.resolve()
    existing = next((p for p in (where, *where.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    reserve = settings.min_free_bytes
    if free < reserve:
        return fail(
            ROOM_CHECK,
            f"The disk that keeps the photos on this machine ({existing}) has {human_bytes(free)} "
            f"free, less than the reserve of {human_bytes(reserve)}: every upload is refused "
            "with 507 until there is room.",
            "Free space on that disk (photos already copied to the destination are removed "
            "from this machine by themselves), move PHOTO_RELAY_DATA_DIR to a bigger disk, or "
            "lower PHOTO_RELAY_MIN_FREE_BYTES.",
        )
    if free < reserve + COMFORT_MARGIN_BYTES:
        return warn(
            ROOM_CHECK,
            f"The disk that keeps the photos on this machine ({existing}) has only "
            f"{human_bytes(free)} free; uploads stop at the reserve of {human_bytes(reserve)}. "
            "A few videos could fill it.",
            "Free some space on that disk or move PHOTO_RELAY_DATA_DIR to a bigger one.",
        )
    return ok(ROOM_CHECK, f"{human_bytes(free)} free on the disk that keeps the photos here.")
