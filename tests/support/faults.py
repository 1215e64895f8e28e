"""A WSGI layer that breaks requests on purpose, and counts every request it sees.

Faults match by method and a piece of the path, fire a number of times (or forever), and
can: hold a request until the test releases it (to kill the client meanwhile), answer a
status (503, 423, 507, 401, 429, ...) with a Sabre-style error body, drop the
connection in the middle of the request body, answer 201 but store nothing, store a
truncated file but answer 201, or answer 200 with an error page. `ignore_preconditions`
makes the server behave like those that ignore `If-None-Match: *` and `Overwrite: F`;
`clock_skew` makes every reply's `Date` header that far off the real time. Every request
and the body bytes the server read from it are counted (`count`, `bytes_received`), so a
test can say "no chunk sent twice" or "not a byte of the file sent again".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal

__all__ = ["Fault", "FaultLayer"]

FaultKind = Literal["status", "drop", "store_nothing", "truncate", "error_body", "hold"]
StartResponse = Callable[..., Any]

_REASONS = {401: "Unauthorized", 423: "Locked", 429: "Too Many Requests", 503: "Unavailable"}


@dataclass
class Fault:
    kind: FaultKind
    status: int = 503
    methods: set[str] = field(default_factory=set)  # empty: every method
    path_contains: str = ""
    times: int | None = None  # None: until removed
    message: str | None = None  # the Sabre <s:message> of a "status" reply
    headers: dict[str, str] = field(default_factory=dict)  # extra reply headers (Retry-After)
    fired: int = 0
    released: threading.Event = field(default_factory=threading.Event)  # for "hold"

    def matches(self, method: str, path: str) -> bool:
        return (not self.methods or method in self.methods) and self.path_contains in path


def _drain(environ: dict[str, Any], limit: int | None = None) -> int:
    """Read (and drop) the request body, or its first `limit` bytes."""
    left = int(environ.get("CONTENT_LENGTH") or 0)
    if limit is not None:
        left = min(left, limit)
    read = 0
    stream = environ["wsgi.input"]
    while left > 0:
        block = stream.read(min(left, 1 << 20))
        if not block:
            break
        left -= len(block)
        read += len(block)
    return read


def _dated(start_response: StartResponse, moment: datetime) -> StartResponse:
    """A start_response that sends `moment` as the Date header (cheroot keeps a given one)."""

    def respond(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        kept = [(k, v) for k, v in headers if k.lower() != "date"]
        date = format_datetime(moment, usegmt=True)
        return start_response(status, [*kept, ("Date", date)], *rest)

    return respond


class _Truncated:
    """The first `keep` bytes of the body; the rest is read and thrown away."""

    def __init__(self, stream: Any, keep: int, total: int) -> None:
        self.stream, self.keep, self.rest = stream, keep, total - keep

    def read(self, size: int = -1) -> bytes:
        if self.keep <= 0:
            while self.rest > 0:
                self.rest -= len(self.stream.read(min(self.rest, 1 << 20)) or b"x" * self.rest)
            return b""
        size = self.keep if size < 0 else min(size, self.keep)
        data: bytes = self.stream.read(size)
        self.keep -= len(data)
        return data


class _CountingInput:
    """Passes the request body through, adding what is read to the request's byte count."""

    def __init__(self, stream: Any, counts: list[int], index: int) -> None:
        self.stream, self.counts, self.index = stream, counts, index

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.stream.read(size)
        self.counts[self.index] += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self.stream.readline(size)
        self.counts[self.index] += len(data)
        return data


class FaultLayer:
    """Outermost WSGI layer of the test WebDAV server."""

    def __init__(self, inner: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.inner = inner
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.received: list[int] = []  # body bytes read, per request (same order)
        self.headers: list[dict[str, str]] = []  # the HTTP_* / CONTENT_* of each request
        self.ignore_preconditions = False
        self.clock_skew: timedelta | None = None
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def count(self, method: str | None = None, path_contains: str = "") -> int:
        with self._lock:
            return sum(
                1
                for m, p in self.requests
                if (method is None or m == method) and path_contains in p
            )

    def bytes_received(self, method: str | None = None, path_contains: str = "") -> int:
        """Body bytes the server read from matching requests (what the client sent)."""
        with self._lock:
            return sum(
                n
                for (m, p), n in zip(self.requests, self.received, strict=True)
                if (method is None or m == method) and path_contains in p
            )

    def _take(self, method: str, path: str) -> tuple[Fault | None, int]:
        with self._lock:
            self.requests.append((method, path))
            self.received.append(0)
            index = len(self.requests) - 1
            for fault in self.faults:
                if fault.matches(method, path) and (
                    fault.times is None or fault.fired < fault.times
                ):
                    fault.fired += 1
                    return fault, index
        return None, index

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.clock_skew is not None:
            start_response = _dated(start_response, datetime.now(UTC) + self.clock_skew)
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        seen = {k: str(v) for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))}
        with self._lock:
            self.headers.append({"method": method, "path": path, **seen})
        if self.ignore_preconditions:
            environ.pop("HTTP_IF_NONE_MATCH", None)
            environ.pop("HTTP_IF_MATCH", None)
            if "HTTP_OVERWRITE" in environ:
                environ["HTTP_OVERWRITE"] = "T"
        fault, index = self._take(method, path)
        environ["wsgi.input"] = _CountingInput(environ["wsgi.input"], self.received, index)
        if fault is None:
            return self.inner(environ, start_response)
        if fault.kind == "hold":
            fault.released.wait(timeout=60)
            return self.inner(environ, start_response)
        if fault.kind == "status":
            _drain(environ)
            reason = _REASONS.get(fault.status, "Error")
            body = (
                '<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" '
                'xmlns:s="http://sabredav.org/ns"><s:exception>Fault</s:exception>'
                f"<s:message>{fault.message or f'injected {fault.status}'}</s:message></d:error>"
            ).encode()
            start_response(
                f"{fault.status} {reason}",
                [
                    ("Content-Type", "application/xml; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    *fault.headers.items(),
                ],
            )
            return [body]
        if fault.kind == "drop":
            _drain(environ, int(environ.get("CONTENT_LENGTH") or 0) // 2)
            return self._dropped(start_response)
        if fault.kind == "store_nothing":
            _drain(environ)
            start_response("201 Created", [("Content-Length", "0")])
            return [b""]
        if fault.kind == "error_body":
            _drain(environ)
            body = b"<html><body>Internal error: nothing was saved</body></html>"
            start_response(
                "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
            )
            return [body]
        # truncate: the server keeps half the body and still says 201.
        total = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = _Truncated(environ["wsgi.input"], total // 2, total)
        environ["CONTENT_LENGTH"] = str(total // 2)

        def created(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            if status.startswith(("201", "204")):
                status = "201 Created"
            return start_response(status, headers, *rest)

        result = self.inner(environ, created)
        environ["wsgi.input"].read()  # throw away the rest of what the client sent
        return result

    @staticmethod
    def _dropped(start_response: StartResponse) -> Iterator[bytes]:
        # Promise a body, send a little of it, then fail: cheroot closes the connection.
        start_response("201 Created", [("Content-Length", "1000")])
        yield b"partial"
        raise ConnectionAbortedError("fault: connection dropped")
