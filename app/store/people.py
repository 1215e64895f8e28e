"""People and their destinations: who owns which devices, and where their photos go.

A person owns devices and destinations. Destination 1 is the one in the settings (kind
`settings`), owned by the person the installation had before there were several ("me").
Others are a folder on this machine (`local`) or a WebDAV server (`webdav`); a WebDAV
password is kept in a file of its own (0600) beside the database, never in it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from app.clock import iso, now
from app.errors import ConfigurationError, Conflict, NotFound
from app.naming import remote_path
from app.receipts import ItemState
from app.store.db import Database
from app.store.deliveries import refresh_item
from app.store.journal import write_journal

__all__ = [
    "DEFAULT_PERSON",
    "AddedDestination",
    "DestinationInfo",
    "People",
    "PersonInfo",
    "nextcloud_credentials_file",
    "password_file",
    "person_destinations",
    "read_destinations",
    "read_people_devices",
]

DEFAULT_PERSON = 1
DestinationKind = Literal["settings", "local", "webdav", "nextcloud"]


@dataclass(frozen=True)
class PersonInfo:
    id: int
    name: str
    devices: int
    destinations: int


@dataclass(frozen=True)
class DestinationInfo:
    id: int
    person: str
    kind: DestinationKind
    location: str | None
    user: str | None
    path_template: str | None = None
    folder: str | None = None  # NextCloud: the photos folder in the person's files

    def describe(self) -> str:
        if self.kind == "settings":
            return "the destination in the settings"
        who = f" as {self.user}" if self.user else ""
        return f"{self.location}{who}"


def password_file(data_dir: Path, destination: int) -> Path:
    """Where a WebDAV destination's password is kept (0600)."""
    return data_dir / "destinations" / f"{destination}.password"


def nextcloud_credentials_file(data_dir: Path, person: str) -> Path:
    """Where a person's NextCloud app password is kept (`nextcloud login --person`, 0600)."""
    return data_dir / "destinations" / f"{person.lower()}-nextcloud.json"


def person_destinations(conn: sqlite3.Connection, person_id: int) -> list[tuple[int, str | None]]:
    """A person's destinations with each one's own path template (None: the settings')."""
    rows = conn.execute(
        "SELECT id, path_template FROM destinations WHERE person_id = ? ORDER BY id",
        (person_id,),
    ).fetchall()
    return [(int(r["id"]), r["path_template"]) for r in rows]


def read_destinations(conn: sqlite3.Connection) -> list[DestinationInfo]:
    rows = conn.execute(
        "SELECT destinations.*, people.name AS person FROM destinations "
        "JOIN people ON people.id = destinations.person_id ORDER BY destinations.id"
    ).fetchall()
    return [
        DestinationInfo(
            r["id"],
            r["person"],
            r["kind"],
            r["location"],
            r["user"],
            r["path_template"],
            r["folder"],
        )
        for r in rows
    ]


def read_people_devices(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str | None]]]:
    """Each person's active devices with when each was last seen (its last backup)."""
    people: dict[str, list[tuple[str, str | None]]] = {
        r["name"]: [] for r in conn.execute("SELECT name FROM people ORDER BY id")
    }
    for row in conn.execute(
        "SELECT people.name AS person, devices.name, devices.last_seen_at FROM devices "
        "JOIN people ON people.id = devices.person_id WHERE devices.revoked_at IS NULL "
        "ORDER BY devices.name"
    ):
        people[row["person"]].append((row["name"], row["last_seen_at"]))
    return people


def _person_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(
            f"No person called {name!r}; see `photo-relay person list`, or add them with "
            f"`photo-relay person add {name}`."
        )
    return int(row["id"])


class People:
    """People and destinations, on top of one `Database` (each method one transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_person(self, name: str) -> PersonInfo:
        def add(conn: sqlite3.Connection) -> PersonInfo:
            if conn.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"A person called {name!r} already exists.")
            cursor = conn.execute(
                "INSERT INTO people (name, created_at) VALUES (?, ?)", (name, iso(now()))
            )
            write_journal(conn, "person.added", f"Person {name!r} was added.")
            return PersonInfo(int(cursor.lastrowid or 0), name, 0, 0)

        return self.db.call(add)

    def list_people(self) -> list[PersonInfo]:
        def read(conn: sqlite3.Connection) -> list[PersonInfo]:
            rows = conn.execute(
                "SELECT people.id, people.name, "
                "(SELECT COUNT(*) FROM devices WHERE devices.person_id = people.id "
                " AND revoked_at IS NULL) AS devices, "
                "(SELECT COUNT(*) FROM destinations WHERE person_id = people.id) AS dests "
                "FROM people ORDER BY people.id"
            ).fetchall()
            return [PersonInfo(r["id"], r["name"], r["devices"], r["dests"]) for r in rows]

        return self.db.call(read)

    def person_id(self, name: str) -> int:
        return self.db.call(lambda conn: _person_id(conn, name))

    def add_destination(
        self,
        person: str,
        kind: DestinationKind,
        location: str,
        user: str | None = None,
        *,
        password: str | None = None,
        data_dir: Path | None = None,
        path_template: str | None = None,
        folder: str | None = None,
    ) -> AddedDestination:
        """A further destination for `person`, named by `path_template` (None: the
        settings' template). Photos they send from now on go there, and so do those they
        sent before whose copy is still kept here: a second copy of everything."""
        if path_template is not None:
            check_template(path_template)

        def add(conn: sqlite3.Connection) -> AddedDestination:
            person_id = _person_id(conn, person)
            cursor = conn.execute(
                "INSERT INTO destinations (person_id, kind, location, user, path_template, "
                "folder, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (person_id, kind, location, user, path_template, folder, iso(now())),
            )
            number = int(cursor.lastrowid or 0)
            if password is not None and data_dir is not None:
                _write_secret(password_file(data_dir, number), password)
            write_journal(
                conn,
                "destination.added",
                f"{person}'s photos now also go to {location}.",
            )
            caught_up, not_kept = _catch_up(conn, person_id, number, path_template)
            info = DestinationInfo(number, person, kind, location, user, path_template, folder)
            return AddedDestination(info, caught_up, not_kept)

        return self.db.call(add)

    def list_destinations(self) -> list[DestinationInfo]:
        return self.db.call(read_destinations)


@dataclass(frozen=True)
class AddedDestination:
    """A new destination, and how many earlier photos now go there too (`caught_up`) or
    cannot, their copy here already removed by retention (`not_kept`)."""

    info: DestinationInfo
    caught_up: int
    not_kept: int


def _catch_up(
    conn: sqlite3.Connection, person_id: int, destination: int, template: str | None
) -> tuple[int, int]:
    """Give every item the person sent, whose copy is still kept here, a delivery to the
    new destination; (how many, how many could not: their home copy is gone)."""
    rows = conn.execute(
        "SELECT items.sha256, items.planned_path, items.captured_local, items.kind, "
        "items.spool_removed_at, (SELECT devices.name FROM item_senders AS s "
        " LEFT JOIN devices ON devices.id = s.device_id WHERE s.sha256 = items.sha256 "
        " AND s.person_id = ? ORDER BY s.first_at LIMIT 1) AS device "
        "FROM items WHERE items.sha256 IN "
        "(SELECT sha256 FROM item_senders WHERE person_id = ?)",
        (person_id, person_id),
    ).fetchall()
    caught_up = not_kept = 0
    for row in rows:
        if row["spool_removed_at"] is not None:
            not_kept += 1
            continue
        planned = row["planned_path"]
        if template is not None:
            planned = remote_path(
                template,
                captured_local=datetime.fromisoformat(row["captured_local"]),
                name=planned.rpartition("/")[2],
                sha256=row["sha256"],
                kind=row["kind"],
                device=row["device"] or "import",
            )
        conn.execute(
            "INSERT INTO deliveries (sha256, destination_id, state, planned_path, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (row["sha256"], destination, ItemState.RECEIVED, planned, iso(now())),
        )
        refresh_item(conn, row["sha256"])
        caught_up += 1
    return caught_up, not_kept


def check_template(template: str) -> None:
    """Refuse a path template that cannot name files (as the settings' one is checked)."""
    if not any(field in template for field in ("{name}", "{stem}", "{sha8}")):
        raise ConfigurationError("A path template must contain {name}, {stem} or {sha8}.")
    remote_path(
        template,
        captured_local=datetime(2024, 5, 1, 10, 0),
        name="IMG_0001.JPG",
        sha256="0" * 64,
        kind="photo",
        device="phone",
    )


def _write_secret(path: Path, secret: str) -> None:
    """Write a password readable by this user only (0600 from the start, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
        handle.flush()
        os.fsync(handle.fileno())
