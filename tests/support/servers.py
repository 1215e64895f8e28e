"""Real servers for tests: photo-relay in a thread or a subprocess, on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.config import Settings
from app.connection_limits import ConnectionLimits, protocol_with
from app.main import WEBSOCKETS, create_app
from app.socket_body import BodyThreads

__all__ = [
    "ServiceProcess",
    "ThreadedService",
    "find_free_port",
    "wait_for",
    "wait_until_responds",
]


def find_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "it") -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def wait_until_responds(url: str, *, timeout: float = 30.0) -> None:
    def responds() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(responds, timeout=timeout, what=f"{url} to respond")


class ThreadedService:
    """The app under uvicorn in a background thread (fast to start; not killable).

    With `serve`'s HTTP protocol, so upload bodies come straight from the socket as in
    production; `socket_bodies=False` gives stock uvicorn, whose bodies come through ASGI.
    """

    def __init__(
        self, settings: Settings, *, socket_bodies: bool = True, body_threads: int = 16
    ) -> None:
        self.settings = settings
        self.base_url = f"http://127.0.0.1:{settings.port}"
        # None with stock uvicorn: every body then comes through ASGI.
        self.body_threads = BodyThreads(body_threads) if socket_bodies else None
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            ws=WEBSOCKETS,
            http=(
                protocol_with(ConnectionLimits(), self.body_threads)
                if self.body_threads
                else "httptools"
            ),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        wait_until_responds(self.base_url + "/healthz")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def app_services(self) -> Any:
        return self.server.config.loaded_app.app.state.services  # type: ignore[union-attr]


class ServiceProcess:
    """`photo-relay serve` as a real subprocess, so tests can SIGKILL it."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "PHOTO_RELAY_DATA_DIR": str(data_dir),
            "PHOTO_RELAY_PORT": str(port),
            "PHOTO_RELAY_HOST": "127.0.0.1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"service-{port}.log"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"], env=self.env, stdout=log, stderr=log
        )
        wait_until_responds(self.base_url + "/healthz")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @contextmanager
    def running(self) -> Iterator[ServiceProcess]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
