"""The write probe: proves the destination accepts, verifies and removes a small file.

Used by `photo-relay doctor`, `photo-relay nextcloud check` and the status checks, so they
all test the destination exactly the way the relay uses it.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from pathlib import Path

from app.clock import now
from app.targets.base import Target, Verification

__all__ = ["PROBE_PREFIX", "probe_write"]

PROBE_PREFIX = ".photo-relay-probe-"


async def probe_write(target: Target, folder: str = "") -> Verification:
    """Write, verify and delete a small uniquely named file in `folder`.

    Raises whatever the target raises (ConfigurationError, TargetError subclasses); the
    probe file is removed whenever it was written.
    """
    content = f"photo-relay write probe {now().isoformat()} {secrets.token_hex(8)}\n".encode()
    sha256 = hashlib.sha256(content).hexdigest()
    name = f"{PROBE_PREFIX}{secrets.token_hex(6)}.txt"
    path = f"{folder.strip('/')}/{name}" if folder.strip("/") else name
    with tempfile.TemporaryDirectory(prefix="photo-relay-probe-") as scratch:
        source = Path(scratch) / name
        source.write_bytes(content)
        if folder.strip("/"):
            await target.ensure_folder(folder.strip("/"))
        try:
            proof = await target.put_new(
                path, source, size=len(content), sha256=sha256, captured=now()
            )
            return proof or await target.verify(path, size=len(content), sha256=sha256)
        finally:
            await target.delete(path)
