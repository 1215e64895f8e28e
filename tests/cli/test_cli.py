"""The `photo-relay` command, run for real in a subprocess against a data folder.

Device commands work on the database directly, so their effect on a running service
(here the `service` fixture, sharing the data folder) must be immediate.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from click.testing import CliRunner, Result

from app.cli.commands import main
from app.config import Settings
from app.store.db import Database
from app.store.state import State
from tests.conftest import Service, add_device
from tests.support.servers import ThreadedService, find_free_port, wait_until_responds

TOKEN = re.compile(r"prd_[A-Za-z0-9_-]{43}")
SCRIPT = Path(sys.executable).with_name("photo-relay")


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without PHOTO_RELAY_* settings, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_RELAY_")}
    return {**env, **values}


def photo_relay(
    *args: str, data_dir: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (or `python -m app.cli` without one)."""
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
    env = clean_env(PHOTO_RELAY_DATA_DIR=str(data_dir)) if data_dir else clean_env()
    return subprocess.run(
        [*command, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def photo_relay_in_process(*args: str, data_dir: Path) -> Result:
    """The same command run in this process (fast), for the error paths."""
    return CliRunner().invoke(main, list(args), env={"PHOTO_RELAY_DATA_DIR": str(data_dir)})


def test_device_add_prints_only_the_token_and_stores_only_its_hash(service: Service) -> None:
    """stdout is the token alone (scripts capture it); the running service accepts it."""
    result = photo_relay("device", "add", "tablet", data_dir=service.settings.data_dir)
    assert result.returncode == 0, result.stderr
    assert TOKEN.fullmatch(result.stdout.rstrip("\n")), result.stdout
    assert result.stdout.count("\n") == 1
    assert "not shown again" in result.stderr
    token = result.stdout.strip()
    stored = b"".join(p.read_bytes() for p in service.settings.data_dir.glob("photo-relay.db*"))
    assert token.encode() not in stored
    with service.client(token) as client:
        assert client.get(f"/v1/items/{'a' * 64}").status_code == 404


def test_a_device_name_in_use_is_a_clear_error(tmp_path: Path) -> None:
    """Adding 'phone' twice (in any case) fails with a message and prints no token."""
    add_device(tmp_path, "phone")
    for name in ("phone", "PHONE"):
        again = photo_relay_in_process("device", "add", name, data_dir=tmp_path)
        assert again.exit_code == 1
        assert again.stdout == ""
        assert "already exists" in again.stderr
        assert again.exception is None or isinstance(again.exception, SystemExit)


def test_device_list_shows_each_device_and_whether_it_is_revoked(tmp_path: Path) -> None:
    """`device list` names every device, active or revoked, and never a token."""
    empty = photo_relay("device", "list", data_dir=tmp_path)
    assert "No devices yet" in empty.stdout
    token = add_device(tmp_path, "phone")
    add_device(tmp_path, "tablet")
    db = Database(tmp_path / "photo-relay.db")
    try:
        State(db).revoke_device("tablet")
    finally:
        db.close()
    listing = photo_relay("device", "list", data_dir=tmp_path)
    lines = listing.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["phone", "active"], ["tablet", "revoked"]]
    assert token not in listing.stdout
    # times in plain words in the local zone, not raw ISO
    assert all("\tadded today " in line and "last seen never" in line for line in lines)


def test_revoking_a_device_locks_it_out_of_the_running_service_at_once(service: Service) -> None:
    """After `device revoke`, the next request with that token gets 401."""
    with service.device() as client:
        assert client.get(f"/v1/items/{'a' * 64}").status_code == 404
        result = photo_relay("device", "revoke", "phone", data_dir=service.settings.data_dir)
        assert result.returncode == 0, result.stderr
        refused = client.get(f"/v1/items/{'a' * 64}")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"


def test_revoking_an_unknown_device_is_a_clear_error(tmp_path: Path) -> None:
    """`device revoke` of a name that does not exist says so and exits non-zero."""
    result = photo_relay_in_process("device", "revoke", "ghost", data_dir=tmp_path)
    assert result.exit_code == 1
    assert "No active device called 'ghost'" in result.stderr


def test_admin_token_prints_the_token_the_service_accepts(service: Service) -> None:
    """`admin-token` prints the generated token; it opens /v1/status; its file is 0600."""
    result = photo_relay("admin-token", data_dir=service.settings.data_dir)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token == service.admin_token
    with service.client(token) as client:
        assert client.get("/v1/status").status_code == 200
    mode = stat.S_IMODE(service.settings.admin_token_file.stat().st_mode)
    assert mode == 0o600


def test_admin_token_before_the_first_start_is_kept_by_the_service(tmp_path: Path) -> None:
    """In a data folder made before the first start (as systemd's StateDirectory does), the
    token asked for first is created (0600); the service then uses that one."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    token = photo_relay("admin-token", data_dir=data_dir).stdout.strip()
    assert stat.S_IMODE((data_dir / "admin-token").stat().st_mode) == 0o600
    server = ThreadedService(Settings(data_dir=data_dir, port=find_free_port()))
    server.start()
    try:
        response = httpx.get(
            server.base_url + "/v1/status", headers={"Authorization": f"Bearer {token}"}
        )
    finally:
        server.stop()
    assert response.status_code == 200


@contextmanager
def serving(args: list[str], *, cwd: Path, env: dict[str, str], port: int) -> Iterator[Path]:
    """`photo-relay serve` in a subprocess until it answers; yields its output file."""
    output = cwd / f"serve-{port}.out"
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "serve", *args], cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until_responds(f"http://127.0.0.1:{port}/healthz")
        yield output
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_takes_flags_and_says_where_photos_land(tmp_path: Path) -> None:
    """--data-dir/--host/--port win over the environment; the banner says what to do next."""
    port = find_free_port()
    env = clean_env(
        PHOTO_RELAY_PORT=str(find_free_port()),
        PHOTO_RELAY_DATA_DIR="ignored",
        PHOTO_RELAY_HOST="0.0.0.0",
    )
    data_dir = tmp_path / "my data"
    flags = ["--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    with serving(flags, cwd=tmp_path, env=env, port=port) as output:
        banner = output.read_text()
    assert f"Photos will land in the folder {data_dir.resolve() / 'library'}" in banner
    assert f"http://127.0.0.1:{port}" in banner
    assert "0.0.0.0" not in banner.split("set --host 0.0.0.0")[0]
    assert "Only this computer can reach it" in banner
    assert "photo-relay device add" in banner
    assert "photo-relay admin-token" in banner
    assert (data_dir / "photo-relay.db").exists()
    assert not (tmp_path / "ignored").exists()


def test_serve_reads_the_environment_over_a_dot_env_file(tmp_path: Path) -> None:
    """A .env file in the working folder configures the service; env variables beat it."""
    env_port, file_port = find_free_port(), find_free_port()
    (tmp_path / ".env").write_text(
        f"PHOTO_RELAY_DATA_DIR=from-dot-env\nPHOTO_RELAY_PORT={file_port}\n"
    )
    env = clean_env(PHOTO_RELAY_PORT=str(env_port))
    with serving([], cwd=tmp_path, env=env, port=env_port) as output:
        banner = output.read_text()
    assert f"http://127.0.0.1:{env_port}" in banner
    assert (tmp_path / "from-dot-env" / "photo-relay.db").exists()
    added = photo_relay("device", "add", "phone", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    db = Database(tmp_path / "from-dot-env" / "photo-relay.db")
    try:
        assert [d.name for d in State(db).list_devices()] == ["phone"]
    finally:
        db.close()
    assert not (tmp_path / "photo-relay-data").exists()


def test_an_invalid_setting_is_reported_by_name(tmp_path: Path) -> None:
    """A bad value stops the command with the variable's name, not a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "device", "list"],
        env=clean_env(PHOTO_RELAY_DATA_DIR=str(tmp_path), PHOTO_RELAY_PORT="eighty"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PHOTO_RELAY_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_device_needs_a_visible_name(tmp_path: Path) -> None:
    """A blank name, or one with control characters, is refused before any token is made."""
    for name in ("", "   ", "my\tphone"):
        result = photo_relay_in_process("device", "add", name, data_dir=tmp_path)
        assert result.exit_code == 2, result.stdout
        assert result.stdout == ""
        assert "visible name" in result.stderr
    assert not (tmp_path / "photo-relay.db").exists()
