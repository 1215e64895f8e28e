"""NextCloud credentials kept on disk: server, login name, app password, user id (mode 0600).

Written by `photo-relay nextcloud login` (Login Flow v2 or a pasted app password) and read
by the NextCloud target when PHOTO_RELAY_TARGET_PASSWORD is not set. The app password is a
SecretStr, so it never appears in a repr, a log line or an API reply.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, SecretStr

__all__ = ["CREDENTIALS_FILE_NAME", "NextcloudCredentials", "load_credentials", "save_credentials"]

CREDENTIALS_FILE_NAME = "nextcloud-credentials.json"


class NextcloudCredentials(BaseModel):
    server: str
    login_name: str
    app_password: SecretStr
    user_id: str


def load_credentials(path: Path) -> NextcloudCredentials | None:
    """The stored credentials, or None when there are none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return NextcloudCredentials.model_validate_json(text)


def save_credentials(path: Path, credentials: NextcloudCredentials) -> None:
    """Write atomically with mode 0600: a temp file, fsync, then rename over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = credentials.model_dump()
    data["app_password"] = credentials.app_password.get_secret_value()
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, path)
