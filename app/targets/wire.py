"""HTTP/1.1 on asyncio streams: the transport under the targets' httpx client.

httpx stays the client (auth, timeouts, no redirects, env proxies, errors); this replaces
only the wire below it (httpcore + anyio), which cost ~0.8 ms of CPU per small request
and 4.3 ms per 4 MiB PUT where a plain stream costs 0.07 and 1.6 (docs/PERFORMANCE.md,
Relay). Connections are kept alive and reused; a connection is reused only after its
reply was read to the end. Failures are raised as httpx's own transport errors, so
`replies.transport_errors` reads them as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

__all__ = ["StreamTransport"]

READ_SIZE = 1024 * 1024  # the largest piece a reply body is handed on in
HEAD_LIMIT = 64 * 1024  # a reply's status line and headers; more is a protocol error
KEEPALIVE_SECONDS = 5.0  # an idle connection older than this is closed, not reused
NO_BODY = frozenset({204, 304})
COALESCE_SIZE = 64 * 1024  # a body piece up to this size is sent in one write with the head

T = TypeVar("T")


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def reusable(self) -> bool:
        """Still open, nothing unread, and not idle long enough for the server to drop it."""
        fresh = time.monotonic() - self.idle_since < KEEPALIVE_SECONDS
        return fresh and not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class _Timeouts:
    connect: float | None
    read: float | None
    write: float | None
    pool: float | None

    @classmethod
    def of(cls, request: httpx.Request) -> _Timeouts:
        given = request.extensions.get("timeout", {})
        return cls(*(given.get(k) for k in ("connect", "read", "write", "pool")))


async def _timed(step: Awaitable[T], seconds: float | None) -> T:
    """`step`, or TimeoutError after `seconds` (None: no limit). Not `asyncio.wait_for`: on
    Python 3.11 that wraps every step in a task of its own, a cost per read."""
    async with asyncio.timeout(seconds):
        return await step


@contextlib.contextmanager
def _mapped(request: httpx.Request, timeout: type[httpx.TimeoutException], error: type) -> Iterator:
    """One phase of a request: its timeout and OS errors as httpx's `timeout` / `error`."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout(f"timed out ({type(exc).__name__})", request=request) from exc
    except asyncio.IncompleteReadError as exc:
        raise httpx.RemoteProtocolError(
            "the server closed the connection before the reply was complete", request=request
        ) from exc
    except (OSError, ssl.SSLError) as exc:
        raise error(str(exc) or type(exc).__name__, request=request) from exc


class _Reply:
    """How much of a reply's body is left and how it is framed; hands the connection back."""

    def __init__(
        self,
        transport: StreamTransport,
        key: tuple[str, str, int],
        connection: _Connection,
        request: httpx.Request,
        *,
        length: int | None,
        chunked: bool,
        keep: bool,
    ) -> None:
        self._transport, self._key, self._connection = transport, key, connection
        self._request = request
        self._length, self._chunked, self._keep = length, chunked, keep
        self._read = _Timeouts.of(request).read
        self._done = False

    async def pieces(self) -> AsyncIterator[bytes]:
        reader = self._connection.reader
        with _mapped(self._request, httpx.ReadTimeout, httpx.ReadError):
            if self._chunked:
                async for piece in self._chunks(reader):
                    yield piece
            elif self._length is None:  # framed by the end of the connection
                self._keep = False
                while piece := await _timed(reader.read(READ_SIZE), self._read):
                    yield piece
            else:
                async for piece in self._exactly(reader, self._length):
                    yield piece
        self._done = True

    async def _exactly(self, reader: asyncio.StreamReader, size: int) -> AsyncIterator[bytes]:
        """`size` bytes of the body, in pieces as they arrive."""
        left = size
        while left > 0:
            piece = await _timed(reader.read(min(left, READ_SIZE)), self._read)
            if not piece:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(piece)
            yield piece

    async def _chunks(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            line = await _timed(reader.readuntil(b"\r\n"), self._read)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise httpx.RemoteProtocolError(
                    f"bad chunk size {line[:40]!r}", request=self._request
                ) from exc
            if size == 0:
                while await _timed(reader.readuntil(b"\r\n"), self._read) != b"\r\n":
                    pass  # trailers, ignored
                return
            async for piece in self._exactly(reader, size):
                yield piece
            await _timed(reader.readexactly(2), self._read)

    def finish(self) -> None:
        """The body was read to its end (reuse the connection) or abandoned (close it)."""
        connection, self._connection = self._connection, None  # type: ignore[assignment]
        if connection is None:
            return
        self._transport.release(self._key, connection, reuse=self._done and self._keep)


class _Body(httpx.AsyncByteStream):
    def __init__(self, reply: _Reply) -> None:
        self._reply = reply

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._reply.pieces():
            yield piece

    async def aclose(self) -> None:
        self._reply.finish()


class StreamTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive, at most `max_connections` requests at a time."""

    def __init__(self, *, ssl_context: ssl.SSLContext, max_connections: int) -> None:
        self._ssl = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = _Timeouts.of(request)
        try:
            await _timed(self._slots.acquire(), timeouts.pool)
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no free connection in time", request=request) from exc
        try:
            return await self._exchange(request, timeouts)
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(self, request: httpx.Request, timeouts: _Timeouts) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        connection = self._reused(key) or await self._connect(request, key, timeouts)
        try:
            status, reason, headers = await self._send(connection, request, timeouts)
        except BaseException:
            connection.close()
            raise
        length, chunked = _framing(request.method, status, headers)
        keep = (
            not any(k.lower() == b"connection" and b"close" in v.lower() for k, v in headers)
            and request.headers.get("Connection", "").lower() != "close"
        )
        reply = _Reply(self, key, connection, request, length=length, chunked=chunked, keep=keep)
        return httpx.Response(
            status,
            headers=headers,
            stream=_Body(reply),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    def _reused(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key, [])
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
            connection.close()
        return None

    async def _connect(
        self, request: httpx.Request, key: tuple[str, str, int], timeouts: _Timeouts
    ) -> _Connection:
        scheme, host, port = key
        tls = self._ssl if scheme == "https" else None
        with _mapped(request, httpx.ConnectTimeout, httpx.ConnectError):
            reader, writer = await _timed(
                asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=HEAD_LIMIT
                ),
                timeouts.connect,
            )
        return _Connection(reader, writer)

    async def _send(
        self, connection: _Connection, request: httpx.Request, timeouts: _Timeouts
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Write the request, then read the reply's head."""
        writer = connection.writer
        target = request.url.raw_path
        head = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        chunked = request.headers.get("Transfer-Encoding", "").lower() == "chunked"
        with _mapped(request, httpx.WriteTimeout, httpx.WriteError):
            # Every write is a system call that, on a local server, also runs the
            # server's side of TCP: a small body goes out in one with the head.
            pending = b"".join(head)
            async for piece in request.stream:  # type: ignore[union-attr]
                if not piece:
                    continue
                framed = b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece
                if pending and len(framed) <= COALESCE_SIZE:
                    framed, pending = pending + framed, b""
                elif pending:
                    writer.write(pending)
                    pending = b""
                writer.write(framed)
                await _timed(writer.drain(), timeouts.write)
            if pending or chunked:
                writer.write(pending + (b"0\r\n\r\n" if chunked else b""))
            await _timed(writer.drain(), timeouts.write)
        return await self._head(connection, request, timeouts)

    async def _head(
        self, connection: _Connection, request: httpx.Request, timeouts: _Timeouts
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        with _mapped(request, httpx.ReadTimeout, httpx.ReadError):
            while True:
                try:
                    raw = await _timed(connection.reader.readuntil(b"\r\n\r\n"), timeouts.read)
                except asyncio.LimitOverrunError as exc:
                    raise httpx.RemoteProtocolError(
                        "the reply's headers are too long", request=request
                    ) from exc
                status, reason, headers = _parse_head(raw, request)
                if not 100 <= status < 200:  # 1xx (100 Continue, 102 Processing): read on
                    return status, reason, headers

    def release(self, key: tuple[str, str, int], connection: _Connection, *, reuse: bool) -> None:
        """A reply is over: its connection is kept for the next request or closed."""
        self._slots.release()
        if reuse and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(key, []).append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        self._closed = True
        idle = [c for connections in self._idle.values() for c in connections]
        self._idle.clear()
        for connection in idle:
            connection.close()
        for connection in idle:
            with contextlib.suppress(OSError, ssl.SSLError):  # already gone: nothing to tidy
                await connection.writer.wait_closed()


def _parse_head(raw: bytes, request: httpx.Request) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP reply: {lines[0][:60]!r}", request=request)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"bad header line {line[:60]!r}", request=request)
        headers.append((name, value.strip()))
    reason = parts[2] if len(parts) > 2 else b""
    if parts[0] == b"HTTP/1.0" and not any(
        k.lower() == b"connection" and v.lower() == b"keep-alive" for k, v in headers
    ):
        headers.append((b"Connection", b"close"))  # HTTP/1.0 closes unless it says otherwise
    return int(parts[1]), reason, headers


def _framing(
    method: str, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[int | None, bool]:
    """(Content-Length, chunked) of the reply's body; (0, False) when it has none."""
    if method == "HEAD" or status in NO_BODY:
        return 0, False
    length: int | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding" and b"chunked" in value.lower():
            return None, True
        if lowered == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return length, False
