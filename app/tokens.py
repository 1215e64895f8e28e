"""Device and admin tokens: made here, stored only as hashes, compared in constant time."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["ensure_admin_token", "hash_token", "new_token", "tokens_match"]


def new_token(prefix: str = "prd") -> str:
    """A fresh random token; 256 bits, URL-safe, with a prefix saying what it is for."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to guess.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(given: str, expected: str) -> bool:
    return hmac.compare_digest(hash_token(given), hash_token(expected))


def ensure_admin_token(path: Path) -> str:
    """Read the admin token from `path`, creating it (mode 0600) on first use.

    A new token is written and fsynced under a temp name, then linked into place: a link
    never replaces a file, so when the service and `photo-relay admin-token` start
    together both end up with the one token that won, and no reader ever sees the file
    half-written. An empty file (left by an older version's crash) is replaced.
    """
    existing = _read_token(path)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new_token("pra") + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if existing is None:
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        else:
            os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _read_token(path) or ensure_admin_token(path)


def _read_token(path: Path) -> str | None:
    """The token in `path`; "" if the file is empty, None if there is none."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
