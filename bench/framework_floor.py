"""The framework floor: `python -m bench.framework_floor ROOT PORT`, FastAPI doing the least.

What a durable receiver written the way FastAPI's documentation shows a streamed upload
pays on this machine, served by uvicorn as `photo-relay serve` is (uvloop, httptools,
the access log at info): one route, `PUT /{name}`, that reads `request.stream()`, hands
each MiB to the thread pool to be SHA-256'd and written to a new temp file in ROOT, then
fsyncs it, renames it to its SHA-256 (hex), fsyncs ROOT, and answers `201` with
`{"sha256": .., "size": ..}`. A measuring stick for the ingest bench beside the network
floor (bench/floor_server.py, no framework): the gap between the two is what FastAPI and
uvicorn cost per request before any of photo-relay's own work.

It does not: check a token, look up or record anything (no database), read EXIF, check
free space, refuse to replace a file, or add middleware. Anything but a PUT of a name
gets FastAPI's own 404 or 405.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

__all__ = ["PIECE_BYTES", "create_app"]

PIECE_BYTES = 1024 * 1024


class TempFile:
    """One upload's temp file and hash; every method runs in a worker thread."""

    def __init__(self, root: Path, root_fd: int) -> None:
        self.root, self.root_fd = root, root_fd
        self.digest = hashlib.sha256()
        self.size = 0
        self.temp = root / f".{os.getpid()}-{id(self)}-{os.urandom(4).hex()}.part"
        self.fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def write(self, piece: bytes) -> None:
        self.digest.update(piece)
        self.size += len(piece)
        view = memoryview(piece)
        while view:
            view = view[os.write(self.fd, view) :]

    def finish(self, last: bytes) -> str:
        self.write(last)
        os.fsync(self.fd)
        os.close(self.fd)
        sha256 = self.digest.hexdigest()
        os.rename(self.temp, self.root / sha256)
        os.fsync(self.root_fd)
        return sha256


def create_app(root: Path) -> FastAPI:
    app = FastAPI()
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)

    @app.put("/{name}", status_code=201)
    async def put(name: str, request: Request) -> dict[str, object]:
        target = await run_in_threadpool(TempFile, root, root_fd)
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= PIECE_BYTES:
                await run_in_threadpool(target.write, bytes(pending))
                pending.clear()
        sha256 = await run_in_threadpool(target.finish, bytes(pending))
        return {"sha256": sha256, "size": target.size}

    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]))
