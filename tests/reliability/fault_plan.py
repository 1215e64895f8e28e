"""More ways to break the test WebDAV server, wrapped around tests/support/faults.py's layer.

`HoldBody` lets a matching request's body through halfway, then holds it until the test
says so — the moment to SIGKILL the service "during a PUT" or "during a chunked upload",
reached deterministically. `Slow` delays every matching answer (a slow server).
Install either with `wrap(server, layer_factory)`: it goes inside the fault layer, so the
fault layer still counts every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.support.webdav_server import DavServer

__all__ = ["HoldBody", "Slow", "wrap"]

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def wrap(server: DavServer, make: Callable[[WsgiApp], Any]) -> Any:
    """Put a layer made by `make(inner)` between the fault layer and the DAV server."""
    layer = make(server.faults.inner)
    server.faults.inner = layer
    return layer


class _HeldInput:
    """Passes the first half of the body on, then blocks until released, then ends early."""

    def __init__(self, stream: Any, total: int, gate: HoldBody) -> None:
        self.stream, self.left, self.gate = stream, total // 2, gate

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            self.gate.reached.set()
            self.gate.release.wait(timeout=60)
            return b""
        size = self.left if size < 0 else min(size, self.left)
        data: bytes = self.stream.read(size)
        self.left -= len(data)
        return data


class HoldBody:
    """Holds the first request matching `method` and `path_contains` in mid-body."""

    def __init__(self, inner: WsgiApp, *, method: str, path_contains: str) -> None:
        self.inner, self.method, self.path_contains = inner, method, path_contains
        self.reached = threading.Event()
        self.release = threading.Event()
        self._armed = True
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            hit = (
                self._armed
                and environ["REQUEST_METHOD"] == self.method
                and self.path_contains in environ.get("PATH_INFO", "")
            )
            if hit:
                self._armed = False
        if not hit:
            return self.inner(environ, start_response)
        total = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = _HeldInput(environ["wsgi.input"], total, self)
        return self.inner(environ, start_response)


class Slow:
    """Answers every request matching `method` only after `seconds` (a slow server)."""

    def __init__(self, inner: WsgiApp, *, method: str, seconds: float) -> None:
        self.inner, self.method, self.seconds = inner, method, seconds
        self.delayed = 0
        self.in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != self.method:
            return self.inner(environ, start_response)
        with self._lock:
            self.delayed += 1
            self.in_flight += 1
        try:
            time.sleep(self.seconds)
            return self.inner(environ, start_response)
        finally:
            with self._lock:
                self.in_flight -= 1
