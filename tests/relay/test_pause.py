"""The relay's pause: journalled once, and off the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from app.config import Settings
from app.errors import TargetAuthFailed, TargetFull
from app.relay.worker import Relay, RelayState
from app.store.db import Database
from app.store.spool import Spool
from app.store.state import State
from app.targets import open_target


def test_a_pause_is_journalled_once_and_never_on_the_event_loop(tmp_path: Path) -> None:
    """Pausing writes one `relay.paused` entry, committed in a worker thread, not the loop's."""
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    db = Database(settings.database_path)
    state = State(db)
    spool = Spool(settings.spool_dir, min_free_bytes=0)
    relay = Relay(settings.relay, state, spool, open_target(settings))
    # A write listener runs in the thread that committed: it tells where the write ran.
    committed_on: list[int] = []
    db.write_listeners.append(lambda: committed_on.append(threading.get_ident()))

    async def pause_twice() -> int:
        await relay.pause(TargetAuthFailed("The destination refused our credentials."))
        await relay.pause(TargetFull("The destination is full."))  # already paused
        return threading.get_ident()

    loop_thread = asyncio.run(pause_twice())

    assert len(committed_on) == 1 and committed_on[0] != loop_thread
    assert relay.status.state == RelayState.PAUSED
    assert relay.status.reason == "The destination is full."
    paused = db.call(
        lambda conn: conn.execute(
            "SELECT message FROM journal WHERE event = 'relay.paused'"
        ).fetchall()
    )
    assert [row["message"] for row in paused] == [
        "The relay paused: The destination refused our credentials."
    ]
    db.close()
