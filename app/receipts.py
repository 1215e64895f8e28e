"""The shapes the API returns: receipts, check results, devices and status (pydantic)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = [
    "CAPTURE_NOTES",
    "PENDING_STATES",
    "CaptureSource",
    "CheckRequest",
    "CheckResult",
    "DeviceInfo",
    "HealthCheck",
    "ItemState",
    "JournalEntry",
    "Receipt",
    "StatusReport",
]


class ItemState(StrEnum):
    """Where a file is on its way: the `items.state` column, the API's `state`, the page's badge.

    A `StrEnum`, so each member is its own string: the database, the JSON and the templates
    see exactly the words they saw before.
    """

    RECEIVED = "received"  # safe in the spool, waiting for the relay
    RELAYING = "relaying"  # claimed by the relay, being copied
    RETRY = "retry"  # the last copy failed; `next_attempt_at` says when it tries again
    VERIFIED = "verified"  # the destination's copy was checked; the end of the road
    FAILED = "failed"  # a person must act (see the reason); waits for a retry by hand
    DAMAGED = "damaged"  # the copy kept here is missing or damaged; waits for a re-send

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Validated and documented as the plain list of words (inline in OpenAPI, as when
        # this was a Literal), so the API's document did not change when it became an enum.
        return core_schema.no_info_after_validator_function(
            cls, core_schema.literal_schema([state.value for state in cls])
        )


# Not yet at the destination: the queue.
PENDING_STATES: tuple[ItemState, ...] = (ItemState.RECEIVED, ItemState.RELAYING, ItemState.RETRY)

CaptureSource = Literal["client", "exif", "quicktime", "fallback"]

# Where a capture time came from, in words, for receipts recorded before `captured_note`.
CAPTURE_NOTES: dict[str, str] = {
    "client": "Sent by the phone (or program) with the upload.",
    "exif": "Read from the photo's EXIF data.",
    "quicktime": "Read from the video's metadata.",
    "fallback": "The time the file arrived here: the file carries no capture time we could read.",
}


class DeliveryReceipt(BaseModel):
    """One destination the file must reach, and how far it got there."""

    destination: int = Field(description="The destination's number (`destination list`).")
    state: ItemState
    planned_path: str
    remote_path: str | None
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    verified_at: str | None
    verified_by: str | None
    remote_etag: str | None = None
    remote_file_id: str | None = None


class Sender(BaseModel):
    """A person (and their device) who sent this content; `device` None: imported here."""

    person: str
    device: str | None
    first_at: str


class Receipt(BaseModel):
    """Everything known about one file, identified by the SHA-256 of its content."""

    sha256: str
    size: int = Field(description="Bytes.")
    original_name: str = Field(description="The name the client gave, or one made up.")
    kind: Literal["photo", "video", "other"] = Field(description="From the bytes, not the name.")
    captured_at: str = Field(description="ISO 8601; with an offset where one is known.")
    captured_source: CaptureSource
    captured_note: str = Field(
        "",
        description="Where the capture time came from and, when it is not the file's own, "
        "why: e.g. \"The time the file arrived here: the file's metadata could not be read "
        'within the limits (more than 10000 boxes before the metadata)."',
    )
    device: str | None = Field(description="Device whose token first sent this content.")
    received_at: str
    state: ItemState
    planned_path: str = Field(description="Where the file is meant to land at the destination.")
    remote_path: str | None = Field(description="Where it did land, once verified.")
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    verified_at: str | None
    verified_by: str | None = Field(description="How the copy was checked, e.g. sha256-reread.")
    remote_etag: str | None = Field(None, description="The destination's ETag of the copy.")
    remote_file_id: str | None = Field(None, description="The destination's file id (NextCloud).")
    senders: list[Sender] = Field(
        default_factory=list, description="Everyone who sent this content, first first."
    )
    deliveries: list[DeliveryReceipt] = Field(
        default_factory=list,
        description="Each destination it must reach; `state` above is verified only when "
        "every one of these is.",
    )


class JournalEntry(BaseModel):
    at: str
    sha256: str | None
    event: str
    message: str


class CheckRequest(BaseModel):
    sha256: list[str] = Field(max_length=20000, description="Hashes to look up (hex).")


class CheckResult(BaseModel):
    known: dict[str, ItemState] = Field(description="Hash -> state, for hashes we hold.")
    missing: list[str] = Field(description="Hashes we have never received: send these.")


class DeviceInfo(BaseModel):
    name: str
    created_at: str
    last_seen_at: str | None
    revoked: bool


class HealthCheck(BaseModel):
    """One finding of `photo-relay doctor` (and of the status report): what, how bad, the fix."""

    name: str = Field(description="What was checked, e.g. `database` or `device my-iphone`.")
    status: Literal["ok", "warn", "fail"]
    message: str = Field(description="What was found, in plain words.")
    fix: str | None = Field(None, description="What to do about it; None when all is well.")


class StatusReport(BaseModel):
    counts: dict[ItemState, int]
    total_items: int
    spool_bytes: int
    spool_files: int
    spool_free_bytes: int
    oldest_pending: Receipt | None
    last_error: JournalEntry | None
    relay: dict[str, str | None]
    target: str
    checks: list[HealthCheck] = Field(
        default_factory=list, description="The doctor's checks that need no probe (see doctor)."
    )
