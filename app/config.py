"""Settings: every knob of the service in one object, read once from the environment.

Values come from `PHOTO_RELAY_*` environment variables, then an optional `.env` file, then
the defaults below. The object is created at start-up and passed down; nothing reads the
environment anywhere else. Each field's description is what the README's table says.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigurationError
from app.naming import remote_path

__all__ = ["Settings"]

GiB = 1024**3
MiB = 1024**2


class Settings(BaseSettings):
    """The service's configuration; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="PHOTO_RELAY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        Path("photo-relay-data"),
        description="Folder for everything the service keeps: spool, database, admin token, "
        "and (with the local target) the library.",
    )
    host: str = Field(
        "127.0.0.1",
        description="Address to listen on. Use 0.0.0.0 to accept the phone on your LAN.",
    )
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    admin_token: SecretStr | None = Field(
        None,
        description="Token for admin endpoints. Unset: one is generated on first start into "
        "`<data_dir>/admin-token` (mode 0600); `photo-relay admin-token` prints it.",
    )
    target: Literal["local"] = Field(
        "local", description="Where photos go: `local` (a folder on this machine)."
    )
    target_folder: str | None = Field(
        None,
        description="Destination folder. Local target: a path on this machine "
        "(default `<data_dir>/library`).",
    )
    path_template: str = Field(
        "{year}/{month}/{name}",
        description="Path of each file below the destination folder, in local capture time. "
        "Fields: {year} {month} {day} {hour} {minute} {name} {stem} {ext} {kind} {device} "
        "{sha8}.",
    )
    timezone: str | None = Field(
        None,
        description="IANA time zone (e.g. Europe/Berlin) for capture times that carry only "
        "UTC (videos). Unset: this machine's local zone.",
    )
    max_upload_bytes: int = Field(
        50 * GiB, gt=0, description="Largest file accepted, in bytes (413 above it)."
    )
    min_free_bytes: int = Field(
        100 * MiB,
        ge=0,
        description="Free space the spool keeps in reserve; an upload that would go below it "
        "gets 507.",
    )
    relay_parallel: int = Field(
        2, ge=1, le=16, description="How many files the relay copies at the same time."
    )
    relay_max_attempts: int = Field(
        12, ge=1, description="Attempts before an item is marked failed (then `retry` it)."
    )
    relay_retry_base_seconds: float = Field(
        5.0, gt=0, description="First retry delay; it doubles per attempt, with jitter."
    )
    relay_retry_max_seconds: float = Field(
        3600.0, gt=0, description="Longest delay between two attempts."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="How much the service logs."
    )

    @field_validator("path_template")
    @classmethod
    def _template_names_a_file(cls, value: str) -> str:
        if "{name}" not in value and "{stem}" not in value and "{sha8}" not in value:
            raise ValueError("path_template must contain {name}, {stem} or {sha8}")
        # Fill it in once now, so a typo stops the start instead of failing every upload.
        try:
            remote_path(
                value,
                captured_local=datetime(2000, 1, 1),
                name="IMG_0001.HEIC",
                sha256="0" * 64,
                kind="photo",
                device="phone",
            )
        except ConfigurationError as exc:
            raise ValueError(exc.message) from None
        except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
            raise ValueError(
                f"path_template cannot be filled in ({exc}); write fields like {{year}}"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
                ) from None
        return value

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "photo-relay.db"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "nextcloud-credentials.json"

    @property
    def local_library_dir(self) -> Path:
        return Path(self.target_folder) if self.target_folder else self.data_dir / "library"
