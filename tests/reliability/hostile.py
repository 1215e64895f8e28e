"""Helpers for the hostile-network tests: raw sockets, the service's memory, a probe in a thread.

The service runs as `photo-relay serve` in a subprocess; its memory is read from
/proc/<pid>/status (VmRSS now, VmHWM the peak since start), so a figure is the service's
own, not the test's. `HealthProbe` asks /healthz (and optionally uploads) every 50 ms in a
thread while an attack runs, and keeps the slowest answer and any failure.
"""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.servers import ServiceProcess, wait_until_responds

__all__ = [
    "HealthProbe",
    "LimitedService",
    "memory_mb",
    "open_files_limit",
    "raw_request",
    "read_response",
    "status_of",
    "upload_with",
]


def memory_mb(pid: int, field_name: str = "VmRSS") -> float:
    """The process's resident memory (VmRSS) or its peak (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"{field_name} not in /proc/{pid}/status")


def status_of(reply: bytes) -> int:
    """The status code of a raw HTTP reply, 0 if there was none."""
    parts = reply.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def read_response(sock: socket.socket) -> int:
    """Read one whole response (head and Content-Length body) from `sock`; its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return status_of(data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status_of(head)


def raw_request(port: int, head: bytes, *, stream: bytes = b"", total: int = 0) -> bytes:
    """Send `head`, then `stream` repeated up to `total` bytes (stops when refused); the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent < total:
                sock.sendall(stream)
                sent += len(stream)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-way: the reply is already waiting
        try:
            return sock.recv(65536)
        except ConnectionResetError:
            return b""


class LimitedService(ServiceProcess):
    """`photo-relay serve` started with a hard limit on open files (as systemd would set)."""

    def __init__(
        self, *args: object, open_files: int, hard_limit: int | None = None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.open_files = open_files
        self.hard_limit = hard_limit or open_files

    def start(self) -> None:
        log = self.log_path.open("ab")
        soft, hard = self.open_files, self.hard_limit

        def lower_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            env=self.env,
            stdout=log,
            stderr=log,
            preexec_fn=lower_limit,
        )
        wait_until_responds(self.base_url + "/healthz")


def open_files_limit(pid: int) -> int:
    """The soft limit on open files of a running process, from /proc/<pid>/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files line in /proc/<pid>/limits")


@dataclass
class HealthProbe:
    """Asks /healthz (and runs `also`, e.g. an upload) every 50 ms until stopped."""

    base_url: str
    also: Callable[[httpx.Client], int] | None = None
    slowest: float = 0.0
    answers: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # A fresh connection each time: a new client must get in, not only a kept-alive one.
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with httpx.Client(base_url=self.base_url, timeout=10) as client:
                    status = client.get("/healthz").status_code
                    if self.also is not None and status == 200:
                        status = self.also(client)
                if status not in (200, 201):
                    self.failures.append(f"status {status}")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.answers += 1
            self._stop.wait(0.05)


def upload_with(token: str) -> Callable[[httpx.Client], int]:
    """An `also` for HealthProbe: one small authenticated upload, new content each time."""

    def upload(client: httpx.Client) -> int:
        data = os.urandom(2048)
        reply = client.put(
            f"/v1/blobs/{hashlib.sha256(data).hexdigest()}",
            content=data,
            headers={"Authorization": f"Bearer {token}"},
        )
        return reply.status_code

    return upload
