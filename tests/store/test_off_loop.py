"""Leaving the event loop: a guarded database refuses the loop's thread; its async face works."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from app.off_loop import off_loop
from app.store.db import Database
from app.store.state import State

APP = Path(__file__).resolve().parents[2] / "app"


def test_the_database_refuses_a_call_on_the_event_loop(tmp_path: Path) -> None:
    """Once guarded, a blocking `Database.call` on the loop raises; `acall` runs it off it."""
    db = Database(tmp_path / "db.sqlite")

    async def on_the_loop() -> int:
        db.guard_event_loop()
        with pytest.raises(RuntimeError, match="event loop"):
            db.call(lambda conn: conn.execute("SELECT 1"))
        with pytest.raises(RuntimeError, match="event loop"):
            State(db).list_devices()
        answer = await db.acall(lambda conn: conn.execute("SELECT 41 + 1").fetchone()[0])
        await off_loop(db.close)  # this thread stays the guarded one after the loop ends
        return int(answer)

    assert asyncio.run(on_the_loop()) == 42


def test_the_async_face_gives_what_the_blocking_methods_give(tmp_path: Path) -> None:
    """`State.a…` twins: a device added from the CLI side is found from the loop side."""
    db = Database(tmp_path / "db.sqlite")
    state = State(db)
    state.add_device("my-iphone", "hash-of-the-token")

    async def look_up() -> tuple[str | None, list[str]]:
        device = await state.adevice_for_token_hash("hash-of-the-token")
        return device.name if device else None, [d.name for d in await state.alist_devices()]

    assert asyncio.run(look_up()) == ("my-iphone", ["my-iphone"])
    db.close()


def test_only_off_loop_hands_work_to_threads() -> None:
    """`asyncio.to_thread` / `anyio.to_thread` appear only in app/off_loop.py: one idiom."""
    hopping = {
        str(path.relative_to(APP.parent))
        for path in APP.rglob("*.py")
        if re.search(r"\b(asyncio\.to_thread|anyio\.to_thread\.run_sync)\(", path.read_text())
    }
    assert hopping == {"app/off_loop.py"}
