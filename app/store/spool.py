"""The spool: a content-addressed store on disk, the only module that touches the spool dir.

A file is streamed into `tmp/` under a random name while it is hashed, fsynced, and then
hard-linked to `objects/<aa>/<sha256>` — a link never replaces an existing file, so two
uploads of the same content race harmlessly — and the directory is fsynced. A partial file
therefore never exists under its final name. Every folder is made durably (fsynced in its
parent), the 256 `objects/<aa>` folders once at start-up. A kept copy can be checked
(`copy_problem` cheaply, `copy_damage` by re-reading it) and a damaged one replaced by the
same content.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from app.durable_dirs import fsync_dir, make_dir_durably
from app.errors import InsufficientStorage
from app.hashing import sha256_file
from app.off_loop import off_loop

__all__ = ["SHARDS", "Spool", "SpoolWriter"]

# Received data is handed to the disk every MiB (a photo is a few) while the rest arrives, so the
# fsync that seals a file has little left to write: the disk works during the transfer,
# not after it. Linux's sync_file_range starts that write-back without waiting for it and
# keeps the pages cached for the relay; elsewhere the final fsync does all the work.
WRITEBACK_BYTES = 1 * 1024 * 1024
# `objects/<aa>`: the first two hex digits of a SHA-256.
SHARDS = tuple(f"{n:02x}" for n in range(256))
_SYNC_FILE_RANGE_WRITE = 2


def _find_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _find_sync_file_range()


def _write_all(fd: int, pieces: Sequence[bytes | bytearray | memoryview], size: int) -> None:
    written = os.writev(fd, pieces)
    if written == size:
        return
    # A short write (rare on a regular file): the rest piece by piece.
    rest = memoryview(b"".join(pieces))[written:]
    while rest:
        rest = rest[os.write(fd, rest) :]


def _no_room(detail: str) -> InsufficientStorage:
    return InsufficientStorage(
        f"There is no room on this machine to keep this file ({detail}). Free some disk space on "
        "the machine running photo-relay, then send the file again; nothing was stored."
    )


class SpoolWriter:
    """One file being received: hashes and writes each chunk, never holds the whole file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._digest = hashlib.sha256()
        self.size = 0
        self._written_back = 0
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.write_pieces([data])

    def write_pieces(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        """Hash and append `pieces` in order, with one system call for all of them."""
        size = 0
        for piece in pieces:
            self._digest.update(piece)
            size += len(piece)
        try:
            _write_all(self._fd, pieces, size)
        except OSError as exc:
            self.discard()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _no_room("the disk is full") from exc
            raise
        self.size += size
        if _sync_file_range is not None and self.size - self._written_back >= WRITEBACK_BYTES:
            # Best effort: a failure here only leaves more for the fsync in `finish`.
            _sync_file_range(
                self._fd, self._written_back, self.size - self._written_back, _SYNC_FILE_RANGE_WRITE
            )
            self._written_back = self.size

    def finish(self) -> str:
        """Flush to stable storage and return the hex SHA-256."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self.discard()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _no_room("the disk is full") from exc
            raise
        self._close()
        return self._digest.hexdigest()

    def discard(self) -> None:
        self._close()
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)


class Spool:
    """Content-addressed files under `root`: `objects/aa/<sha256>` plus a `tmp/` area."""

    def __init__(self, root: Path, *, min_free_bytes: int) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.objects_dir = root / "objects"
        self.min_free_bytes = min_free_bytes

    def prepare(self) -> int:
        """Make the folders and delete temp files left by a crash; return how many.

        Only the service may call it: another process's temp files would be in-flight
        uploads. Other processes (an import) call `make_folders`.
        """
        self.make_folders()
        leftovers = list(self.tmp_dir.iterdir())
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        return len(leftovers)

    def make_folders(self) -> None:
        """Make `tmp/`, `objects/` and its 256 shard folders, durably, where missing.

        Made here once, so that a first backup's first few hundred photos do not each pay a
        mkdir and an fsync of `objects/` on their way (docs/PERFORMANCE.md).
        """
        make_dir_durably(self.tmp_dir)
        make_dir_durably(self.objects_dir)
        present = {entry.name for entry in os.scandir(self.objects_dir)}
        missing = [shard for shard in SHARDS if shard not in present]
        for shard in missing:
            (self.objects_dir / shard).mkdir(exist_ok=True)
        if missing:
            fsync_dir(self.objects_dir)

    def path_for(self, sha256: str) -> Path:
        return self.objects_dir / sha256[:2] / sha256

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def ensure_room(self, expected_bytes: int) -> None:
        """Refuse early when a file of this size would eat into the reserve."""
        free = self.free_bytes()
        if free - expected_bytes < self.min_free_bytes:
            raise _no_room(f"{free} bytes free, {expected_bytes} needed plus a reserve")

    def open_writer(self) -> SpoolWriter:
        return SpoolWriter(self.tmp_dir / f"{uuid.uuid4().hex}.part")

    def commit(self, writer: SpoolWriter, sha256: str, *, replace: bool = False) -> Path:
        """Link a finished temp file to its content address; the same content may exist.

        `replace`: the file there is damaged (the caller knows); the new one, fsynced and
        hashed, takes its place in one rename.
        """
        final = self.path_for(sha256)
        make_dir_durably(final.parent)  # made by `prepare`, unless removed since
        if replace:
            os.replace(writer.path, final)
        else:
            # An existing file of that name has the same content and is already durable.
            with contextlib.suppress(FileExistsError):
                os.link(writer.path, final)
        fsync_dir(final.parent)
        writer.path.unlink(missing_ok=True)
        return final

    def copy_problem(self, sha256: str, size: int) -> str | None:
        """A cheap look at a kept copy: missing or of the wrong size; None if it looks whole."""
        try:
            found = self.path_for(sha256).stat().st_size
        except FileNotFoundError:
            return "The copy kept on this machine is missing."
        if found != size:
            return f"The copy kept on this machine has {found} bytes instead of {size}."
        return None

    def copy_damage(self, sha256: str, size: int) -> str | None:
        """A full look at a kept copy: `copy_problem`, then its bytes re-read and hashed."""
        problem = self.copy_problem(sha256, size)
        if problem is not None:
            return problem
        try:
            digest, _ = sha256_file(self.path_for(sha256))
        except FileNotFoundError:
            return "The copy kept on this machine is missing."
        if digest != sha256:
            return "The copy kept on this machine is damaged: its bytes changed since it arrived."
        return None

    def remove(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    # -- the async face, for the event loop: each method above in one hop (app.off_loop) --

    async def aprepare(self) -> int:
        return await off_loop(self.prepare)

    async def afree_bytes(self) -> int:
        return await off_loop(self.free_bytes)

    async def aensure_room(self, expected_bytes: int) -> None:
        await off_loop(self.ensure_room, expected_bytes)

    async def aopen_writer(self) -> SpoolWriter:
        return await off_loop(self.open_writer)

    async def aremove(self, sha256: str) -> None:
        await off_loop(self.remove, sha256)

    async def acopy_problem(self, sha256: str, size: int) -> str | None:
        return await off_loop(self.copy_problem, sha256, size)

    async def acopy_damage(self, sha256: str, size: int) -> str | None:
        return await off_loop(self.copy_damage, sha256, size)
