"""The target interface: the small surface every destination offers the relay.

The relay owns the decisions (which name, when to retry); a target only does what it is
told, never replaces an existing file, and translates its own failures into the
`TargetError` family so the relay can tell "try later" from "stop and tell the owner".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from app.naming import NameRules

__all__ = ["VERIFICATION_WORDS", "NamingTarget", "RemoteFile", "Target", "Verification"]

# Each target's verification methods (receipts' `verified_by`, kept as codes for programs),
# as a person reads them: "verified: read back and compared".
VERIFICATION_WORDS = {
    "sha256-reread": "read back and compared",
    "size+sha256-readback": "read back and compared",
    "size+x-hash-sha256": "the server's checksum compared",
    "size+recalculated-sha256": "checksum recalculated by the server and compared",
    "size+stored-checksum": "the checksum the server stored compared",
    "size-only": "size compared (this server offers no way to check the content)",
}


@dataclass(frozen=True)
class RemoteFile:
    """A file found at the destination."""

    path: str
    size: int
    etag: str | None = None
    file_id: str | None = None


@dataclass(frozen=True)
class Verification:
    """Proof that the file at `path` is byte-identical to ours, and how it was obtained."""

    path: str
    method: str
    etag: str | None = None
    file_id: str | None = None
    # Whether the server confirmed it set the capture time as the file's mtime (NextCloud's
    # `X-OC-MTime: accepted`); None where the target cannot tell.
    mtime_accepted: bool | None = None

    @property
    def words(self) -> str:
        """How it was checked, in plain words."""
        return VERIFICATION_WORDS.get(self.method, self.method)


class Target(Protocol):
    """What a destination must offer. Paths are relative, '/'-separated, already safe."""

    kind: str

    def describe(self) -> str:
        """Where photos land, in words a person understands."""
        ...

    async def check(self) -> None:
        """Raise ConfigurationError or a TargetError if the destination cannot work."""
        ...

    async def close(self) -> None: ...

    async def ensure_folder(self, folder: str) -> None:
        """Create `folder` and its parents; a file in the way is an error."""
        ...

    async def list_names(self, folder: str) -> list[str]:
        """Names of the entries in `folder`; empty if it does not exist."""
        ...

    async def put_new(
        self, path: str, source: Path, *, size: int, sha256: str, captured: datetime
    ) -> Verification | None:
        """Copy `source` to `path` without ever replacing anything there.

        Raises NameTaken if `path` exists, NameRefused if the server refuses the name or
        stores it under another; a proven copy may be kept then, and a `put_new` of the same
        content to another name in that folder moves it there instead of sending it again.
        Returns a Verification when the copy was already proven identical while it was made,
        else None and the relay calls `verify`.
        """
        ...

    async def discard_upload(self, path: str, sha256: str) -> None:
        """Remove a copy kept by a `put_new` of `path` that was not used after all."""
        ...

    async def verify(self, path: str, *, size: int, sha256: str) -> Verification:
        """Prove the file at `path` has our size and content; raise VerificationFailed."""
        ...

    async def delete(self, path: str) -> None:
        """Remove a file photo-relay itself made for a check (the probe); never a photo."""
        ...


@runtime_checkable
class NamingTarget(Protocol):
    """A target whose server has its own rules for names (NextCloud's forbidden names)."""

    async def name_rules(self) -> NameRules:
        """The rules to apply when naming; may ask the server once."""
        ...
