"""One service per data folder: an exclusive lock on `<data_dir>/serve.lock`, held while it runs.

A second `serve` on the same folder used to fail only at binding the port, after its
start-up had already removed the running service's temp files (19 uploads in flight got
500). The lock is taken before any start-up work; the kernel drops it when the process
ends however it ends, so a SIGKILL leaves no stale lock. The file names the holder's
process id, for the message the second start prints.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from app.errors import ConfigurationError

__all__ = ["LOCK_NAME", "FolderInUse", "FolderLock"]

LOCK_NAME = "serve.lock"


class FolderInUse(ConfigurationError):
    """Another process holds the data folder's lock."""


class FolderLock:
    """The held lock; keep the object for as long as the service runs."""

    def __init__(self, handle: IO[str], path: Path) -> None:
        self._handle = handle
        self.path = path

    @classmethod
    def take(cls, data_dir: Path) -> FolderLock:
        """Lock `data_dir` for this process, or raise FolderInUse naming the holder."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOCK_NAME
        # Opened without truncating: the holder's pid must survive a failed second attempt.
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the lifetime)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise FolderInUse(
                f"Another photo-relay (process {holder}) is already serving the data folder "
                f"{data_dir.resolve()}; nothing was changed. Stop it first, or give this one "
                "its own --data-dir."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return cls(handle, path)

    def release(self) -> None:
        self._handle.close()
