"""A second `serve` on the same data folder changes nothing: it names the holder and exits.

The second start used to run its whole start-up (removing temp files from "a crash") before
failing to bind the port, and the running service's uploads in flight got 500s. Here an
upload is half sent when the second start runs on another port; the second exits 1 naming
the first's process id, and the upload then completes with 201.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings
from tests.conftest import add_device
from tests.reliability.hostile import status_of
from tests.support.servers import ServiceProcess, find_free_port, wait_for

pytestmark = pytest.mark.reliability


def test_second_serve_on_the_same_folder_names_the_holder_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """An upload in flight survives a second start, which exits 1 naming the first's pid."""
    data_dir = tmp_path / "data"
    token = add_device(data_dir, "phone")
    env = {"PHOTO_RELAY_TARGET_FOLDER": str(tmp_path / "library")}
    first = ServiceProcess(data_dir, find_free_port(), env)
    data = os.urandom(2 << 20)
    half = len(data) // 2
    with first.running():
        assert first.process is not None
        tmp_dir = Settings(data_dir=data_dir).spool_dir / "tmp"
        with socket.create_connection(("127.0.0.1", first.port), timeout=30) as upload:
            upload.sendall(
                f"PUT /v1/blobs/{hashlib.sha256(data).hexdigest()} HTTP/1.1\r\n"
                f"Host: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n".encode()
                + data[:half]
            )
            in_flight = wait_for(lambda: list(tmp_dir.iterdir()), what="the upload's temp file")
            second = subprocess.run(
                [sys.executable, "-m", "app.cli", "serve"],
                env={**first.env, "PHOTO_RELAY_PORT": str(find_free_port())},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 1, second.stdout + second.stderr
            assert f"process {first.process.pid}" in second.stderr
            assert "photo-relay is starting" not in second.stdout  # no start-up work at all
            assert list(tmp_dir.iterdir()) == in_flight
            upload.sendall(data[half:])
            assert status_of(upload.recv(65536)) == 201
    assert (data_dir / "serve.lock").read_text().strip() == str(first.process.pid)


def test_a_killed_service_leaves_no_lock_behind(tmp_path: Path) -> None:
    """After SIGKILL the kernel has dropped the lock: the next start serves at once."""
    env = {"PHOTO_RELAY_TARGET_FOLDER": str(tmp_path / "library")}
    service = ServiceProcess(tmp_path / "data", find_free_port(), env)
    service.start()
    service.kill()
    with service.running():
        assert service.process is not None
        lock = (tmp_path / "data" / "serve.lock").read_text().strip()
        assert lock == str(service.process.pid)
