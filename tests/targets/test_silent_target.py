"""A destination that accepts connections but never answers does not hold up start-up."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Service
from tests.support.servers import find_free_port


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word."""
    port = find_free_port()
    listener = socket.create_server(("127.0.0.1", port))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_start_up_does_not_wait_for_a_destination_that_never_answers(
    start_service: Callable[..., Service], silent_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With a 300 s target timeout, /healthz still answers within the start-up wait (30 s)."""
    caplog.set_level(logging.WARNING, logger="app")
    service = start_service(
        target="webdav",
        target_url=silent_server,
        target_user="owner",
        target_password="secret",
        target_timeout_seconds=300,
    )
    with service.admin() as admin:
        assert admin.get("/healthz").status_code == 200
        assert admin.get("/v1/status").status_code == 200
    assert "target.slow_to_answer" in caplog.text
