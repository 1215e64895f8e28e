"""The local target: a folder on this machine (the embedded default, no NextCloud needed).

A file is copied under a hidden temp name beside its destination, fsynced, re-hashed,
then hard-linked to its final name — a link fails instead of replacing an existing file —
and its modification time is set to the capture time.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sys
from datetime import datetime
from pathlib import Path

from app.durable_dirs import fsync_dir, make_dir_durably
from app.errors import ConfigurationError, NameTaken, TargetFull, VerificationFailed
from app.hashing import CHUNK_SIZE, sha256_file
from app.off_loop import off_loop
from app.progress import report_sent
from app.targets.base import Verification

__all__ = ["TEMP_PREFIX", "LocalTarget"]

TEMP_PREFIX = ".photo-relay-"


class LocalTarget:
    """Copies into a folder on this machine."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def describe(self) -> str:
        return f"the folder {self.root}"

    def _full(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root):
            raise ValueError(f"path {path!r} leaves the library folder")  # a bug, not input
        return full

    async def check(self) -> None:
        def check() -> None:
            try:
                make_dir_durably(self.root)
            except OSError as exc:
                raise ConfigurationError(
                    f"Cannot create the library folder {self.root}: {exc.strerror}. "
                    "Set PHOTO_RELAY_TARGET_FOLDER to a folder photo-relay may write to."
                ) from exc
            if not os.access(self.root, os.W_OK):
                raise ConfigurationError(
                    f"photo-relay may not write to {self.root}. Fix its permissions or set "
                    "PHOTO_RELAY_TARGET_FOLDER to another folder."
                )

        await off_loop(check)

    async def close(self) -> None:
        return None

    async def ensure_folder(self, folder: str) -> None:
        # Durably: a verified copy lets the spool's copy go, so its folder must survive a
        # power cut as the copy does.
        await off_loop(make_dir_durably, self._full(folder))

    async def list_names(self, folder: str) -> list[str]:
        def names() -> list[str]:
            try:
                return [n for n in os.listdir(self._full(folder)) if not n.startswith(TEMP_PREFIX)]
            except FileNotFoundError:
                return []

        return await off_loop(names)

    async def put_new(
        self, path: str, source: Path, *, size: int, sha256: str, captured: datetime
    ) -> Verification | None:
        final = self._full(path)
        temp = _temp_for(final, sha256)
        await off_loop(self._copy_and_link, source, temp, final, sha256, captured)
        return Verification(path=path, method="sha256-reread")

    def _copy_and_link(
        self, source: Path, temp: Path, final: Path, sha256: str, captured: datetime
    ) -> None:
        try:
            written = _copy_hashing(source, temp)
            if written != sha256:
                raise VerificationFailed(
                    f"The copy in {temp.parent} did not match the original (disk error?)."
                )
            stamp = captured.timestamp()
            os.utime(temp, (stamp, stamp))
            try:
                os.link(temp, final)
            except FileExistsError as exc:
                raise NameTaken(f"{final.name} already exists") from exc
            fsync_dir(final.parent)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise TargetFull(f"The library disk is full ({self.root}).") from exc
            raise
        finally:
            temp.unlink(missing_ok=True)

    async def verify(self, path: str, *, size: int, sha256: str) -> Verification:
        full = self._full(path)

        def check() -> Verification:
            try:
                digest, actual_size = sha256_file(full)
            except FileNotFoundError as exc:
                raise VerificationFailed(f"{path} is missing from the library.") from exc
            except IsADirectoryError as exc:
                raise VerificationFailed(f"{path} is a folder, not this file.") from exc
            if actual_size != size or digest != sha256:
                raise VerificationFailed(f"{path} holds different content.")
            # A crash between linking a copy into place and removing its temp name leaves
            # that temp behind; once the content is proven in place it is only clutter.
            _temp_for(full, sha256).unlink(missing_ok=True)
            return Verification(path=path, method="sha256-reread")

        return await off_loop(check)

    async def discard_upload(self, path: str, sha256: str) -> None:
        """Nothing to do: a failed copy here never leaves its temp file behind."""

    async def delete(self, path: str) -> None:
        full = self._full(path)
        await off_loop(lambda: full.unlink(missing_ok=True))


def _temp_for(final: Path, sha256: str) -> Path:
    # One temp name per content: a retry after a crash reuses (and replaces) its own temp.
    return final.parent / f"{TEMP_PREFIX}{sha256[:16]}.tmp"


def _copy_hashing(source: Path, temp: Path) -> str:
    """Copy, fsync, then re-read what landed on disk and return its SHA-256."""
    with source.open("rb") as reader, temp.open("wb") as writer:
        if _share_blocks(reader.fileno(), writer.fileno()):
            report_sent(os.fstat(writer.fileno()).st_size)
        else:
            while chunk := reader.read(CHUNK_SIZE):
                writer.write(chunk)
                report_sent(len(chunk))
            writer.flush()
        os.fsync(writer.fileno())
    digest = hashlib.sha256()
    with temp.open("rb") as check:
        while chunk := check.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


# linux/fs.h's FICLONE, _IOW(0x94, 9, int): make the target share the source's blocks.
_FICLONE = 0x40049409
# What a file system that cannot share blocks between these two files answers.
_NO_CLONE = {errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS}


def _share_blocks(source_fd: int, target_fd: int) -> bool:
    """Make the target a copy of the source that shares its blocks (a reflink); False
    where the file system cannot (ext4, another disk, not Linux): then it is copied.

    On btrfs and XFS a photo's copy then costs no bytes moved and no disk space until one
    side changes. It is fsynced, re-read and hashed all the same: what is verified is
    what the library holds.
    """
    if sys.platform != "linux":
        return False  # the request number means nothing, or something else, elsewhere
    try:
        fcntl.ioctl(target_fd, _FICLONE, source_fd)
    except OSError as exc:
        if exc.errno in _NO_CLONE:
            return False
        raise
    return True
