"""What the running service uses, for the commands run beside it in another shell.

`serve` writes its effective settings (secrets hidden, as `photo-relay config` shows them)
and its process id to `<data_dir>/service-settings.json`. `status`, `doctor` and `config`
compare them with their own: a setting given only to the service (its environment, its
command line) would otherwise make them describe a different setup than the one running.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from app.config import SettingOrigin, Settings

__all__ = ["differences", "forget_service_settings", "record_service_settings"]

FILE_NAME = "service-settings.json"
# Where the service listens and what it logs says nothing about the setup being described.
NOT_COMPARED = {
    "PHOTO_RELAY_DATA_DIR",
    "PHOTO_RELAY_HOST",
    "PHOTO_RELAY_PORT",
    "PHOTO_RELAY_LOG_LEVEL",
}


def record_service_settings(settings: Settings) -> None:
    path = settings.data_dir / FILE_NAME
    data = {"pid": os.getpid(), "settings": [dataclasses.asdict(o) for o in settings.origins()]}
    temp = path.with_name(f".{FILE_NAME}.tmp")
    temp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(temp, path)


def forget_service_settings(settings: Settings) -> None:
    path = settings.data_dir / FILE_NAME
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def differences(settings: Settings) -> list[str]:
    """One sentence per setting the running service has and this command has not."""
    service = _running_service(settings.data_dir / FILE_NAME)
    if service is None:
        return []
    pid, theirs = service
    mine = {o.variable: o for o in settings.origins()}
    found = []
    for origin in theirs:
        here = mine.get(origin.variable)
        if origin.variable in NOT_COMPARED or here is None or here.value == origin.value:
            continue
        found.append(
            f"The running service (process {pid}) uses {origin.variable}={origin.value} "
            f"(from its {origin.source}); this command has {here.value} ({here.source})."
        )
    if found:
        found.append(
            "So what follows may not describe the running service. Give this command the "
            "same settings, or keep them in the settings file, which both read "
            f"({settings.settings_file})."
        )
    return found


def _running_service(path: Path) -> tuple[int, list[SettingOrigin]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pid = int(data["pid"])
        origins = [SettingOrigin(**entry) for entry in data["settings"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)  # no signal: only whether that process still exists
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, as another user (the service user under systemd)
    return pid, origins
