"""Folders that survive a power cut: a new entry is durable only once its folder is fsynced.

An fsync of a file makes its bytes durable, not its name: the link, rename or mkdir that
put the name in a folder is durable once that folder is fsynced. The spool, the local
target and the data folder use these two, so that what photo-relay calls safe is safe.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["fsync_dir", "make_dir_durably"]


def fsync_dir(path: Path) -> None:
    """Make a rename or link in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir_durably(path: Path) -> bool:
    """Create `path` (and missing parents), each new entry fsynced in its parent; True if new.

    A new folder is only durable once its parent is fsynced: without that a power cut can
    drop the folder, and every file fsynced in it, although each file's fsync returned.
    """
    if path.is_dir():
        return False
    if path.parent != path:
        make_dir_durably(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():  # a file is in the way, as the message says
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None
        return False  # made meanwhile by another upload or process, which fsyncs it
    fsync_dir(path.parent)
    return True
