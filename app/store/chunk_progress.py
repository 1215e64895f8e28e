"""Where a chunked upload stands: its upload id and how many chunks the server has.

Kept in the database (table `chunked_uploads`), so a dropped connection or a restart of the
service resumes after the last complete chunk instead of sending the whole file again.
Without a database (a one-off command) the progress lives only in memory. `retry`
(store/state.requeue_failed) asks for a clean restart (chunks_done -1): the next attempt
deletes that upload on the server and starts anew.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from app.clock import iso, now
from app.store.db import Database

__all__ = ["ChunkProgress", "ChunkedUpload"]


@dataclass(frozen=True)
class ChunkedUpload:
    sha256: str
    upload_id: str
    destination: str
    total_size: int
    chunk_size: int
    chunks_done: int = 0

    @property
    def restart(self) -> bool:
        """Whether a clean restart was asked for (`retry`): nothing of it is trusted."""
        return self.chunks_done < 0


class ChunkProgress:
    """Load, save and forget the state of chunked uploads to one destination (its number,
    as in `deliveries`; 1: the configured one), one per content hash: the same photo
    chunked to two people's NextClouds keeps two records."""

    def __init__(self, db: Database | None, destination: int = 1) -> None:
        self.db = db
        self.destination = destination
        self._memory: dict[str, ChunkedUpload] = {}

    async def load(self, sha256: str) -> ChunkedUpload | None:
        if self.db is None:
            return self._memory.get(sha256)

        def read(conn: sqlite3.Connection) -> ChunkedUpload | None:
            row = conn.execute(
                "SELECT sha256, upload_id, destination, total_size, chunk_size, chunks_done "
                "FROM chunked_uploads WHERE sha256 = ? AND destination_id = ?",
                (sha256, self.destination),
            ).fetchone()
            return ChunkedUpload(*tuple(row)) if row else None

        return await self.db.acall(read)

    async def save(self, upload: ChunkedUpload) -> None:
        if self.db is None:
            self._memory[upload.sha256] = upload
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO chunked_uploads (sha256, destination_id, upload_id, destination, "
                "total_size, chunk_size, chunks_done, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (sha256, destination_id) DO UPDATE SET "
                "upload_id = excluded.upload_id, "
                "destination = excluded.destination, total_size = excluded.total_size, "
                "chunk_size = excluded.chunk_size, chunks_done = excluded.chunks_done, "
                "updated_at = excluded.updated_at",
                (
                    upload.sha256,
                    self.destination,
                    upload.upload_id,
                    upload.destination,
                    upload.total_size,
                    upload.chunk_size,
                    upload.chunks_done,
                    iso(now()),
                ),
            )

        await self.db.acall(write)

    async def advance(self, upload: ChunkedUpload, chunks_done: int) -> ChunkedUpload:
        updated = replace(upload, chunks_done=chunks_done)
        await self.save(updated)
        return updated

    async def forget(self, sha256: str) -> None:
        if self.db is None:
            self._memory.pop(sha256, None)
            return
        await self.db.acall(
            lambda conn: conn.execute(
                "DELETE FROM chunked_uploads WHERE sha256 = ? AND destination_id = ?",
                (sha256, self.destination),
            )
        )
