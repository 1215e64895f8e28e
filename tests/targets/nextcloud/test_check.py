"""`photo-relay nextcloud check`: server, login, probe file, and what the relay will do."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from wsgidav.wsgidav_app import WsgiDAVApp

from app.targets.local import LocalTarget
from app.targets.nextcloud.api import Capabilities
from app.targets.nextcloud.check import (
    READ_BACK,
    CheckPlan,
    ProbeOutcome,
    describe_support,
    run_check,
)
from app.targets.nextcloud.credentials import NextcloudCredentials, save_credentials
from tests.support.nextcloud_ocs import WsgiApp, serving
from tests.support.photo_relay_cli import run_cli
from tests.support.servers import find_free_port
from tests.support.webdav_server import DavServer

LOGIN = "alice@example.org"
UID = "alice"


def plain_webdav(files: Path) -> WsgiApp:
    """Anonymous WsgiDAV at NextCloud's DAV path: a WebDAV server that is no NextCloud."""
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    return WsgiDAVApp(  # type: ignore[no-any-return]
        {
            "provider_mapping": {f"/remote.php/dav/files/{UID}": str(files)},
            "http_authenticator": {"domain_controller": None, "accept_digest": False},
            "simple_dc": {"user_mapping": {"*": True}},
            "dir_browser": {"enable": False},
            "logging": {"enable": False},
            "verbose": 0,
        }
    )


# The test NextCloud's OCS side with an e-mail login, over its full DAV layer (mtime and
# hash headers) or over plain WsgiDAV (neither).
FULL = pytest.mark.nextcloud(ocs=True, login=LOGIN)
PLAIN = pytest.mark.nextcloud(ocs=True, login=LOGIN, dav_extensions=False)


def store_login(data_dir: Path, cloud: DavServer, password: str | None = None) -> None:
    credentials = NextcloudCredentials(
        server=cloud.base_url,
        login_name=LOGIN,
        app_password=SecretStr(password or cloud.password),
        user_id=UID,
    )
    save_credentials(data_dir / "nextcloud-credentials.json", credentials)


@FULL
def test_check_reports_what_nextcloud_supports(nextcloud: DavServer, tmp_path: Path) -> None:
    """With the stored login, check probes, cleans up and states chunking, mtime and hash."""
    data_dir = tmp_path / "data"
    store_login(data_dir, nextcloud)
    result = run_cli(data_dir, "nextcloud", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Nextcloud 30.0.4" in out and "not in maintenance mode" in out
    assert f"Login {LOGIN!r} accepted (user id {UID!r})" in out
    assert "Write probe: wrote, verified (by the server's SHA-256) and removed" in out
    assert "not the relay's own target" in out
    assert "Files over 50 MB go in 10 MB chunks, resumable" in out
    assert "Capture time (mtime): yes" in out
    assert "Content is verified by the server's SHA-256" in out
    assert "All good" in out
    assert list(nextcloud.files_dir.iterdir()) == [], "the probe file was left behind"
    methods = [method for method, path in nextcloud.ocs.requests if "/remote.php/" in path]
    assert "PUT" in methods and "DELETE" in methods
    assert nextcloud.password not in result.stdout + result.stderr


@PLAIN
def test_check_on_plain_webdav_says_read_back_and_no_mtime(
    nextcloud: DavServer, tmp_path: Path
) -> None:
    """Without NextCloud's PUT headers, check says files are read back and keep upload time."""
    data_dir = tmp_path / "data"
    store_login(data_dir, nextcloud)
    result = run_cli(data_dir, "nextcloud", "check", nextcloud.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified (by reading it back)" in result.stdout
    assert "Capture time (mtime): no" in result.stdout
    assert "by reading each file back" in result.stdout
    assert list(nextcloud.files_dir.iterdir()) == []


@PLAIN
def test_check_with_wrong_credentials_fails_once_with_the_fix(
    nextcloud: DavServer, tmp_path: Path
) -> None:
    """A rejected app password exits non-zero, names the login command, and is tried once."""
    data_dir = tmp_path / "data"
    store_login(data_dir, nextcloud, password="wrong-app-password")
    result = run_cli(data_dir, "nextcloud", "check")
    assert result.returncode == 1
    assert "rejected the login 'alice@example.org'" in result.stderr
    assert f"photo-relay nextcloud login {nextcloud.base_url}" in result.stderr
    assert nextcloud.ocs.failed_logins == 1
    assert "wrong-app-password" not in result.stdout + result.stderr


@PLAIN
def test_check_without_credentials_says_to_log_in(nextcloud: DavServer, tmp_path: Path) -> None:
    """Checking a server with no stored login fails and tells the login command."""
    result = run_cli(tmp_path / "data", "nextcloud", "check", nextcloud.base_url)
    assert result.returncode == 1
    assert "reachable" in result.stdout
    assert f"No credentials for {nextcloud.base_url}" in result.stderr
    assert f"photo-relay nextcloud login {nextcloud.base_url}" in result.stderr


def test_check_of_a_plain_webdav_server_says_it_is_not_nextcloud(tmp_path: Path) -> None:
    """A WebDAV server without NextCloud's status.php is reported as not a NextCloud."""
    files = tmp_path / "files"
    files.mkdir()
    with serving(plain_webdav(files)) as url:
        result = run_cli(tmp_path / "data", "nextcloud", "check", url)
    assert result.returncode == 1
    assert f"{url} does not look like a NextCloud server" in result.stderr


@PLAIN
def test_check_in_maintenance_mode_says_so(nextcloud: DavServer, tmp_path: Path) -> None:
    """Maintenance mode is named, with how it ends, and nothing is written."""
    data_dir = tmp_path / "data"
    store_login(data_dir, nextcloud)
    nextcloud.ocs.maintenance = True
    result = run_cli(data_dir, "nextcloud", "check")
    assert result.returncode == 1
    assert "is in maintenance mode" in result.stderr
    assert "occ maintenance:mode --off" in result.stderr
    assert not [path for _, path in nextcloud.ocs.requests if path != "/status.php"]


def test_check_of_an_unreachable_server_says_so(tmp_path: Path) -> None:
    """Nothing listening at the address: 'Cannot reach', with what to look at."""
    url = f"http://127.0.0.1:{find_free_port()}"
    result = run_cli(tmp_path / "data", "nextcloud", "check", url)
    assert result.returncode == 1
    assert f"Cannot reach NextCloud at {url}" in result.stderr
    assert "that the server is running" in result.stderr


def capabilities(**overrides: Any) -> Capabilities:
    values: dict[str, Any] = {
        "version": "30.0.4",
        "dav_chunking": "1.0",
        "bulk_upload": "1.0",
        "chunked_upload_max_size": 104857600,
        "forbidden_filenames": (),
        "forbidden_basenames": (),
        "forbidden_characters": (),
        "forbidden_extensions": (),
        "bruteforce_delay_ms": 0,
    }
    return Capabilities(**{**values, **overrides})


def test_support_text_follows_chunking_and_checksum_update() -> None:
    """No chunking endpoint: one request per file; a re-hash feature: verified by the server."""
    plan = CheckPlan("https://cloud.example.org", LOGIN, SecretStr("x"), "test")
    probe = ProbeOutcome("/p.txt", READ_BACK, True, fallback=True)
    lines = describe_support(
        plan,
        capabilities(dav_chunking=None, forbidden_characters=("\\", ":")),
        frozenset({"1", "3", "nextcloud-checksum-update"}),
        probe,
    )
    text = "\n".join(lines)
    assert "Chunked upload: no. Every file goes in one request" in text
    assert "verified by the server's SHA-256 after each upload" in text
    assert "Not allowed in file names here: characters \\ :" in text


@PLAIN
def test_check_probes_through_the_given_target(nextcloud: DavServer, tmp_path: Path) -> None:
    """With the relay's target, the probe goes through it (not the fallback) and is removed."""
    library = tmp_path / "library"
    plan = CheckPlan(
        nextcloud.base_url, LOGIN, SecretStr(nextcloud.password), "test", folder="Photos"
    )
    said: list[str] = []
    asyncio.run(run_check(plan, say=said.append, target=LocalTarget(library)))
    text = "\n".join(said)
    assert (
        "Write probe: wrote, verified (sha256-reread) and removed Photos/.photo-relay-probe-"
        in text
    )
    assert "not the relay's own target" not in text
    assert "Content is checked by the target's own method: sha256-reread." in text
    assert [p for p in library.rglob("*") if p.is_file()] == []
    assert not [path for method, path in nextcloud.ocs.requests if method == "PUT"]
