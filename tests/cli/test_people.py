"""`person` and `destination` commands (issue 18): people own devices and destinations."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from click.testing import CliRunner

from app.cli.commands import main
from app.observe.doctor import diagnose
from app.store.db import Database
from app.store.people import People, password_file
from app.store.state import State
from app.tokens import hash_token
from tests.cli.test_cli import photo_relay_in_process
from tests.conftest import add_device
from tests.support.servers import find_free_port


def test_people_get_devices_and_destinations_and_a_password_stays_private(
    tmp_path: Path,
) -> None:
    """The installation's own person is `me`; a new person gets a device and two
    destinations; the WebDAV password is kept in a 0600 file and never printed."""
    add_device(tmp_path, "old-phone")  # made before there were people: it is me's
    assert photo_relay_in_process("person", "add", "anna", data_dir=tmp_path).exit_code == 0
    again = photo_relay_in_process("person", "add", "ANNA", data_dir=tmp_path)
    assert again.exit_code == 1 and "already exists" in again.output
    added = photo_relay_in_process(
        "device", "add", "anna-iphone", "--person", "anna", data_dir=tmp_path
    )
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    nobody = photo_relay_in_process("device", "add", "x", "--person", "zoe", data_dir=tmp_path)
    assert nobody.exit_code == 1 and "person add zoe" in nobody.output
    webdav = CliRunner().invoke(  # the password typed at the hidden prompt
        main,
        [
            "destination",
            "add",
            "--person",
            "anna",
            "webdav",
            "https://dav.example.org/a/",
            "--user",
            "anna",
        ],
        input="secret-pw\n",
        env={"PHOTO_RELAY_DATA_DIR": str(tmp_path)},
    )
    assert webdav.exit_code == 0, webdav.output
    disk = tmp_path / "disk"
    local = photo_relay_in_process(
        "destination", "add", "--person", "anna", "local", str(disk), data_dir=tmp_path
    )
    assert local.exit_code == 0, local.output
    bad = photo_relay_in_process(
        "destination", "add", "--person", "anna", "local", str(disk),
        "--path-template", "{year}/photo", data_dir=tmp_path,
    )  # fmt: skip
    assert bad.exit_code == 1 and "{name}" in bad.output
    assert "secret-pw" not in webdav.output

    listing = photo_relay_in_process("destination", "list", data_dir=tmp_path).stdout
    assert [line.split("\t")[:3] for line in listing.splitlines()] == [
        ["1", "me", "settings"],
        ["2", "anna", "webdav"],
        ["3", "anna", "local"],
    ]
    people = photo_relay_in_process("person", "list", data_dir=tmp_path).stdout.splitlines()
    assert people == [
        "me\t1 device(s)\t1 destination(s)",
        "anna\t1 device(s)\t2 destination(s)",
    ]
    secret = password_file(tmp_path, 2)
    assert secret.read_text() == "secret-pw"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("photo-relay.db*"))
    assert b"secret-pw" not in stored
    db = Database(tmp_path / "photo-relay.db")
    try:
        device = State(db).device_for_token_hash(hash_token(token))
        assert device is not None and device.person_id == People(db).person_id("anna")
    finally:
        db.close()


def test_doctor_checks_every_destination_of_every_person(tmp_path: Path) -> None:
    """Each added destination gets its own finding, named with its number and person: a
    folder that takes the probe file is ok, a server nobody answers at fails."""
    add_device(tmp_path, "old-phone")
    db = Database(tmp_path / "photo-relay.db")
    try:
        people = People(db)
        people.add_person("anna")
        people.add_destination("anna", "local", str(tmp_path / "disk"))
        people.add_destination(
            "anna",
            "webdav",
            f"http://127.0.0.1:{find_free_port()}/dav/",
            "anna",
            password="pw",
            data_dir=tmp_path,
        )
    finally:
        db.close()
    (tmp_path / "disk").mkdir()
    checks = {c.name: c for c in asyncio.run(diagnose(tmp_path))}
    assert checks["destination 2 (anna)"].status == "ok"
    assert checks["destination 3 (anna)"].status == "fail"
    assert "destination" in checks  # the configured one, as before


def test_status_shows_people_only_when_there_is_more_than_one(tmp_path: Path) -> None:
    """One person's status is what it was; a second person adds a block per person."""
    add_device(tmp_path, "old-phone")
    alone = photo_relay_in_process("status", data_dir=tmp_path)
    assert alone.exit_code == 0, alone.output
    assert "People:" not in alone.output
    assert photo_relay_in_process("person", "add", "anna", data_dir=tmp_path).exit_code == 0
    added = photo_relay_in_process(
        "device", "add", "anna-iphone", "--person", "anna", data_dir=tmp_path
    )
    assert added.exit_code == 0, added.output
    two = photo_relay_in_process("status", data_dir=tmp_path)
    assert two.exit_code == 0, two.output
    block = two.output.split("People:\n", 1)[1]
    assert "  me: no files yet (1 destination(s))" in block
    assert "  anna: no files yet (0 destination(s))" in block
    assert "    anna-iphone: last backup never" in block
