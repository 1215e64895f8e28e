"""`photo-relay import PATH`: back up a folder (an old phone export, a camera card).

Files go through the same `Ingest` as uploads, straight into the data folder: first every
file is hashed and the hashes are looked up in one go, then only the files not already
here are streamed into the spool. A second run therefore reads but stores nothing. A running
service notices the new items within PHOTO_RELAY_EVENTS_POLL_SECONDS (its journal feed sees
rows from other processes) and its relay starts copying them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.errors import PhotoRelayError
from app.hashing import CHUNK_SIZE, sha256_file
from app.intake.ingest import ClientMeta, Ingest
from app.off_loop import off_loop

__all__ = ["FolderImport", "ImportResult", "find_files", "hash_files"]

Advance = Callable[[int], None]


@dataclass
class ImportResult:
    stored: list[Path] = field(default_factory=list)
    already_here: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def find_files(root: Path) -> list[Path]:
    """Regular files below `root`, in a stable order; hidden files and folders are skipped
    (.DS_Store, ._ AppleDouble files, .Trashes...), and so are symbolic links."""
    if root.is_file():
        return [root]
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found


def hash_files(
    files: Iterable[Path], advance: Advance, problems: list[tuple[Path, str]]
) -> dict[Path, str]:
    hashes = {}
    for path in files:
        try:
            hashes[path] = sha256_file(path, advance)[0]
        except OSError as exc:
            problems.append((path, f"could not be read: {exc.strerror or exc}"))
    return hashes


async def _chunks(path: Path, advance: Advance) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await off_loop(handle.read, CHUNK_SIZE):
            advance(len(chunk))
            yield chunk


class FolderImport:
    """Stores files through `ingest`, skipping content that is already here."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def known(self, hashes: Iterable[str]) -> set[str]:
        return set(self.ingest.state.check(list(hashes)))

    async def store(self, files: dict[Path, str], advance: Advance, result: ImportResult) -> None:
        """Stream each file into the spool and record it; a problem skips only that file."""
        for path, sha256 in files.items():
            try:
                stat = path.stat()
                meta = ClientMeta(
                    name=path.name,
                    claimed_sha256=sha256,  # the file changed since it was hashed: refuse it
                    fallback_captured_at=datetime.fromtimestamp(stat.st_mtime, UTC),
                )
                writer = await self.ingest.receive(
                    _chunks(path, advance), declared_size=stat.st_size
                )
                _, new = await self.ingest.commit(writer, meta, device=None)
            except PhotoRelayError as exc:
                result.problems.append((path, exc.message))
            except OSError as exc:
                result.problems.append((path, f"could not be read: {exc.strerror or exc}"))
            else:
                (result.stored if new else result.already_here).append(path)
