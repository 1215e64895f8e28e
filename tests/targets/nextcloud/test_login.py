"""`photo-relay nextcloud login`: Login Flow v2 and pasted app passwords, stored 0600."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from app.errors import ConfigurationError
from app.targets.nextcloud.api import NextcloudApi, normalise_server_url
from app.targets.nextcloud.credentials import CREDENTIALS_FILE_NAME
from app.targets.nextcloud.login import LoginNotGranted, start_login_flow, wait_for_grant
from tests.support.nextcloud_ocs import serving
from tests.support.photo_relay_cli import run_cli, start_cli
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer

LOGIN = "alice@example.org"  # a login name that is not the user id, as with e-mail logins
UID = "alice"


# The test NextCloud with its OCS and Login Flow side; the login is an e-mail address.
pytestmark = pytest.mark.nextcloud(ocs=True, login=LOGIN)


def stored(data_dir: Path) -> dict[str, Any]:
    return dict(json.loads((data_dir / CREDENTIALS_FILE_NAME).read_text()))


def test_login_flow_through_the_cli_stores_credentials_0600(
    nextcloud: DavServer, tmp_path: Path
) -> None:
    """The CLI shows the link and a QR code, waits for the grant, then stores all four fields."""
    process = start_cli(
        tmp_path, "nextcloud", "login", nextcloud.base_url, "--poll-interval", "0.05"
    )
    try:
        wait_for(nextcloud.ocs.pending_flows, what="the CLI to start a login flow")
        # The files side's own password, so the check that ends the login passes.
        password = nextcloud.ocs.grant(LOGIN, app_password=nextcloud.password)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    flow = nextcloud.ocs.flows[0]
    assert f"{nextcloud.base_url}/index.php/login/v2/flow/{flow.login_id}" in out
    assert "▄" in out or "▀" in out, "no QR code in the output"
    assert "Connected" in out and repr(UID) in out
    file = tmp_path / CREDENTIALS_FILE_NAME
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stored(tmp_path) == {
        "server": nextcloud.base_url,
        "login_name": LOGIN,
        "app_password": password,
        "user_id": UID,
    }
    assert password not in out + err
    assert flow.poll_token not in out + err
    assert "nextcloud.login_granted" in err, "the debug log was not on, so the check is void"
    assert nextcloud.ocs.device_names(LOGIN)[-1].startswith("photo-relay/")


def test_poll_stops_at_the_flow_lifetime_without_hammering(nextcloud: DavServer) -> None:
    """Unanswered, the poll runs once per interval until the lifetime ends, then gives up."""

    async def login() -> None:
        async with NextcloudApi(nextcloud.base_url) as api:
            flow = await start_login_flow(api)
            await wait_for_grant(api, flow, interval=0.1, lifetime=1.0)

    with pytest.raises(LoginNotGranted, match="Run the command again"):
        asyncio.run(login())
    polls = nextcloud.ocs.flows[0].polls
    assert 2 <= polls <= 1.0 / 0.1 + 2, polls  # kept polling, but once per interval at most


def test_pasted_app_password_is_checked_then_stored(nextcloud: DavServer, tmp_path: Path) -> None:
    """A working pasted app password is stored with the user id the server reports."""
    password = nextcloud.ocs.add_user(LOGIN, uid=UID, app_password=nextcloud.password)
    args = ("nextcloud", "login", nextcloud.base_url, "--login", LOGIN, "--app-password")
    result = run_cli(tmp_path, *args, stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    assert stored(tmp_path)["user_id"] == UID
    assert stored(tmp_path)["app_password"] == password
    assert password not in result.stdout + result.stderr
    assert nextcloud.ocs.flows == []


def test_pasted_wrong_app_password_is_refused_and_not_stored(
    nextcloud: DavServer, tmp_path: Path
) -> None:
    """A rejected app password is tried once, reported with the fix, and nothing is written."""
    args = ("nextcloud", "login", nextcloud.base_url, "--login", LOGIN, "--app-password")
    result = run_cli(tmp_path, *args, stdin="not-the-password\n")
    assert result.returncode != 0
    assert "rejected the login" in result.stderr
    assert "photo-relay nextcloud login" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr
    assert not (tmp_path / CREDENTIALS_FILE_NAME).exists()
    assert nextcloud.ocs.failed_logins == 1


def test_login_to_an_address_that_is_not_nextcloud_fails_clearly(tmp_path: Path) -> None:
    """A web server without status.php is named as 'not a NextCloud', with an example address."""

    def website(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/html")])
        return [b"<html>nothing here</html>"]

    with serving(website) as url:
        result = run_cli(tmp_path, "nextcloud", "login", url, "--poll-interval", "0.05")
    assert result.returncode != 0
    assert "does not look like a NextCloud server" in result.stderr
    assert "https://cloud.example.org" in result.stderr
    assert not (tmp_path / CREDENTIALS_FILE_NAME).exists()


def test_poll_rides_out_server_errors_until_the_grant(nextcloud: DavServer) -> None:
    """A 503 from the poll endpoint does not end the login; the next poll gets the grant."""

    async def login() -> str:
        async with NextcloudApi(nextcloud.base_url) as api:
            flow = await start_login_flow(api)
            nextcloud.ocs.grant(LOGIN)
            nextcloud.ocs.poll_failures = 2
            granted = await wait_for_grant(api, flow, interval=0.01, lifetime=5)
            return granted.login_name

    assert asyncio.run(login()) == LOGIN
    assert nextcloud.ocs.flows[0].polls == 3


@pytest.mark.parametrize(
    ("typed", "base"),
    [
        ("cloud.example.org", "https://cloud.example.org"),
        ("https://cloud.example.org/", "https://cloud.example.org"),
        (
            "https://example.org/nextcloud/index.php/apps/files/?dir=/",
            "https://example.org/nextcloud",
        ),
        ("http://nas.local:8080/remote.php/dav/files/alice/", "http://nas.local:8080"),
    ],
)
def test_server_address_is_the_base_url(typed: str, base: str) -> None:
    """Addresses pasted from the browser or a WebDAV setting become NextCloud's base URL."""
    assert normalise_server_url(typed) == base


@pytest.mark.parametrize("typed", ["", "ftp://cloud.example.org", "https://", "http://host:99999"])
def test_unusable_server_address_is_refused_with_an_example(typed: str) -> None:
    """Something that is not an http(s) address is refused, with an example of a good one."""
    with pytest.raises(ConfigurationError, match=r"cloud\.example\.org"):
        normalise_server_url(typed)


def test_redirect_names_the_address_to_use(tmp_path: Path) -> None:
    """An http address that redirects to https is not followed silently: the message names it."""

    def redirect(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("301 Moved Permanently", [("Location", "https://cloud.example.org/")])
        return [b""]

    async def status() -> None:
        async with NextcloudApi(url) as api:
            await api.status()

    with serving(redirect) as url, pytest.raises(ConfigurationError) as caught:
        asyncio.run(status())
    assert "https://cloud.example.org/" in caught.value.message


def test_a_new_login_replaces_an_unreadable_credentials_file(
    nextcloud: DavServer, tmp_path: Path
) -> None:
    """A corrupt credentials file does not block logging in again; the new login replaces it."""
    (tmp_path / CREDENTIALS_FILE_NAME).write_text("{not json")
    password = nextcloud.ocs.add_user(LOGIN, uid=UID, app_password=nextcloud.password)
    args = ("nextcloud", "login", nextcloud.base_url, "--login", LOGIN, "--app-password")
    result = run_cli(tmp_path, *args, stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    assert stored(tmp_path)["app_password"] == password
    assert stat.S_IMODE((tmp_path / CREDENTIALS_FILE_NAME).stat().st_mode) == 0o600
