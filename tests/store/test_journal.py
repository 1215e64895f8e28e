"""The journal's one writer: entries commit and roll back with the change they describe."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from app.store.db import Database
from app.store.journal import write_journal
from app.store.state import State

APP = Path(__file__).resolve().parents[2] / "app"
# No module but the one writer inserts journal rows itself (the phone's runs use it too).
OWN_WRITERS = {APP / "store" / "journal.py"}


def test_an_entry_rolls_back_with_the_transaction_it_was_written_in(tmp_path: Path) -> None:
    """A failed transaction leaves no journal entry behind; a committed one keeps its id."""
    db = Database(tmp_path / "db.sqlite")
    state = State(db)

    def fail_after_writing(conn: sqlite3.Connection) -> None:
        write_journal(conn, "test.written", "Written, then rolled back.")
        raise RuntimeError("the change it describes failed")

    with pytest.raises(RuntimeError):
        db.call(fail_after_writing)
    kept = db.call(lambda conn: write_journal(conn, "test.kept", "Kept.", sha256="ab" * 32))

    rows = db.call(lambda conn: conn.execute("SELECT id, event, sha256 FROM journal").fetchall())
    assert [(r["id"], r["event"], r["sha256"]) for r in rows] == [(kept, "test.kept", "ab" * 32)]
    assert state.journal("relay.paused", "Paused.") == kept + 1
    db.close()


def test_no_module_but_the_journal_writer_inserts_journal_rows() -> None:
    """Every `INSERT INTO journal` in app/ is in app/store/journal.py (see OWN_WRITERS)."""
    inserting = {
        path
        for path in APP.rglob("*.py")
        if re.search(r"INSERT\s+INTO\s+journal\b", path.read_text(), re.IGNORECASE)
    }
    assert inserting <= OWN_WRITERS
    assert APP / "store" / "journal.py" in inserting
