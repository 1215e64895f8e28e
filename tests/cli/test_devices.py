"""A lost phone: revoke it and add it again under its name, or give it a new token in one step.

The commands run for real (subprocess) against a running service sharing the data folder;
the migration that frees revoked names runs on a database made by the previous schema.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from app.errors import Conflict
from app.store.db import MIGRATIONS, Database
from app.store.state import State
from app.tokens import hash_token
from tests.cli.test_cli import TOKEN, photo_relay
from tests.conftest import Service

ITEM = f"/v1/items/{'a' * 64}"


def answer(service: Service, token: str) -> int:
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        return client.get(ITEM, headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_revoked_name_can_be_added_again(service: Service) -> None:
    """revoke phone, then device add phone: a new token that works; the old one stays out."""
    data_dir = service.settings.data_dir
    assert photo_relay("device", "revoke", "phone", data_dir=data_dir).returncode == 0
    again = photo_relay("device", "add", "phone", data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    token = again.stdout.strip()
    assert TOKEN.fullmatch(token)
    assert answer(service, token) == 404
    assert answer(service, service.device_token) == 401
    listing = photo_relay("device", "list", data_dir=data_dir).stdout.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [
        ["phone", "revoked"],
        ["phone", "active"],
    ]
    twice = photo_relay("device", "add", "PHONE", data_dir=data_dir)
    assert twice.returncode == 1 and "already exists" in twice.stderr
    assert "device rotate" in twice.stderr


def test_rotate_issues_a_new_token_and_refuses_the_old_one_at_once(service: Service) -> None:
    """device rotate prints only the new token; the running service takes it and refuses
    the old one from the next request on; the device keeps its name and history."""
    data_dir = service.settings.data_dir
    assert answer(service, service.device_token) == 404
    rotated = photo_relay("device", "rotate", "phone", data_dir=data_dir)
    assert rotated.returncode == 0, rotated.stderr
    assert TOKEN.fullmatch(rotated.stdout.rstrip("\n")) and rotated.stdout.count("\n") == 1
    assert "old one no longer works" in rotated.stderr
    new = rotated.stdout.strip()
    assert answer(service, service.device_token) == 401
    assert answer(service, new) == 404
    listing = photo_relay("device", "list", data_dir=data_dir).stdout.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [["phone", "active"]]
    stored = b"".join(p.read_bytes() for p in data_dir.glob("photo-relay.db*"))
    assert new.encode() not in stored


def test_rotating_an_unknown_or_revoked_device_is_a_clear_error(service: Service) -> None:
    """rotate needs an active device: otherwise it says so, prints no token, changes nothing."""
    data_dir = service.settings.data_dir
    ghost = photo_relay("device", "rotate", "ghost", data_dir=data_dir)
    assert ghost.returncode == 1 and ghost.stdout == ""
    assert "No active device called 'ghost'" in ghost.stderr
    assert "device add ghost" in ghost.stderr
    photo_relay("device", "revoke", "phone", data_dir=data_dir)
    assert photo_relay("device", "rotate", "phone", data_dir=data_dir).returncode == 1


def old_database(path: Path) -> None:
    """A database as the schema before names became reusable left it: a revoked device
    with an item, an active one with an item."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    for number, migration in enumerate(MIGRATIONS[:4], start=1):
        conn.executescript(f"BEGIN; {migration()}; PRAGMA user_version={number}; COMMIT;")
    conn.executescript(
        """
        INSERT INTO devices (id, name, token_hash, created_at, revoked_at)
            VALUES (1, 'phone', 'old-hash', '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z'),
                   (2, 'tablet', 'tablet-hash', '2026-01-01T00:00:00Z', NULL);
        INSERT INTO items (sha256, size, original_name, kind, captured_at, captured_local,
                           captured_source, device_id, received_at, state, planned_path)
            VALUES ('a', 1, 'a.jpg', 'photo', 't', 't', 'exif', 1, 't', 'verified', 'a.jpg'),
                   ('b', 1, 'b.jpg', 'photo', 't', 't', 'exif', 2, 't', 'verified', 'b.jpg');
        """
    )
    conn.close()


def test_the_migration_frees_revoked_names_and_keeps_every_device_and_item(
    tmp_path: Path,
) -> None:
    """On a database of the previous schema: devices, their ids and items' links survive;
    the revoked name is free again; an active name stays taken."""
    path = tmp_path / "photo-relay.db"
    old_database(path)
    db = Database(path)
    try:
        state = State(db)
        assert [(d.name, d.revoked) for d in state.list_devices()] == [
            ("phone", True),
            ("tablet", False),
        ]
        state.add_device("Phone", hash_token("new"))
        assert state.device_for_token_hash(hash_token("new")) is not None
        rows = db.call(lambda c: c.execute("SELECT sha256, device_id FROM items").fetchall())
        assert sorted(tuple(r) for r in rows) == [("a", 1), ("b", 2)]
        assert db.call(lambda c: c.execute("PRAGMA foreign_key_check").fetchall()) == []
        version = db.call(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
        assert version == len(MIGRATIONS)
    finally:
        db.close()
    db = Database(path)
    try:
        with pytest.raises(Conflict, match="already exists"):
            State(db).add_device("TABLET", hash_token("x"))
    finally:
        db.close()
