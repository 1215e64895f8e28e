"""`photo-relay doctor` pinpoints each broken condition with its fix; /v1/status reuses it.

Each condition is made for real (a folder it may not write, a damaged database file, a
token file others can read, a clock behind the records) and the command runs as a real
subprocess, as the owner would run it; where root would bypass file permissions, the
command runs as the unprivileged user `nobody`.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.clock import iso
from app.config import Settings
from app.observe.doctor import (
    COMFORT_MARGIN_BYTES,
    ROOM_CHECK,
    check_clock,
    check_destination,
    diagnose,
)
from app.store.db import Database
from app.store.state import State
from app.targets.local import LocalTarget
from app.tokens import ensure_admin_token, hash_token, new_token
from tests.conftest import Service, make_settings
from tests.support.servers import ThreadedService

BIN = Path(sys.executable).parent
AS_ROOT = os.geteuid() == 0


def make_healthy_setup(data_dir: Path, device: str = "phone") -> None:
    """What a running service leaves behind: database, admin token, one device seen now."""
    settings = Settings(data_dir=data_dir)
    db = Database(settings.database_path)
    try:
        state = State(db)
        token = new_token("prd")
        state.add_device(device, hash_token(token))
        assert state.device_for_token_hash(hash_token(token)) is not None  # seen now
    finally:
        db.close()
    ensure_admin_token(settings.admin_token_file)


def run_doctor(
    data_dir: Path, *args: str, as_user: str | None = None, **settings: str
) -> tuple[int, dict[str, dict[str, Any]]]:
    """`photo-relay doctor --json` in a subprocess; returns its exit code and checks by name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_RELAY_")}
    env["PHOTO_RELAY_DATA_DIR"] = str(data_dir)
    env["PHOTO_RELAY_MIN_FREE_BYTES"] = "0"
    env.update({f"PHOTO_RELAY_{k.upper()}": v for k, v in settings.items()})
    user = {} if as_user is None else {"user": as_user, "group": pwd.getpwnam(as_user).pw_gid}
    result = subprocess.run(
        [str(BIN / "photo-relay"), "doctor", "--json", *args],
        env=env,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
        extra_groups=[] if as_user else None,
        **user,  # type: ignore[arg-type]
    )
    assert result.stdout.strip(), result.stderr
    return result.returncode, {c["name"]: c for c in json.loads(result.stdout)}


def problems(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The checks that are not ok, leaving out the warning that the checks ran as root."""
    found = {name: c["status"] for name, c in checks.items() if c["status"] != "ok"}
    if AS_ROOT and found.get("user") == "warn":
        del found["user"]
    return found


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder under /tmp that the unprivileged user may enter (pytest's tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="photo-relay-doctor-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def unprivileged() -> str | None:
    """Run as `nobody` when the tests run as root (root ignores file permissions)."""
    if not AS_ROOT:
        return None
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no user `nobody` to drop to")
    # The checkout (and so the command) may sit in a folder only root can enter.
    try:
        probe = subprocess.run(
            [str(BIN / "photo-relay"), "--version"],
            capture_output=True,
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            timeout=60,
        )
    except PermissionError:  # the interpreter itself lies where `nobody` may not go
        probe = None
    if probe is None or probe.returncode != 0:
        pytest.skip("running as root, and `nobody` cannot run this checkout's photo-relay")
    return "nobody"


def give_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for item in [path, *path.rglob("*")]:
        os.chown(item, entry.pw_uid, entry.pw_gid)


def plenty_of_disk(path: Path) -> bool:
    return shutil.disk_usage(path).free > COMFORT_MARGIN_BYTES * 2


# -- the command ---------------------------------------------------------------------------


def test_doctor_passes_a_healthy_setup(shared_dir: Path) -> None:
    """On a working setup every check is ok and the exit code is 0, even with --strict."""
    user = unprivileged()
    make_healthy_setup(shared_dir / "data")
    give_to(shared_dir / "data", user)
    code, checks = run_doctor(shared_dir / "data", "--strict", as_user=user)
    if not plenty_of_disk(shared_dir):
        pytest.skip("this disk has less free space than the comfortable margin")
    assert {n: c["status"] for n, c in checks.items() if c["status"] != "ok"} == {}
    assert code == 0
    assert {"configuration", "user", "data folder", "admin token", "database"} <= set(checks)
    assert {"destination", "clock", "device phone"} <= set(checks)
    assert not list((shared_dir / "data" / "library").iterdir()), "the probe was left behind"


def test_doctor_warns_when_run_as_root(tmp_path: Path) -> None:
    """Run as root, doctor warns that permission problems cannot show."""
    if not AS_ROOT:
        pytest.skip("the tests do not run as root")
    make_healthy_setup(tmp_path / "data")
    code, checks = run_doctor(tmp_path / "data")
    assert checks["user"]["status"] == "warn"
    assert "photo-relay doctor" in checks["user"]["fix"]
    assert code == 0


def test_doctor_reports_a_library_folder_it_may_not_write(shared_dir: Path) -> None:
    """A library folder photo-relay may not write is a failed destination, with the fix."""
    user = unprivileged()
    make_healthy_setup(shared_dir / "data")
    give_to(shared_dir / "data", user)
    library = shared_dir / "library"
    library.mkdir(mode=0o755)  # owned by root, or read-only for a normal user
    if user is None:
        library.chmod(0o555)
    code, checks = run_doctor(shared_dir / "data", as_user=user, target_folder=str(library))
    assert problems(checks) == {"destination": "fail"}
    assert str(library) in checks["destination"]["message"]
    assert "PHOTO_RELAY_TARGET_FOLDER" in checks["destination"]["fix"]
    assert code == 1


def test_doctor_reports_a_library_path_blocked_by_a_file(tmp_path: Path) -> None:
    """A library path that runs through a file cannot be made; the fix names the setting."""
    make_healthy_setup(tmp_path / "data")
    (tmp_path / "photos").write_text("not a folder")
    code, checks = run_doctor(tmp_path / "data", target_folder=str(tmp_path / "photos" / "lib"))
    assert problems(checks) == {"destination": "fail"}
    assert "PHOTO_RELAY_TARGET_FOLDER" in checks["destination"]["message"]
    assert code == 1


def test_doctor_reports_the_spool_reserve_not_met(tmp_path: Path) -> None:
    """Less free disk than PHOTO_RELAY_MIN_FREE_BYTES fails, naming the setting to change."""
    make_healthy_setup(tmp_path / "data")
    code, checks = run_doctor(tmp_path / "data", min_free_bytes=str(10**18))
    assert checks[ROOM_CHECK]["status"] == "fail"
    assert "507" in checks[ROOM_CHECK]["message"]
    assert "PHOTO_RELAY_MIN_FREE_BYTES" in checks[ROOM_CHECK]["fix"]
    assert code == 1


def test_doctor_warns_when_the_spool_disk_is_close_to_the_reserve(tmp_path: Path) -> None:
    """Free space above the reserve but within the comfortable margin is a warning."""
    make_healthy_setup(tmp_path / "data")
    reserve = shutil.disk_usage(tmp_path).free - COMFORT_MARGIN_BYTES // 2
    if reserve <= 0:
        pytest.skip("this disk has less free space than the comfortable margin")
    code, checks = run_doctor(tmp_path / "data", min_free_bytes=str(reserve))
    assert checks[ROOM_CHECK]["status"] == "warn"
    assert checks[ROOM_CHECK]["fix"]
    assert code == 0


def test_doctor_reports_a_database_that_is_not_a_database(tmp_path: Path) -> None:
    """A database file overwritten with junk fails, and the fix says how to recover."""
    make_healthy_setup(tmp_path / "data")
    database = tmp_path / "data" / "photo-relay.db"
    database.write_bytes(b"this is no SQLite file" * 400)
    code, checks = run_doctor(tmp_path / "data")
    assert checks["database"]["status"] == "fail"
    assert "damaged" in checks["database"]["message"]
    assert "backup" in checks["database"]["fix"]
    assert code == 1


def test_doctor_reports_a_damaged_page_in_the_database(tmp_path: Path) -> None:
    """A damaged page inside a valid-looking database is found by quick_check."""
    data_dir = tmp_path / "data"
    make_healthy_setup(data_dir)
    conn = sqlite3.connect(data_dir / "photo-relay.db")
    with conn:  # enough rows for the devices table to span many pages
        conn.executemany(
            "INSERT INTO devices (name, token_hash, created_at) VALUES (?, ?, ?)",
            [(f"tablet-{n}", hash_token(f"token-{n}"), iso(datetime.now(UTC))) for n in range(300)],
        )
    conn.close()  # the last connection's close moves the WAL into the file we damage
    database = data_dir / "photo-relay.db"
    damaged = bytearray(database.read_bytes())
    damaged[4096 * 3 : 4096 * 3 + 200] = b"\xff" * 200
    database.write_bytes(bytes(damaged))
    code, checks = run_doctor(data_dir)
    assert checks["database"]["status"] == "fail"
    assert "damaged" in checks["database"]["message"]
    assert code == 1


def test_doctor_reports_a_database_from_a_newer_release(tmp_path: Path) -> None:
    """A database migrated by a newer photo-relay fails: this one must not touch it."""
    make_healthy_setup(tmp_path / "data")
    with sqlite3.connect(tmp_path / "data" / "photo-relay.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    code, checks = run_doctor(tmp_path / "data")
    assert checks["database"]["status"] == "fail"
    assert "newer photo-relay" in checks["database"]["message"]
    assert code == 1


def test_doctor_reports_a_database_it_may_not_read(shared_dir: Path) -> None:
    """A database file another user owns fails with a chown fix, not a restore."""
    user = unprivileged()
    data_dir = shared_dir / "data"
    make_healthy_setup(data_dir)
    give_to(data_dir, user)
    database = data_dir / "photo-relay.db"
    if user is not None:
        os.chown(database, 0, 0)  # root's, private: `nobody` may not read it
    database.chmod(0o600 if user else 0o000)
    code, checks = run_doctor(data_dir, as_user=user)
    assert checks["database"]["status"] == "fail"
    assert "not readable" in checks["database"]["message"]
    assert "chown" in checks["database"]["fix"]
    assert code == 1


def test_doctor_reports_an_admin_token_file_others_can_read(tmp_path: Path) -> None:
    """An admin token file with mode 0644 fails; the fix is the chmod to run."""
    make_healthy_setup(tmp_path / "data")
    token_file = tmp_path / "data" / "admin-token"
    token_file.chmod(0o644)
    code, checks = run_doctor(tmp_path / "data")
    assert problems(checks) == {"admin token": "fail"}
    assert "0644" in checks["admin token"]["message"]
    assert checks["admin token"]["fix"] == f"Make it private: `chmod 600 {token_file}`."
    assert code == 1


def set_last_seen(data_dir: Path, name: str, when: datetime | None) -> None:
    with sqlite3.connect(data_dir / "photo-relay.db") as conn:
        conn.execute(
            "UPDATE devices SET last_seen_at = ? WHERE name = ?",
            (iso(when) if when else None, name),
        )


def test_doctor_warns_about_devices_never_seen_or_silent_for_days(shared_dir: Path) -> None:
    """A device never seen and one silent past the limit are warnings with what to check."""
    user = unprivileged()
    data_dir = shared_dir / "data"
    make_healthy_setup(data_dir, device="phone")
    make_healthy_setup(data_dir, device="ipad")
    set_last_seen(data_dir, "phone", datetime.now(UTC) - timedelta(days=10))
    set_last_seen(data_dir, "ipad", None)
    give_to(data_dir, user)
    code, checks = run_doctor(data_dir, as_user=user)
    assert checks["device phone"]["status"] == "warn"
    assert "10 days ago" in checks["device phone"]["message"]
    assert "Shortcut" in checks["device phone"]["fix"]
    assert checks["device ipad"]["status"] == "warn"
    assert "never" in checks["device ipad"]["message"]
    assert code == 0  # warnings alone
    strict_code, _ = run_doctor(data_dir, "--strict", as_user=user)
    assert strict_code == 1
    _, relaxed = run_doctor(data_dir, as_user=user, device_quiet_days="30")
    assert relaxed["device phone"]["status"] == "ok"


def test_doctor_reports_a_clock_that_went_back(tmp_path: Path) -> None:
    """Records dated after "now" mean the clock went back: a failure with the NTP fix."""
    data_dir = tmp_path / "data"
    make_healthy_setup(data_dir)
    with sqlite3.connect(data_dir / "photo-relay.db") as conn:
        conn.execute("UPDATE journal SET at = ?", (iso(datetime.now(UTC) + timedelta(days=2)),))
    code, checks = run_doctor(data_dir)
    assert checks["clock"]["status"] == "fail"
    assert "went back" in checks["clock"]["message"]
    assert "timedatectl" in checks["clock"]["fix"]
    assert code == 1


def test_doctor_reports_a_clock_in_the_distant_past(tmp_path: Path) -> None:
    """A clock reading 2001 (a Pi booted without network time) fails, records or not."""
    make_healthy_setup(tmp_path / "data")
    checks = asyncio.run(
        diagnose(tmp_path / "data", clock=lambda: datetime(2001, 1, 1, tzinfo=UTC))
    )
    clock = next(c for c in checks if c.name == "clock")
    assert clock.status == "fail"
    assert "before photo-relay existed" in clock.message
    assert clock.fix and "timedatectl" in clock.fix


def test_clock_check_compares_with_the_destination_servers_time() -> None:
    """A destination server clock far from ours is a warning; a close one is fine."""
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert check_clock(now, now, now - timedelta(hours=1)).status == "warn"
    assert check_clock(now, now, now - timedelta(seconds=30)).status == "ok"
    assert check_clock(now, None, None).status == "ok"


class ClockedLocalTarget(LocalTarget):
    """A local folder that also reports a server time, as a remote target reads from `Date`."""

    def __init__(self, root: Path, server_now: datetime) -> None:
        super().__init__(root)
        self.server_now = server_now

    async def server_time(self) -> datetime | None:
        return self.server_now


def test_destination_check_passes_on_the_servers_time(tmp_path: Path) -> None:
    """A target that can tell its server's time hands it to the clock check."""
    server_now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    result, server_time = asyncio.run(
        check_destination(ClockedLocalTarget(tmp_path / "library", server_now))
    )
    assert result.status == "ok"
    assert server_time == server_now
    _, plain_time = asyncio.run(check_destination(LocalTarget(tmp_path / "library")))
    assert plain_time is None


def test_doctor_reports_invalid_settings_by_variable_name(tmp_path: Path) -> None:
    """A setting that does not parse is one failed check naming the variable; exit 1."""
    code, checks = run_doctor(tmp_path / "data", port="eighty")
    assert list(checks) == ["configuration"]
    assert "PHOTO_RELAY_PORT" in checks["configuration"]["message"]
    assert checks["configuration"]["fix"]
    assert code == 1


def test_doctor_prints_problems_and_fixes_in_plain_words(tmp_path: Path) -> None:
    """Without --json, each problem is a FAIL line followed by its Fix line."""
    make_healthy_setup(tmp_path / "data")
    (tmp_path / "data" / "admin-token").chmod(0o640)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_RELAY_")}
    env.update(PHOTO_RELAY_DATA_DIR=str(tmp_path / "data"), PHOTO_RELAY_MIN_FREE_BYTES="0")
    result = subprocess.run(
        [str(BIN / "photo-relay"), "doctor"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("FAIL  admin token"))
    assert lines[failed + 1].strip().startswith("Fix: Make it private: `chmod 600")
    assert "1 problem(s)" in result.stdout
    assert result.returncode == 1


# -- the status endpoint reuses the checks -------------------------------------------------


def test_status_lists_the_checks_of_a_healthy_service(service: Service) -> None:
    """GET /v1/status keeps its fields and adds the doctor's passive checks, all ok."""
    with service.device() as device:
        device.get("/v1/items/" + "0" * 64)  # any request marks the device as seen
    with service.admin() as admin:
        report = admin.get("/v1/status").json()
    assert {"counts", "spool_free_bytes", "relay", "target"} <= set(report)
    checks = {c["name"]: c for c in report["checks"]}
    assert {"data folder", "admin token", "database", "destination", "clock"} <= set(checks)
    if not plenty_of_disk(service.settings.data_dir):
        checks.pop(ROOM_CHECK)
    assert {n: c["status"] for n, c in checks.items() if c["status"] != "ok"} == {}
    assert checks["device phone"]["status"] == "ok"


def test_status_check_shows_a_destination_the_relay_cannot_use(tmp_path: Path) -> None:
    """With a library path blocked by a file, the status report's destination check fails."""
    (tmp_path / "photos").write_text("not a folder")
    settings = make_settings(tmp_path, target_folder=str(tmp_path / "photos" / "lib"))
    server = ThreadedService(settings)
    server.start()
    try:
        admin_token = server.app_services.admin_token
        report = httpx.get(
            f"{server.base_url}/v1/status",
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=30,
        ).json()
    finally:
        server.stop()
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["destination"]["status"] == "fail"
    assert "PHOTO_RELAY_TARGET_FOLDER" in checks["destination"]["message"]
    assert checks["devices"]["status"] == "warn"  # no device added to this one
