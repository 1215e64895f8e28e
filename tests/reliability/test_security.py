"""Security: secrets never leak, tokens are hashes, admin needs admin, no CORS, loopback only.

The service runs as a real subprocess at log level debug against the NextCloud test server,
so its whole log (uvicorn's access log included) can be searched for the device token, the
admin token and the NextCloud app password, along with every API reply it gave.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.config import Settings
from app.targets.nextcloud.credentials import NextcloudCredentials, save_credentials
from tests.reliability.harness import Rig, Tally, blob, dav_env, sha256_hex
from tests.support.faults import Fault
from tests.support.servers import find_free_port, wait_for, wait_until_responds
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.reliability

APP_PASSWORD = "nc-app-password-Zq81-xx4k"


@pytest.mark.nextcloud(password=APP_PASSWORD)
def test_secrets_never_appear_in_logs_replies_or_the_database(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Device token, admin token, app password: absent from logs, API replies and the DB."""
    tally = Tally("security-secrets")
    rig = Rig(tmp_path, dav_env(nextcloud, PHOTO_RELAY_LOG_LEVEL="debug"))
    rig.start()
    replies: list[str] = []
    try:
        admin_token = (rig.data_dir / "admin-token").read_text().strip()
        data = blob(1, 50_000)
        replies.append(rig.put(data, "IMG_0001.JPG").text)
        rig.wait_verified([sha256_hex(data)])
        nextcloud.faults.add(Fault("status", status=401, methods={"PUT"}))
        second = blob(2, 50_000)
        replies.append(rig.put(second, "IMG_0002.JPG").text)
        with rig.client(admin_token) as admin:
            wait_for(
                lambda: admin.get("/v1/status").json()["relay"]["state"] == "paused",
                what="the relay to pause on the refused password",
            )
            for path in [
                "/v1/status",
                "/v1/devices",
                f"/v1/items/{sha256_hex(data)}",
                f"/v1/items/{sha256_hex(data)}/journal",
                "/metrics",
                "/openapi.json",
                f"/v1/items/{sha256_hex(second)}",
            ]:
                reply = admin.get(path)
                replies.append(reply.text + str(reply.headers))
                tally.add("replies_searched")
        with rig.client("prd_wrong-token") as wrong:
            replies.append(wrong.get("/v1/status").text)
    finally:
        rig.stop()
    log = rig.process.log() if rig.process else ""
    assert "relay.paused" in log or "paused" in log  # the log did record the 401 story
    database = b"".join(p.read_bytes() for p in rig.data_dir.glob("photo-relay.db*") if p.is_file())
    for secret in (rig.token, admin_token, APP_PASSWORD):
        assert secret not in log, "a secret is in the service log"
        assert all(secret not in reply for reply in replies), "a secret is in an API reply"
        assert secret.encode() not in database, "a secret is in the database in plain text"
    assert sha256_hex(rig.token.encode()).encode() in database  # it holds the hash instead
    tally.add("log_bytes_searched", len(log))
    tally.report()


def test_revoked_token_is_refused_at_once_by_a_running_service(tmp_path: Path) -> None:
    """`photo-relay device revoke` in another process: the very next request gets 401."""
    rig = Rig(tmp_path)
    rig.start()
    try:
        with rig.client() as client:
            assert client.post("/v1/items/check", json={"sha256": []}).status_code == 200
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "device",
                    "revoke",
                    "phone",
                    "--data-dir",
                    str(rig.data_dir),
                ],
                check=True,
                capture_output=True,
            )
            reply = client.post("/v1/items/check", json={"sha256": []})
            assert reply.status_code == 401
            assert reply.json()["error"]["code"] == "invalid_token"
    finally:
        rig.stop()


def test_secret_files_are_created_0600(tmp_path: Path) -> None:
    """The admin token file and the NextCloud credentials file are readable by the owner only."""
    rig = Rig(tmp_path)
    rig.start()
    rig.stop()
    credentials = rig.data_dir / "nextcloud-credentials.json"
    save_credentials(
        credentials,
        NextcloudCredentials(
            server="https://cloud.example.org",
            login_name="alice",
            app_password=SecretStr(APP_PASSWORD),
            user_id="alice",
        ),
    )
    for path in (rig.data_dir / "admin-token", credentials):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_no_cors_and_security_headers_on_the_page(tmp_path: Path) -> None:
    """A cross-origin request gets no Access-Control-Allow-Origin; the page sends its headers."""
    rig = Rig(tmp_path)
    rig.start()
    try:
        with httpx.Client(base_url=rig.base_url, timeout=30) as client:
            origin = {"Origin": "https://evil.example"}
            preflight = client.options(
                "/v1/items/check",
                headers={
                    **origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            simple = client.post(
                "/v1/items/check",
                json={"sha256": []},
                headers={**origin, "Authorization": f"Bearer {rig.token}"},
            )
            page = client.get("/login")
        for reply in (preflight, simple):
            assert "access-control-allow-origin" not in reply.headers
            assert "access-control-allow-credentials" not in reply.headers
        assert page.status_code == 200
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    finally:
        rig.stop()


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on `port`, from /proc/net/tcp (hex, little-endian)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, port_hex = local.partition(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_service_binds_to_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    """With no host setting, `photo-relay serve` listens on 127.0.0.1 only."""
    assert Settings(_env_file=None).host == "127.0.0.1"  # type: ignore[call-arg]
    port = find_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_RELAY_")}
    env.update(PHOTO_RELAY_DATA_DIR=str(tmp_path / "data"), PHOTO_RELAY_PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_responds(f"http://127.0.0.1:{port}/healthz")
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_readme_says_how_to_put_it_behind_https() -> None:
    """The README points to a guide that has an HTTPS section (written with the deploy docs)."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    assert "HTTPS" in readme and "docs/RUN-AT-HOME.md" in readme
    guide = (root / "docs" / "RUN-AT-HOME.md").read_text()
    assert "## HTTPS on a home network" in guide
