"""An upload's body read straight from its socket, by a worker thread of its own.

Through ASGI, each read of a body (64–256 KiB) becomes a `bytes` object made by
httptools, a message through uvicorn's `receive()` and six middlewares, and a pause and
resume of reading every 64 KiB: close to half the event loop's CPU for a 4 MiB photo
(docs/PERFORMANCE.md, issue 20). Here, once a route has authenticated its request, the
connection stops reading on the event loop and one worker thread reads the rest of the
body from the socket into a reused 1 MiB buffer, handing each full buffer to the route's
consumer (hash and write, or the form parser) in that same thread: one thread hop per
body, no Python object per read, the GIL released while it waits, hashes and writes.

`serve`'s protocol (app/connection_limits.py) puts a `SocketBody` in the scope's
extensions for a plain-HTTP request with a Content-Length. A route that finds none (TLS,
another ASGI server, a chunked body), or whose `claim` fails (every reader thread busy, the
request already answered), reads the ASGI messages instead: both ways give the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from app.errors import BadRequest, RequestTimeout

__all__ = [
    "EXTENSION",
    "BodyCut",
    "BodyThreads",
    "Buffer",
    "Claim",
    "SocketBody",
    "SocketBodyOwner",
]

# The key of a `SocketBody` in an ASGI scope's "extensions".
EXTENSION = "photo_relay.socket_body"
# What one recv fills before the consumer gets it: large enough that hashing and writing
# release the GIL for most of their time, small enough to stay in the CPU's cache.
BUFFER_BYTES = 1024 * 1024
# From this size on a second thread receives while the first hashes and writes.
READ_AHEAD_BYTES = 8 * BUFFER_BYTES

T = TypeVar("T")
Buffer = bytes | bytearray


class BodyCut(BadRequest):
    """The client closed the connection before its body was complete."""


class BodyThreads:
    """The threads that read bodies: at most `size` at once, apart from the disk's and the
    database's threads, so clients sending slowly can never hold up the service's own work.
    A large body may take a second one to read ahead while the first hashes and writes."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.bodies = 0  # bodies handed to a thread so far
        self._free = size
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # Buffers are kept for the next body: a fresh 1 MiB per body cost its allocation
        # and the page faults of its first fill (a sixth of the GIL-held time, py-spy --gil).
        self._buffers: list[bytearray] = []

    @property
    def busy(self) -> int:
        return self.size - self._free

    def take(self, *, body: bool = True) -> bool:
        """Reserve one thread; False if all are busy (a body is then read through ASGI)."""
        with self._lock:
            if self._free == 0:
                return False
            self._free -= 1
            self.bodies += body
            return True

    def give_back(self) -> None:
        with self._lock:
            self._free += 1

    def borrow_buffer(self) -> bytearray:
        with self._lock:
            if self._buffers:
                return self._buffers.pop()
        return bytearray(BUFFER_BYTES)

    def return_buffer(self, buffer: bytearray) -> None:
        with self._lock:
            if len(self._buffers) < 2 * self.size:
                self._buffers.append(buffer)

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="body-reader")
            return self._pool

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool(), fn)


class SocketBodyOwner(Protocol):
    """What the HTTP protocol offers its body: stop and restart reading on the loop."""

    def start_socket_read(self, body: SocketBody) -> Claim | None: ...

    def end_socket_read(self, body: SocketBody, claim: Claim) -> None: ...


class Claim:
    """One body handed to a thread: what the protocol had buffered, and what is left."""

    def __init__(self, fd: int, buffered: Buffer, remaining: int) -> None:
        self.fd = fd
        self.buffered = buffered
        self.remaining = remaining
        self.read = 0  # bytes the thread took from the socket
        self._socket: socket.socket | None = None

    @property
    def complete(self) -> bool:
        return self.read == self.remaining

    def pieces(self, threads: BodyThreads, idle_timeout: float) -> Generator[Buffer, None, None]:
        """The body in order; each piece is valid until the next one is asked for."""
        if self.buffered:
            yield self.buffered
        if self.remaining == 0:
            return
        # A duplicate of the connection's descriptor: closing it leaves the connection open.
        self._socket = sock = socket.socket(fileno=os.dup(self.fd))
        try:
            sock.settimeout(idle_timeout)  # each recv must see data within the idle timeout
            if self.remaining >= READ_AHEAD_BYTES and threads.take(body=False):
                yield from self._read_ahead(sock, threads, idle_timeout)
            else:
                buffer = threads.borrow_buffer()
                try:
                    while self.read < self.remaining:
                        yield self._next_piece(sock, buffer, idle_timeout)
                finally:
                    threads.return_buffer(buffer)
        finally:
            sock.close()

    def _next_piece(self, sock: socket.socket, buffer: bytearray, idle_timeout: float) -> Buffer:
        want = min(len(buffer), self.remaining - self.read)
        with memoryview(buffer) as view:
            _fill(sock, view[:want], idle_timeout)
        self.read += want
        # The last piece is copied to its own length; the form parser needs `find`.
        return buffer if want == len(buffer) else buffer[:want]

    def _read_ahead(
        self, sock: socket.socket, threads: BodyThreads, idle_timeout: float
    ) -> Iterator[Buffer]:
        """The pieces of a large body, the next one received by a second thread while the
        consumer hashes and writes this one: the receive, the hash and the write overlap."""
        empty: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        full: queue.SimpleQueue[Buffer | BaseException] = queue.SimpleQueue()
        buffers = [threads.borrow_buffer(), threads.borrow_buffer()]
        for buffer in buffers:
            empty.put(buffer)

        def receive() -> None:
            try:
                while self.read < self.remaining:
                    buffer = empty.get()
                    if buffer is None:
                        return  # the consumer gave up
                    full.put(self._next_piece(sock, buffer, idle_timeout))
            except BaseException as exc:  # handed to the consumer, which raises it
                full.put(exc)
            finally:
                threads.give_back()

        receiver = threads.pool().submit(receive)
        consumed = 0
        try:
            while consumed < self.remaining:
                piece = full.get()
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
                consumed += len(piece)
                if isinstance(piece, bytearray) and len(piece) == BUFFER_BYTES:
                    empty.put(piece)
        finally:
            if not receiver.done():
                empty.put(None)
                # A receiver waiting on the client wakes at once; the reply can still be sent.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)
                receiver.result()
            for buffer in buffers:
                threads.return_buffer(buffer)

    def stop(self) -> None:
        """Make a reading thread give up at once (the request was cancelled)."""
        if self._socket is not None:
            with contextlib.suppress(OSError):  # already closed
                self._socket.shutdown(socket.SHUT_RDWR)


def _consume(pieces: Generator[Buffer, None, None], consume: Callable[[Iterator[Buffer]], T]) -> T:
    """`consume(pieces)`, closing `pieces` as it returns or raises, not when collected."""
    with contextlib.closing(pieces):
        return consume(pieces)


def _fill(sock: socket.socket, view: memoryview, idle_timeout: float) -> None:
    filled = 0
    while filled < len(view):
        try:
            got = sock.recv_into(view[filled:])
        except TimeoutError:
            raise RequestTimeout(
                f"The upload stopped: no data arrived for {idle_timeout:g} seconds, so it "
                "was refused and nothing was stored. Check the connection and send the "
                "file again."
            ) from None
        except OSError:
            got = 0  # reset by the client, or stopped by a cancelled request
        if got == 0:
            raise BodyCut(
                "The connection closed before the whole file arrived; nothing was stored. "
                "Send the file again.",
                code="body_cut",
            )
        filled += got


class SocketBody:
    """The body of one request, offered by the protocol that parsed its head."""

    def __init__(self, owner: SocketBodyOwner, threads: BodyThreads, length: int) -> None:
        self.owner = owner
        self.threads = threads
        self.length = length

    def claim(self) -> Claim | None:
        """Take the body off the event loop (on the loop's thread); None: read it by ASGI."""
        if not self.threads.take():
            return None
        claim = self.owner.start_socket_read(self)
        if claim is None:
            self.threads.give_back()
        return claim

    async def read(self, claim: Claim, consume: Callable[[Iterator[Buffer]], T], idle: float) -> T:
        """`consume(pieces)` in a reader thread; the connection reads on the loop again after."""
        try:
            threads = self.threads
            return await threads.run(lambda: _consume(claim.pieces(threads, idle), consume))
        except asyncio.CancelledError:
            claim.stop()
            raise
        finally:
            self.threads.give_back()
            self.owner.end_socket_read(self, claim)
