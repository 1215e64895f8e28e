"""Connecting NextCloud is one flow that ends with photos going there (issue 15).

A person's shell (tests/support/user_shell.py): `photo-relay serve` runs with the default
local destination; from another folder `photo-relay nextcloud login` goes through Login
Flow v2 against the test NextCloud (OCS layer + WsgiDAV), and from then on a photo sent to
the running service lands verified under /Photos/iPhone/… — no variable edited by hand.
"""

from __future__ import annotations

import os
import pty
import subprocess
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import samples
from tests.support.servers import find_free_port, wait_for
from tests.support.uploads import put_blob, sha256_hex, wait_verified
from tests.support.user_shell import SCRIPT, UserShell
from tests.support.webdav_server import DavServer

pytestmark = pytest.mark.nextcloud(ocs=True)


@pytest.fixture
def shell(tmp_path: Path) -> UserShell:
    if not SCRIPT.exists():
        pytest.skip("the photo-relay console script is not installed in this environment")
    return UserShell(tmp_path / "user")


def configuration(base_url: str, admin_token: str) -> dict[str, dict[str, str]] | None:
    """The running service's settings from /v1/status, or None while it restarts."""
    try:
        reply = httpx.get(
            base_url + "/v1/status", headers={"Authorization": f"Bearer {admin_token}"}, timeout=5
        )
    except httpx.TransportError:
        return None
    if reply.status_code != 200:
        return None
    return {entry["variable"]: entry for entry in reply.json()["configuration"]}


def login_by_browser(shell: UserShell, nextcloud: DavServer, *args: str) -> tuple[str, str]:
    """Run `nextcloud login ARGS`; grant access as the person would in the browser."""
    process = shell.start("nextcloud", "login", *args, "--poll-interval", "0.05")
    try:
        wait_for(nextcloud.ocs.pending_flows, what="the login command to start a login flow")
        nextcloud.ocs.grant(nextcloud.login, app_password=nextcloud.password)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, out + err
    return out, err


def test_login_switches_the_running_service_and_the_next_photo_lands_in_nextcloud(
    shell: UserShell, nextcloud: DavServer
) -> None:
    """login → destination switched, checked, path shown → the running service restarts by
    itself → a photo lands verified in /Photos/iPhone/<year>/<month>/ on NextCloud."""
    port = find_free_port()
    base_url = f"http://127.0.0.1:{port}"
    with shell.serving(port=port, cwd=shell.folder("checkout")) as serving:
        token = shell.run("device", "add", "phone").stdout.strip()
        admin = shell.run("admin-token").stdout.strip()
        before = configuration(base_url, admin)
        assert before is not None and before["PHOTO_RELAY_TARGET"]["value"] == "local"

        out, err = login_by_browser(shell, nextcloud, nextcloud.base_url)

        now = datetime.now()
        assert "Destination switched to NextCloud, folder /Photos/iPhone" in out
        assert "All good: photo-relay can relay photos to this NextCloud." in out
        assert (
            f"The next photo will land in NextCloud at {nextcloud.base_url}, in 'alice''s "
            f"files: /Photos/iPhone/{now:%Y}/{now:%m}/IMG_0001.HEIC"
        ) in out
        assert nextcloud.password not in out + err
        written = tomllib.loads((shell.default_data_dir / "settings.toml").read_text())
        assert written == {
            "target": "nextcloud",
            "target_url": nextcloud.base_url,
            "target_folder": "/Photos/iPhone",
        }

        def switched() -> dict[str, Any] | None:
            shown = configuration(base_url, admin)
            if shown and shown["PHOTO_RELAY_TARGET"]["value"] == "nextcloud":
                return shown
            return None

        shown = wait_for(switched, what="the running service to use the new destination")
        assert shown["PHOTO_RELAY_TARGET"]["source"] == "settings file"
        assert shown["PHOTO_RELAY_TARGET_FOLDER"]["value"] == "/Photos/iPhone"

        photo = samples.jpeg(datetime(2026, 5, 4, 12, 30), seed=15)
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            assert put_blob(client, photo, name="IMG_0042.JPG").status_code == 201
            receipt = wait_verified(client, sha256_hex(photo))
        banner = serving.banner()
    assert receipt["remote_path"] == "2026/05/IMG_0042.JPG"  # below the photos folder
    assert nextcloud.file("Photos/iPhone/2026/05/IMG_0042.JPG").read_bytes() == photo
    assert "restarts to use it" in banner
    assert not list((shell.default_data_dir / "library").rglob("*.JPG"))


def test_login_without_an_address_uses_the_configured_server(
    shell: UserShell, nextcloud: DavServer
) -> None:
    """As in Docker Compose: PHOTO_RELAY_TARGET_URL is set, `nextcloud login` needs no URL;
    a pasted app password and --folder work without a terminal."""
    port = find_free_port()
    variables = {"PHOTO_RELAY_TARGET_URL": nextcloud.base_url}
    with shell.serving(port=port, variables=variables):
        result = shell.run(
            "nextcloud",
            "login",
            "--login",
            nextcloud.login,
            "--app-password",
            "--folder",
            "Pictures/Phone/",
            stdin=nextcloud.password + "\n",
            variables=variables,
        )
    assert result.returncode == 0, result.stderr
    assert "folder /Pictures/Phone" in result.stdout
    assert "/Pictures/Phone/" in result.stdout.splitlines()[-1]
    written = tomllib.loads((shell.default_data_dir / "settings.toml").read_text())
    assert written["target_folder"] == "/Pictures/Phone"
    assert nextcloud.file("Pictures/Phone").is_dir()  # the check made and probed it
    assert nextcloud.password not in result.stdout + result.stderr


def test_login_with_no_address_anywhere_says_what_to_type(shell: UserShell) -> None:
    """No URL given and none configured: a clear message with an example, nothing written."""
    port = find_free_port()
    with shell.serving(port=port):
        result = shell.run("nextcloud", "login")
    assert result.returncode != 0
    assert "Which NextCloud?" in result.stderr
    assert "photo-relay nextcloud login https://cloud.example.org" in result.stderr
    assert not (shell.default_data_dir / "settings.toml").exists()
    assert "Traceback" not in result.stderr


def test_an_environment_variable_that_overrides_the_switch_is_named(
    shell: UserShell, nextcloud: DavServer
) -> None:
    """If PHOTO_RELAY_TARGET is set where the command runs, login says it wins over the file."""
    port = find_free_port()
    with shell.serving(port=port):
        result = shell.run(
            "nextcloud",
            "login",
            nextcloud.base_url,
            "--login",
            nextcloud.login,
            "--app-password",
            stdin=nextcloud.password + "\n",
            variables={"PHOTO_RELAY_TARGET": "local"},
        )
    assert "PHOTO_RELAY_TARGET is set in the environment (local)" in result.stderr


def test_a_failing_check_switches_nothing(shell: UserShell, nextcloud: DavServer) -> None:
    """Granted, but the files side refuses the app password: login exits non-zero, says
    where photos keep going, and the destination stays as it was."""
    port = find_free_port()
    with shell.serving(port=port):
        process = shell.start(
            "nextcloud",
            "login",
            nextcloud.base_url,
            "--folder",
            "/Photos/iPhone",
            "--poll-interval",
            "0.05",
        )
        try:
            wait_for(nextcloud.ocs.pending_flows, what="the login command to start a login flow")
            nextcloud.ocs.grant(nextcloud.login)  # a password only the OCS side knows
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
        config = shell.run("config")
    assert process.returncode == 1, out + err
    assert "rejected" in err
    assert f"photos keep going to the folder {shell.default_data_dir / 'library'}" in err
    assert not (shell.default_data_dir / "settings.toml").exists()
    assert (shell.default_data_dir / "nextcloud-credentials.json").exists()
    assert "Destination switched" not in out
    assert "PHOTO_RELAY_TARGET " in config.stdout and "local  (default)" in config.stdout


@pytest.mark.parametrize(
    ("typed", "folder"), [("", "/Photos/iPhone"), ("Bilder/Handy", "/Bilder/Handy")]
)
def test_on_a_terminal_login_proposes_the_photos_folder(
    shell: UserShell, nextcloud: DavServer, typed: str, folder: str
) -> None:
    """With a terminal, login asks for the folder proposing /Photos/iPhone: Enter accepts,
    or the person types another."""
    port = find_free_port()
    with shell.serving(port=port):
        primary, secondary = pty.openpty()
        process = subprocess.Popen(
            [str(SCRIPT), "nextcloud", "login", nextcloud.base_url, "--poll-interval", "0.05"],
            cwd=shell.folder("elsewhere"),
            env=shell.env,
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(secondary)
        try:
            wait_for(nextcloud.ocs.pending_flows, what="the login command to start a login flow")
            nextcloud.ocs.grant(nextcloud.login, app_password=nextcloud.password)
            os.write(primary, typed.encode() + b"\n")
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
            os.close(primary)
    assert process.returncode == 0, out + err
    assert "Folder in your NextCloud files for the photos (Enter accepts) [/Photos/iPhone]:" in out
    written = tomllib.loads((shell.default_data_dir / "settings.toml").read_text())
    assert written["target_folder"] == folder
    assert nextcloud.file(folder.strip("/")).is_dir()


def test_a_new_login_with_the_same_settings_restarts_the_service_for_it(
    shell: UserShell, nextcloud: DavServer
) -> None:
    """Logging in again (another login name, same folder) changes only the credentials
    file: a service relaying to NextCloud restarts for it too."""
    other_login = "alice@home.example"
    nextcloud.ocs.add_user(other_login, uid=nextcloud.user, app_password=nextcloud.password)
    port = find_free_port()

    def login(name: str) -> None:
        args = ("nextcloud", "login", nextcloud.base_url, "--login", name, "--app-password")
        result = shell.run(*args, stdin=nextcloud.password + "\n")
        assert result.returncode == 0, result.stderr

    with shell.serving(port=port) as serving:
        login(nextcloud.login)
        wait_for(lambda: serving.banner().count("photo-relay is starting.") == 2, what="restart")
        login(other_login)
        wait_for(lambda: serving.banner().count("photo-relay is starting.") == 3, what="restart")
        banner = serving.banner()
    assert "nextcloud-credentials.json changed: photo-relay restarts to use it." in banner
