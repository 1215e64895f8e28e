"""One data folder, found the same way by every command, from any working folder (issue 15).

Everything runs as a person would: the installed `photo-relay` script in subprocesses,
from different working folders, with a home of its own (tests/support/user_shell.py).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
import pytest

from app.store.db import Database
from app.store.state import State
from tests.support.servers import find_free_port
from tests.support.user_shell import SCRIPT, UserShell

TOKEN = re.compile(r"prd_[A-Za-z0-9_-]{43}")


@pytest.fixture
def shell(tmp_path: Path) -> UserShell:
    if not SCRIPT.exists():
        pytest.skip("the photo-relay console script is not installed in this environment")
    return UserShell(tmp_path / "user")


def test_a_command_without_a_data_folder_names_where_it_looked_and_makes_nothing(
    shell: UserShell,
) -> None:
    """Before the first serve, device add / admin-token / status fail, name the folder and
    how to point elsewhere, print no token, and create no folder anywhere."""
    for args in (("device", "add", "phone"), ("admin-token",), ("status",), ("retry",)):
        result = shell.run(*args)
        assert result.returncode != 0, args
        assert result.stdout == "", args
        assert f"no photo-relay data folder at {shell.default_data_dir}" in result.stderr
        assert "--data-dir" in result.stderr and "PHOTO_RELAY_DATA_DIR" in result.stderr
        assert "Traceback" not in result.stderr
    assert not shell.default_data_dir.exists()
    assert list(shell.folder("elsewhere").iterdir()) == []
    named = shell.folder("elsewhere") / "mine"
    result = shell.run("device", "add", "phone", "--data-dir", str(named))
    assert result.returncode != 0 and f"at {named} (given with --data-dir)" in result.stderr
    assert not named.exists()


def test_serve_without_settings_uses_the_fixed_default_not_the_working_folder(
    shell: UserShell,
) -> None:
    """`serve` from one folder keeps its data in the default location; a device added from
    another folder is accepted by the running service."""
    port = find_free_port()
    with shell.serving(port=port, cwd=shell.folder("checkout")) as serving:
        banner = serving.banner()
        added = shell.run("device", "add", "phone", cwd=shell.folder("somewhere-else"))
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip()
        assert TOKEN.fullmatch(token)
        reply = httpx.get(
            f"http://127.0.0.1:{port}/v1/items/{'a' * 64}",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert reply.status_code == 404  # accepted: the item is unknown, the token is not
    assert f"Data folder:        {shell.default_data_dir}" in banner
    assert (shell.default_data_dir / "photo-relay.db").exists()
    assert list(shell.folder("checkout").iterdir()) == []


def test_other_commands_find_the_folder_serve_was_given(shell: UserShell) -> None:
    """serve --data-dir X records X: device add, admin-token and doctor in another shell
    (no flag, no variable, another folder) work on X, the running service's own."""
    port = find_free_port()
    data_dir = shell.home / "elsewhere" / "photos data"
    with shell.serving("--data-dir", str(data_dir), port=port):
        added = shell.run("device", "add", "phone")
        admin = shell.run("admin-token")
        doctor = shell.run("doctor")
        config = shell.run("config")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            device_reply = client.get(
                f"/v1/items/{'a' * 64}", headers={"Authorization": f"Bearer {added.stdout.strip()}"}
            )
            status_reply = client.get(
                "/v1/status", headers={"Authorization": f"Bearer {admin.stdout.strip()}"}
            )
    assert added.returncode == 0 and admin.returncode == 0, added.stderr + admin.stderr
    assert device_reply.status_code == 404
    assert status_reply.status_code == 200
    assert f"data folder: {data_dir} is writable" in doctor.stdout
    assert re.search(
        rf"PHOTO_RELAY_DATA_DIR\s+{re.escape(str(data_dir))}\s+\(recorded by serve\)", config.stdout
    ), config.stdout
    assert not shell.default_data_dir.exists()
    # An explicit flag still wins over what serve recorded.
    other = shell.home / "other"
    other.mkdir()
    listed = shell.run("device", "list", "--data-dir", str(other))
    assert listed.returncode == 0 and "No devices yet" in listed.stdout


def test_doctor_in_another_shell_describes_the_service_started_with_variables(
    shell: UserShell, tmp_path: Path
) -> None:
    """Settings given to serve's environment are not in doctor's; doctor still checks the
    running service's folder, because serve recorded it."""
    port = find_free_port()
    data_dir = tmp_path / "service-data"
    with shell.serving(port=port, variables={"PHOTO_RELAY_DATA_DIR": str(data_dir)}):
        doctor = shell.run("doctor", "--json")
    assert str(data_dir) in doctor.stdout
    assert str(shell.default_data_dir) not in doctor.stdout


def local_addresses() -> set[str]:
    """Addresses a socket can bind to on this machine: the phone could reach these."""
    found = set()
    for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
        found.add(str(info[4][0]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect(("10.0.0.1", 9))
            found.add(udp.getsockname()[0])
        except OSError:
            pass
    return {a for a in found if not a.startswith("127.")}


def test_the_banner_on_all_interfaces_prints_addresses_the_phone_can_use(
    shell: UserShell,
) -> None:
    """With --host 0.0.0.0 the banner lists this machine's LAN addresses (each answers),
    never http://0.0.0.0."""
    if not local_addresses():
        pytest.skip("this machine has no address but loopback")
    port = find_free_port()
    with shell.serving("--host", "0.0.0.0", port=port) as serving:
        banner = serving.banner()
        urls = re.findall(r"Phone address:\s+(http://\S+)", banner)
        answers = {url: httpx.get(url + "/healthz", timeout=5).status_code for url in urls}
    assert "http://0.0.0.0" not in banner
    assert urls, banner
    assert set(answers.values()) == {200}
    hosts = {url.split("//")[1].rsplit(":", 1)[0] for url in urls}
    assert hosts & local_addresses()


def test_the_command_the_banner_prints_runs_as_printed(shell: UserShell) -> None:
    """`photo-relay` may not be on PATH (a fresh checkout): the banner's "add your phone"
    line, copied as is into another folder, works."""
    port = find_free_port()
    with shell.serving(port=port) as serving:
        banner = serving.banner()
        line = re.search(r"Add your phone:\s+(.+?)\s+\(prints its token\)", banner)
        assert line, banner
        result = shell.run_line(line.group(1), cwd=shell.folder("another"))
    assert result.returncode == 0, result.stderr
    assert TOKEN.fullmatch(result.stdout.strip())


def test_status_and_doctor_say_when_the_service_has_settings_they_lack(
    shell: UserShell,
) -> None:
    """A setting given only to serve's environment: status, doctor and config in another
    shell name it, with the service's value and theirs; once it stops, no note."""
    port = find_free_port()
    variables = {"PHOTO_RELAY_TARGET_FOLDER": str(shell.home / "photos")}
    with shell.serving(port=port, variables=variables) as serving:
        pid = serving.process.pid
        noted = {name: shell.run(name) for name in ("status", "doctor", "config")}
    expected = (
        f"The running service (process {pid}) uses PHOTO_RELAY_TARGET_FOLDER="
        f"{shell.home / 'photos'} (from its environment); this command has (not set) (default)."
    )
    for name, result in noted.items():
        assert expected in result.stderr, (name, result.stderr)
        assert "settings.toml" in result.stderr
    assert "PHOTO_RELAY_PORT" not in noted["status"].stderr  # where it listens is no setup
    after = shell.run("status")
    assert after.returncode == 0 and "running service" not in after.stderr


def test_serve_keeps_using_the_data_folder_of_an_earlier_version(shell: UserShell) -> None:
    """./photo-relay-data with a database (the old default) is used, said, and remembered,
    instead of starting afresh in the new default folder."""
    checkout = shell.folder("checkout")
    old = checkout / "photo-relay-data"
    Database(old / "photo-relay.db").close()
    port = find_free_port()
    with shell.serving(port=port, cwd=checkout) as serving:
        banner = serving.banner()
        added = shell.run("device", "add", "phone")
    assert f"Using the data folder an earlier version kept here, {old}" in banner
    assert added.returncode == 0, added.stderr
    db = Database(old / "photo-relay.db")
    try:
        assert [d.name for d in State(db).list_devices()] == ["phone"]
    finally:
        db.close()
    assert not shell.default_data_dir.exists()
