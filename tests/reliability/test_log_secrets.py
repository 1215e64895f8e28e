"""No secret in a debug log: endpoints, the WebSocket handshake, page login, NextCloud login.

At debug level uvicorn's WebSocket layer logs every handshake header, cookie and
Authorization included; before the redaction filter the admin token, the device token and
the session cookie were all in the log. The service runs as `photo-relay serve` at
PHOTO_RELAY_LOG_LEVEL=debug, and `photo-relay nextcloud login` runs with Python logging
at DEBUG (httpx and httpcore included); both outputs are searched for every secret.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from httpx_ws import connect_ws

from app.web.sessions import COOKIE_NAME
from tests.conftest import add_device, sha256_hex
from tests.support.photo_relay_cli import cli_env
from tests.support.servers import ServiceProcess, find_free_port
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.reliability

# `photo-relay` with the root logger at DEBUG, as a person debugging it would run it.
CLI_AT_DEBUG = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from app.cli import main
sys.argv[0] = "photo-relay"
main()
"""
PASTED = ("--login", "alice@example.org", "--app-password")


def exercise_service(service: ServiceProcess, device: str, admin: str) -> str:
    """Use every kind of credential once; returns the session cookie the page login gave."""
    base = service.base_url
    data = b"a photo, or close enough" * 100
    with httpx.Client(base_url=base, timeout=30) as client:
        put = client.put(
            f"/v1/blobs/{sha256_hex(data)}",
            content=data,
            headers={"Authorization": f"Bearer {device}"},
        )
        assert put.status_code == 201, put.text
        form = client.post(
            "/v1/uploads",
            files={"file": ("b.jpg", b"another one" * 50)},
            headers={"Authorization": f"Bearer {device}"},
        )
        assert form.status_code == 201, form.text
        assert client.get("/v1/status", headers={"Authorization": f"Bearer {admin}"}).is_success
        assert client.get("/v1/status", params={"token": admin}).status_code in (401, 403)
        login = client.post("/login", data={"token": admin}, follow_redirects=False)
        assert login.status_code == 303, login.text
        session = login.cookies[COOKIE_NAME]
        assert client.get("/").is_success  # the client sends the cookie from here on
        with connect_ws(
            f"{base}/v1/events", client, headers={"Authorization": f"Bearer {admin}"}
        ) as ws:
            assert ws.receive_json()["type"] == "snapshot"
        with connect_ws(
            f"{base}/v1/events",
            client,
            headers={"Origin": base},
        ) as ws:
            assert ws.receive_json()["type"] == "snapshot"
    return session


def test_no_secret_in_a_debug_log_of_the_service_or_the_nextcloud_login(tmp_path: Path) -> None:
    """Device and admin tokens, the session cookie and the app password never reach a log."""
    data_dir = tmp_path / "service"
    device = add_device(data_dir, "phone")
    service = ServiceProcess(
        data_dir,
        find_free_port(),
        {"PHOTO_RELAY_TARGET_FOLDER": str(tmp_path / "library"), "PHOTO_RELAY_LOG_LEVEL": "debug"},
    )
    with service.running():
        admin = (data_dir / "admin-token").read_text().strip()
        session = exercise_service(service, device, admin)
    log = service.log()
    assert "< authorization: " in log.lower(), "the handshake headers were not logged"
    assert "< cookie: " in log.lower()

    # The whole test NextCloud (OCS and files): the login ends with a check that writes.
    nextcloud = DavServer(
        tmp_path / "nextcloud", nextcloud=True, ocs=True, login="alice@example.org"
    ).start()
    app_password = nextcloud.password
    try:
        login = subprocess.run(
            [sys.executable, "-c", CLI_AT_DEBUG, "nextcloud", "login", nextcloud.base_url, *PASTED],
            env=cli_env(tmp_path / "cli"),
            input=app_password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        nextcloud.stop()
    assert login.returncode == 0, login.stderr
    assert "DEBUG:" in login.stderr, "the login logged nothing at debug"

    output = log + login.stdout + login.stderr
    for name, secret in [
        ("device token", device),
        ("admin token", admin),
        ("session cookie", session),
        ("app password", app_password),
    ]:
        assert secret not in output, f"the {name} is in a log"
