"""Bounded work per connection before a request is authenticated: uvicorn's httptools protocol
with limits on the request line, the headers and their deadline, and on open connections.

Stock uvicorn with httptools keeps any request line or header in memory however long it
grows (one 256 MiB header held 568 MB), never times out headers that never finish, and
accepts connections until the process runs out of file descriptors. This protocol answers
414 for a request line over `max_url_bytes`, 431 for headers over `max_head_bytes` or more
than `max_header_count` of them, 408 for headers not complete within `header_timeout`, and
keeps at most `max_connections` open: at the cap, the connection that has waited longest
without sending a complete request is closed (408) to make room; if every connection is
busy with a request, the new one gets 503. `serve` measures why httptools rather than h11
(docs/RELIABILITY.md).

It also offers each plain-HTTP request with a Content-Length its body straight from the
socket (`app.socket_body`): while a reader thread has it, this protocol reads nothing on
the loop, and once the thread took the whole body it starts a fresh parser for the next
request, as the old one never saw those bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.socket_body import EXTENSION, BodyThreads, Claim, SocketBody

__all__ = [
    "ConnectionLimits",
    "LimitedHttpToolsProtocol",
    "connection_cap",
    "protocol_with",
    "raise_open_file_limit",
]


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may send before its request runs, and how many may be open."""

    max_url_bytes: int = 8 * 1024
    max_head_bytes: int = 40 * 1024
    max_header_count: int = 100
    header_timeout: float = 10.0
    max_connections: int = 1024


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the refusal is kept on the protocol."""


_MESSAGES = {
    408: ("header_timeout", "The request's headers did not arrive in time."),
    414: ("uri_too_long", "The request line is too long."),
    431: ("headers_too_large", "The request's headers are too large or too many."),
    503: ("too_many_connections", "The service has too many open connections; try again."),
}


def _refusal_bytes(status: int) -> bytes:
    code, message = _MESSAGES[status]
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return STATUS_LINE[status] + head + body


class _HeldFlowControl(FlowControl):
    """uvicorn's flow control, held paused while a reader thread has the socket: nothing
    (an ASGI `receive()`, the end of a response) may then read on the loop as well."""

    held = False

    def resume_reading(self) -> None:
        if not self.held:
            super().resume_reading()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses oversized or slow request heads and too many connections."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    # None: bodies only through ASGI. `protocol_with` gives each server its own threads.
    body_threads: ClassVar[BodyThreads | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._head_bytes = 0
        self._heads_completed = 0
        self._header_count = 0
        self._waiting_since: float | None = time.monotonic()
        self._deadline: asyncio.TimerHandle | None = None
        self._refusal: int | None = None
        self._body_seen = 0
        self._offered: SocketBody | None = None

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = self._flow = _HeldFlowControl(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            self.refuse(503)
            return
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _make_room(self) -> bool:
        """Close the connection idle longest without a complete request; False if none is."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, LimitedHttpToolsProtocol)
            and c is not self
            and c._waiting_since is not None
            and not c.transport.is_closing()
        ]
        if not waiting:
            return False
        min(waiting, key=lambda c: c._waiting_since or 0.0).refuse(408)
        return True

    def refuse(self, status: int) -> None:
        """Answer `status` with a JSON error and close, whatever the parser was doing."""
        self._cancel_deadline()
        self._waiting_since = None
        if not self.transport.is_closing():
            self.transport.write(_refusal_bytes(status))
            self.transport.close()
        self.connections.discard(self)

    # -- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        was_awaiting, heads_before = self._awaiting_head, self._heads_completed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self.refuse(self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if was_awaiting and self._awaiting_head and self._heads_completed == heads_before:
            # Only reads that were head from start to end are counted: a read that also
            # held a body (a whole small request, the end of one before the next head) is
            # not, so a legitimate request is never refused; one read of overshoot is the
            # price.
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                url = getattr(self, "url", b"")
                self.refuse(414 if len(url) > self.limits.max_url_bytes else 431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._head_bytes = 0
        self._awaiting_head = True  # also for a head pipelined behind a running request
        self._body_seen = 0
        self._offered = None
        if self._deadline is None:
            self._arm_deadline()  # a keep-alive connection's next request starts its own clock

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            self._refusal = 414
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            self._refusal = 431
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        self._heads_completed += 1
        self._awaiting_head = False
        self._waiting_since = None
        super().on_headers_complete()
        self._offer_socket_body()

    # -- the body straight from the socket (app.socket_body) -------------------------------

    def _offer_socket_body(self) -> None:
        length = _content_length(self.headers)
        if self.body_threads is None or self.scheme != "http" or length is None:
            return
        self._offered = SocketBody(self, self.body_threads, length)
        extensions = cast(dict[str, Any], self.scope).setdefault("extensions", {})
        extensions[EXTENSION] = self._offered

    def start_socket_read(self, body: SocketBody) -> Claim | None:
        """Stop reading on the loop and hand what is buffered of `body` to a thread."""
        cycle = self.cycle
        if (
            body is not self._offered  # a later request's head was parsed: read by ASGI
            or cycle.response_complete
            or cycle.disconnected
            or self.transport.is_closing()
        ):
            return None
        self._offered = None
        self._flow.pause_reading()
        self._flow.held = True
        if cycle.waiting_for_100_continue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        buffered, cycle.body = cycle.body, bytearray()
        fd = self.transport.get_extra_info("socket").fileno()
        return Claim(fd, buffered, body.length - self._body_seen)

    def end_socket_read(self, body: SocketBody, claim: Claim) -> None:
        """Read on the loop again; or, if the thread stopped mid-body, close after the reply."""
        if self.parser is None or self.transport.is_closing():
            return  # the connection is gone
        if not claim.complete:
            # The parser has lost its place in the stream: the connection stays held and
            # closes after the reply.
            self.cycle.keep_alive = False
            return
        if claim.remaining:
            # The old parser still waits for those bytes; the next request gets a new one.
            self.parser = _new_parser(self)
            self.on_message_complete()
        self._flow.held = False
        self._flow.resume_reading()

    def on_body(self, body: bytes) -> None:
        """uvicorn's on_body, without copying a read that its receive() takes whole.

        uvicorn appends every read to a bytearray, and receive() copies that into new
        bytes: two copies of every body byte on the event loop (py-spy, 4 MiB photos). A
        read that arrives while nothing is waiting is kept as the bytes it came in, which
        receive()'s `bytes(...)` hands on as they are; only a second read before the
        next receive() is joined, into a bytearray as uvicorn does.
        """
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        self._body_seen += len(body)
        if not cycle.body:
            cycle.body = body  # type: ignore[assignment]
        elif isinstance(cycle.body, bytes):
            cycle.body = bytearray(cycle.body) + body
        else:
            cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What follows a complete message is the next head. Not the response's end: a
        # reply sent early (a duplicate's 200) is complete while its body still arrives.
        self._awaiting_head = True
        self._head_bytes = 0
        self._mark_idle()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._mark_idle()

    def _mark_idle(self) -> None:
        """Evictable from now on if the request is both read and answered."""
        answered = self.cycle is None or self.cycle.response_complete
        if self._awaiting_head and answered and not self.pipeline:
            self._waiting_since = time.monotonic()

    # -- the header deadline ---------------------------------------------------------------

    def _arm_deadline(self) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._headers_late)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self._awaiting_head:
            self.refuse(408)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared length of a body sent without transfer-encoding; None otherwise."""
    length = None
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return None  # two lengths, or a bad one: httptools' business, not ours
            length = int(value)
    return length


def _new_parser(protocol: HttpToolsProtocol) -> httptools.HttpRequestParser:
    """A parser as uvicorn makes one, for the request after a body read from the socket."""
    parser = httptools.HttpRequestParser(protocol)
    with contextlib.suppress(AttributeError):  # httptools < 0.6.3 has none
        parser.set_dangerous_leniencies(lenient_data_after_close=True)
    return parser


def raise_open_file_limit(wanted: int = 65536) -> int:
    """Raise this process's soft limit on open files towards the hard limit; the new soft limit.

    systemd and most shells give 1,024, which a few hundred idle connections and a large
    form used to exhaust; the hard limit (often 524,288) is ours to use without privileges.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # a container or sandbox that forbids it: keep the soft limit we have
    return soft


def connection_cap(open_files: int) -> int:
    """Connections allowed open: half the descriptors, the rest for spool files and the relay."""
    return max(16, min(4096, open_files // 2))


def protocol_with(
    limits: ConnectionLimits, body_threads: BodyThreads | None = None
) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` that applies `limits`, with its own
    threads for bodies read from the socket."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"limits": limits, "body_threads": body_threads or BodyThreads()},
    )
