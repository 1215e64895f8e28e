"""Settings: every knob of the service in one object, read once from the environment.

Values come from `PHOTO_RELAY_*` environment variables, then an optional `.env` file, then
the defaults below. The object is created at start-up and passed down; nothing reads the
environment anywhere else. Each field's description is what the README's table says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigurationError
from app.naming import remote_path

__all__ = ["DestinationSettings", "IntakeSettings", "PageSettings", "RelaySettings", "Settings"]

GiB = 1024**3
MiB = 1024**2


@dataclass(frozen=True)
class RelaySettings:
    """What the relay worker needs: how many copies at once, how it retries, retention."""

    parallel: int
    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    probe_seconds: float
    spool_retention_days: float
    timezone: str | None


@dataclass(frozen=True)
class IntakeSettings:
    """What taking files in needs: the size limit and how a file's path is planned."""

    max_upload_bytes: int
    path_template: str
    timezone: str | None


@dataclass(frozen=True)
class DestinationSettings:
    """What a WebDAV or NextCloud target needs: where, as whom, how it copies and checks."""

    url: str | None
    user: str | None
    password: SecretStr | None
    folder: str | None
    timeout_seconds: float
    verify_read_back: bool
    chunk_threshold_bytes: int
    chunk_bytes: int
    parallel: int
    credentials_file: Path


@dataclass(frozen=True)
class PageSettings:
    """What the status page and its live feed need."""

    session_hours: float
    thumbnails_dir: Path
    events_queue_size: int
    events_poll_seconds: float


class Settings(BaseSettings):
    """The service's configuration; see the README's configuration table."""

    # Frozen: read once at start-up and passed down, so no part can change another's view.
    model_config = SettingsConfigDict(
        env_prefix="PHOTO_RELAY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
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
    target: Literal["local", "webdav", "nextcloud"] = Field(
        "local",
        description="Where photos go: `local` (a folder on this machine), `webdav` (any "
        "WebDAV server) or `nextcloud` (a NextCloud server, using its extensions).",
    )
    target_folder: str | None = Field(
        None,
        description="Destination folder. Local target: a path on this machine "
        "(default `<data_dir>/library`). WebDAV/NextCloud: the base folder on the server, "
        "e.g. `/Photos/iPhone` (default: the top folder).",
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
        12,
        ge=1,
        description="Copies that fail verification (or hit a local error) before an item is "
        "marked failed (then `retry` it). An unreachable or busy destination never counts: "
        "that only delays.",
    )
    relay_retry_base_seconds: float = Field(
        5.0, gt=0, description="First retry delay; it doubles per attempt, with jitter."
    )
    relay_retry_max_seconds: float = Field(
        3600.0, gt=0, description="Longest delay between two attempts."
    )
    relay_probe_seconds: float = Field(
        30.0,
        gt=0,
        description="While the destination does not answer, how often one small request "
        "asks whether it is back; the waiting files go as soon as it answers.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="How much the service logs."
    )

    # -- status page, live events and metrics --
    device_quiet_days: int = Field(
        7,
        ge=1,
        description="The status page and `photo-relay doctor` warn when an active device has "
        "not been in touch for this many days.",
    )
    session_hours: float = Field(
        168.0, gt=0, description="How long a login to the status page lasts, in hours."
    )
    metrics_public: bool = Field(
        False,
        description="Serve `/metrics` without a token (for a Prometheus on your LAN). Off: "
        "scrape it with `Authorization: Bearer <admin token>`.",
    )
    events_poll_seconds: float = Field(
        2.0,
        gt=0,
        description="How often the service looks for journal entries written by another "
        "process (`photo-relay import`, `retry`), so the page and the relay see them.",
    )
    events_queue_size: int = Field(
        256,
        ge=8,
        description="Events buffered for each live page or WebSocket client; a client that "
        "falls further behind skips ahead and is sent a fresh snapshot.",
    )

    # -- the bundled Apple Shortcuts (app/phone/shortcut.py, app/phone/backup.py) -------------
    shortcut_batch_size: int = Field(
        20,
        ge=1,
        le=500,
        description="Photos the backup shortcut looks at per batch (one request checks them, "
        "then one upload per new photo); a day with more photos gets a bigger batch.",
    )
    shortcut_max_batches: int = Field(
        10,
        ge=1,
        le=1000,
        description="Batches per backup run; the next run carries on where this one stopped.",
    )
    shortcut_overlap_days: float = Field(
        14.0,
        ge=0,
        description="The backup's walk of changed photos (by Last Modified Date: photos saved "
        "later with an older date, edits) starts this many days before the last walk began.",
    )
    shortcut_sweep_days: float = Field(
        7.0,
        ge=0,
        description="Every this many days the backup runs also walk the whole library again "
        "(checking names, dates and sizes, not sending bytes) to catch photos with any older "
        "date. 0: on every run.",
    )

    shortcut_safe_album: str = Field(
        "Safe at home",
        min_length=1,
        max_length=100,
        description="The album on the phone that the backup shortcut adds a photo to once its "
        "copy at the destination is verified; the Free up space shortcut offers only photos "
        "from it. Create the album once in Photos; the served shortcuts use this name.",
    )
    shortcut_free_up_days: int = Field(
        30,
        ge=0,
        le=36500,
        description="The Free up space shortcut offers only photos taken more than this many "
        "days ago (recent photos stay on the phone).",
    )
    shortcut_free_up_favourites: bool = Field(
        False,
        description="Whether the Free up space shortcut may offer favourites too (off: "
        "favourites stay on the phone).",
    )

    # -- remote targets (WebDAV / NextCloud relay) ----------------------------------------
    target_url: str | None = Field(
        None,
        description="NextCloud: the server's base URL (e.g. `https://cloud.example.org`). "
        "WebDAV: the URL of the WebDAV folder. Unset for NextCloud: the server in the "
        "credentials file written by `photo-relay nextcloud login`.",
    )
    target_user: str | None = Field(
        None,
        description="Login name (NextCloud: the user id used in WebDAV paths). Unset for "
        "NextCloud: taken from the credentials file.",
    )
    target_password: SecretStr | None = Field(
        None,
        description="Password; for NextCloud an app password (Settings › Security). Unset "
        "for NextCloud: taken from the credentials file.",
    )
    target_chunk_threshold_bytes: int = Field(
        50 * MiB,
        ge=1,
        description="NextCloud: files larger than this are sent in chunks (resumable).",
    )
    target_chunk_bytes: int = Field(
        10 * MiB,
        ge=1,
        description="NextCloud: size of each chunk of a chunked upload (the server wants "
        "at least 5 MB except for the last).",
    )
    target_verify_read_back: bool = Field(
        True,
        description="When the server offers no content hash, read each copy back and hash "
        "it before calling it verified. Turn off for slow links (then only the size is "
        "checked).",
    )
    target_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="How long to wait for the server to answer one request (the final "
        "step of a chunked upload gets several times more).",
    )
    spool_retention_days: float = Field(
        30.0,
        ge=0,
        description="Days the home copy of a file is kept after its remote copy is "
        "verified; 0 removes it at once. Never removed before verification.",
    )

    # -- upload body timeout (reliability) -----------------------------------------
    upload_idle_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="An upload whose body sends nothing for this long is refused with 408 "
        "and its partial file deleted (a stalled or malicious client cannot hold a "
        "connection and a temp file for ever).",
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

    # -- the settings of each owner, as the composition root hands them down ----------------
    @property
    def relay(self) -> RelaySettings:
        return RelaySettings(
            parallel=self.relay_parallel,
            max_attempts=self.relay_max_attempts,
            retry_base_seconds=self.relay_retry_base_seconds,
            retry_max_seconds=self.relay_retry_max_seconds,
            probe_seconds=self.relay_probe_seconds,
            spool_retention_days=self.spool_retention_days,
            timezone=self.timezone,
        )

    @property
    def intake(self) -> IntakeSettings:
        return IntakeSettings(
            max_upload_bytes=self.max_upload_bytes,
            path_template=self.path_template,
            timezone=self.timezone,
        )

    @property
    def destination(self) -> DestinationSettings:
        return DestinationSettings(
            url=self.target_url,
            user=self.target_user,
            password=self.target_password,
            folder=self.target_folder,
            timeout_seconds=self.target_timeout_seconds,
            verify_read_back=self.target_verify_read_back,
            chunk_threshold_bytes=self.target_chunk_threshold_bytes,
            chunk_bytes=self.target_chunk_bytes,
            parallel=self.relay_parallel,
            credentials_file=self.credentials_file,
        )

    @property
    def page(self) -> PageSettings:
        return PageSettings(
            session_hours=self.session_hours,
            thumbnails_dir=self.data_dir / "thumbnails",
            events_queue_size=self.events_queue_size,
            events_poll_seconds=self.events_poll_seconds,
        )

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
