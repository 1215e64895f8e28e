"""Streaming SHA-256: hash a file or a stream in bounded memory, and validate hex digests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from app.errors import UnprocessableContent

__all__ = ["CHUNK_SIZE", "checked_sha256", "is_sha256_hex", "sha256_file"]

# Big enough that hashing and disk I/O release the GIL for most of their time.
CHUNK_SIZE = 1024 * 1024

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(value: str) -> bool:
    """True for exactly 64 lower-case hex characters."""
    return _SHA256_HEX.fullmatch(value) is not None


def checked_sha256(value: str) -> str:
    """`value` as a lower-case SHA-256 hex digest, or a 422 saying what was wrong."""
    value = value.strip().lower()
    if not is_sha256_hex(value):
        raise UnprocessableContent(
            f"{value[:80]!r} is not a SHA-256: expected 64 hexadecimal characters.",
            code="bad_hash",
        )
    return value


def sha256_file(path: Path, advance: Callable[[int], object] | None = None) -> tuple[str, int]:
    """Return (hex digest, size) of a file, read in chunks; `advance(n)` after each one."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
            if advance is not None:
                advance(len(chunk))
    return digest.hexdigest(), size
