"""Deliveries and people (issue 18): the upgrade turns every item into one delivery to the
configured destination, keeping it as it was, and the installation into one person; an
item is verified only when all its deliveries are."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

from app.clock import now
from app.receipts import ItemState
from app.store.chunk_progress import ChunkProgress
from app.store.db import MIGRATIONS, Database, schema_version
from app.store.deliveries import DEFAULT_DESTINATION, read_delivery_proofs
from app.store.people import DEFAULT_PERSON, People
from app.store.retention import remove_spool_copy
from app.store.spool import Spool
from app.store.state import State
from tests.store.test_retention import stored_item

BEFORE = 7  # the migrations of the release before deliveries and people

# (sha256, state, remote_path, attempts, next_attempt_at, last_error, verified_at, etag)
OLD_ITEMS = [
    ("1" * 64, "received", None, 0, "2026-01-01T00:00:00+00:00", None, None, None),
    ("2" * 64, "relaying", None, 1, "2026-01-01T00:00:00+00:00", None, None, None),
    ("3" * 64, "retry", None, 2, "2026-01-01T00:00:00+00:00", "It did not answer.", None, None),
    ("4" * 64, "verified", "2026/01/d.jpg", 1, None, None, "2026-01-02T00:00:00+00:00", '"e4"'),
    ("5" * 64, "failed", None, 5, None, "The server refused it.", None, None),
    ("6" * 64, "damaged", None, 1, None, "The home copy is short.", None, None),
]


def database_of_the_release_before(path: Path) -> None:
    """The schema the release before made, with a device, a backup record and an item in
    each state."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    for number, migration in enumerate(MIGRATIONS[:BEFORE], start=1):
        conn.executescript(f"BEGIN; {migration()}; PRAGMA user_version={number}; COMMIT;")
    conn.execute(
        "INSERT INTO devices (id, name, token_hash, created_at) VALUES (1, 'anna-phone', 'h', 't')"
    )
    for sha, state, remote, attempts, due, error, verified_at, etag in OLD_ITEMS:
        conn.execute(
            "INSERT INTO items (sha256, size, original_name, kind, captured_at, captured_local,"
            " captured_source, device_id, received_at, state, planned_path, remote_path,"
            " attempts, next_attempt_at, last_error, verified_at, verified_by, remote_etag,"
            " remote_file_id)"
            " VALUES (?, 3, 'IMG.JPG', 'photo', '2026-01-01T10:00:00', '2026-01-01T10:00:00',"
            " 'exif', 1, '2026-01-01T00:00:00+00:00', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sha,
                state,
                f"2026/01/{sha[0]}.jpg",
                remote,
                attempts,
                due,
                error,
                verified_at,
                "size+sha256-readback" if verified_at else None,
                etag,
                "77" if etag else None,
            ),
        )
    # Problems counted towards giving up: two for the one waiting; one since the failed one
    # was put back by hand.
    for sha, event in (
        ("3" * 64, "relay.problem"),
        ("3" * 64, "relay.problem"),
        ("5" * 64, "relay.problem"),
        ("5" * 64, "relay.requeued"),
        ("5" * 64, "relay.problem"),
    ):
        conn.execute(
            "INSERT INTO journal (at, sha256, event, message) VALUES ('t', ?, ?, 'm')",
            (sha, event),
        )
    conn.execute(
        "INSERT INTO chunked_uploads (sha256, upload_id, destination, total_size, chunk_size,"
        " chunks_done, updated_at) VALUES (?, 'web-1', 'https://cloud/x', 9, 3, 2, 't')",
        ("2" * 64,),
    )
    conn.execute(
        "INSERT INTO backup_photos (device_id, name, taken, size, sha256, recorded_at)"
        " VALUES (1, 'IMG.JPG', '2026-01-01T10:00:00', 3, ?, 't')",
        ("4" * 64,),
    )
    conn.close()


def items_rows(db: Database) -> list[tuple[object, ...]]:
    return db.call(lambda c: [tuple(r) for r in c.execute("SELECT * FROM items ORDER BY sha256")])


def test_the_upgrade_gives_every_item_one_delivery_as_it_was(tmp_path: Path) -> None:
    """Every item, device and receipt survives; each item has one delivery to the
    configured destination with the relay columns it had; the proofs read them."""
    path = tmp_path / "photo-relay.db"
    database_of_the_release_before(path)
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        before = [tuple(r) for r in conn.execute("SELECT * FROM items ORDER BY sha256")]
    db = Database(path)
    try:
        assert items_rows(db) == before  # the item rows (the receipts) are untouched
        deliveries = db.call(
            lambda c: c.execute(
                "SELECT sha256, destination_id, state, remote_path, attempts, next_attempt_at,"
                " last_error, verified_at, remote_etag FROM deliveries ORDER BY sha256"
            ).fetchall()
        )
        assert [tuple(r) for r in deliveries] == [
            (sha, DEFAULT_DESTINATION, state, remote, attempts, due, error, verified_at, etag)
            for sha, state, remote, attempts, due, error, verified_at, etag in OLD_ITEMS
        ]
        state = State(db)
        assert [d.name for d in state.list_devices()] == ["anna-phone"]
        # The installation becomes one person owning every device, item and the
        # configured destination.
        people = People(db)
        assert [(p.name, p.devices, p.destinations) for p in people.list_people()] == [("me", 1, 1)]
        assert [(d.id, d.kind) for d in people.list_destinations()] == [(1, "settings")]
        for sha, *_ in OLD_ITEMS:
            old = state.get_item(sha, person=DEFAULT_PERSON)
            assert old is not None
            assert [(x.person, x.device) for x in old.senders] == [("me", "anna-phone")]
            assert [d.destination for d in old.deliveries] == [DEFAULT_DESTINATION]
        proofs = read_delivery_proofs(db, [row[0] for row in OLD_ITEMS])
        assert [sha for sha, proof in proofs.items() if proof.verified] == ["4" * 64]
        assert db.call(lambda c: c.execute("PRAGMA foreign_key_check").fetchall()) == []
        with sqlite3.connect(path) as conn:
            assert schema_version(conn) == len(MIGRATIONS) > BEFORE
        # The chunked upload in progress resumes at the configured destination only.
        resumed = asyncio.run(ChunkProgress(db).load("2" * 64))
        assert resumed is not None and (resumed.upload_id, resumed.chunks_done) == ("web-1", 2)
        assert asyncio.run(ChunkProgress(db, 2).load("2" * 64)) is None
        asyncio.run(ChunkProgress(db, 2).save(replace(resumed, upload_id="web-2")))
        again = asyncio.run(ChunkProgress(db).load("2" * 64))
        assert again is not None and again.upload_id == "web-1"
        assert [state.count_problems(sha) for sha in ("3" * 64, "5" * 64, "1" * 64)] == [2, 1, 0]
        # The relay carries on where the old one stopped: the interrupted copy and the
        # due ones are claimed; the verified, failed and damaged ones are not.
        assert state.release_interrupted() == 1
        claimed = {r.sha256 for r, _ in state.claim_due(10, set(), set())}
        assert claimed == {"1" * 64, "2" * 64, "3" * 64}
        assert {state.get_item(sha).state for sha in claimed} == {ItemState.RELAYING}  # type: ignore[union-attr]
    finally:
        db.close()


def test_an_item_is_verified_and_its_home_copy_removed_only_once_every_delivery_is(
    tmp_path: Path,
) -> None:
    """With a second delivery, one verified copy leaves the item pending and its home copy
    kept; the second one makes it verified, and only then may the home copy go."""
    db = Database(tmp_path / "db.sqlite")
    try:
        state = State(db)
        spool = Spool(tmp_path / "spool", min_free_bytes=0)
        spool.prepare()
        sha = stored_item(state, spool, b"two destinations")
        db.call(
            lambda c: c.execute(
                "INSERT INTO deliveries (sha256, destination_id, state, planned_path,"
                " next_attempt_at) SELECT sha256, 2, state, planned_path, next_attempt_at"
                " FROM deliveries WHERE sha256 = ?",
                (sha,),
            )
        )
        [(first, _)] = state.claim_due(5, set(), set(), destination=DEFAULT_DESTINATION)
        assert first.sha256 == sha and first.attempts == 1
        state.mark_verified(sha, "IMG.JPG", "size+sha256-readback", "verified")
        receipt = state.get_item(sha)
        assert receipt is not None and receipt.state == ItemState.RECEIVED
        assert not read_delivery_proofs(db, [sha])[sha].verified
        asyncio.run(remove_spool_copy(state, spool, sha, 0))
        assert spool.path_for(sha).exists() and state.spool_removed_at(sha) is None

        # Trouble at one destination counts towards giving up there only.
        state.claim_due(5, set(), set(), destination=2)
        state.mark_retry(sha, "It refused.", now(), counted=True, destination=2)
        assert (state.count_problems(sha, destination=2), state.count_problems(sha)) == (1, 0)
        [(second, _)] = state.claim_due(5, set(), set(), destination=2)
        assert (second.sha256, second.attempts) == (sha, 2)
        assert state.claim_due(5, set(), set(), destination=2) == []
        state.mark_verified(sha, "copy/IMG.JPG", "size+sha256-readback", "ok", destination=2)
        receipt = state.get_item(sha)
        assert receipt is not None and receipt.state == ItemState.VERIFIED
        proof = read_delivery_proofs(db, [sha])[sha]
        assert proof.verified
        assert [(d.destination, d.path) for d in proof.deliveries] == [
            (1, "IMG.JPG"),
            (2, "copy/IMG.JPG"),
        ]
        asyncio.run(remove_spool_copy(state, spool, sha, 0))
        assert not spool.path_for(sha).exists() and state.spool_removed_at(sha) is not None
        assert hashlib.sha256(b"two destinations").hexdigest() == sha
    finally:
        db.close()


def test_a_destination_added_later_gets_the_photos_sent_before_that_are_still_kept(
    tmp_path: Path,
) -> None:
    """A second copy of everything: the earlier photos of its person go to a new
    destination too (named by its template); one whose home copy is gone is counted."""
    db = Database(tmp_path / "db.sqlite")
    try:
        state = State(db)
        spool = Spool(tmp_path / "spool", min_free_bytes=0)
        spool.prepare()
        kept = stored_item(state, spool, b"kept at home")
        gone = stored_item(state, spool, b"retention removed it")
        for sha in (kept, gone):
            state.claim_due(5, set(), set())
            state.mark_verified(sha, "IMG.JPG", "size+sha256-readback", "verified")
        asyncio.run(remove_spool_copy(state, spool, gone, 0))
        added = People(db).add_destination(
            "me", "local", str(tmp_path / "disk"), path_template="copy/{name}"
        )
        assert (added.caught_up, added.not_kept) == (1, 1)
        receipt = state.get_item(kept)
        assert receipt is not None and receipt.state == ItemState.RECEIVED  # not yet copied
        assert [(d.destination, d.planned_path) for d in receipt.deliveries] == [
            (1, "IMG.JPG"),
            (added.info.id, "copy/IMG.JPG"),
        ]
        untouched = state.get_item(gone)
        assert untouched is not None and untouched.state == ItemState.VERIFIED
        assert [d.destination for d in untouched.deliveries] == [1]
    finally:
        db.close()
