"""Device and admin tokens: made here, stored only as hashes, compared in constant time."""

from __future__ import annotations

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
    """Read the admin token from `path`, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token("pra")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return token
