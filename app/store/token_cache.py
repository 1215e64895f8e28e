"""Whose device token is this, answered from memory while no device row has changed.

Every request with a device token asks. The answer is remembered per token hash together
with the devices generation its row was read in: a counter that triggers move on, inside
the writing transaction, at every insert, update and delete of the devices table
(store/db.py, migration 11), whoever writes: this service, or `photo-relay device revoke`,
`device rotate` or a hand-run `sqlite3` in another process. A remembered answer is used
only when the generation read now equals its own, so no change to any device, committed
before the request, can be missed: a revocation, a new token, a new name or person counts
from the very next request, as when every request read the row.

Why this read and not another:
- The generation is read on the event loop, on a read-only connection of its own
  (`Database.devices_generation`): a WAL reader waits for no writer, while the shared
  connection's lock may be held by a commit's fsync. That read costs a few microseconds;
  the thread hop it replaces, and the wait for the lock, were most of the check's cost.
- Not `PRAGMA data_version`: on a connection of its own it moves at every commit of any
  table (every upload), on the shared one it needs the lock, and it would not see the
  service's own writes (the last-seen time) there.

What it keeps: only active devices that were found, all of one generation (a new
generation empties it): at most one entry per active device. An unknown token is never
remembered; it costs one database read, as before. An entry also ends when its
device's last-seen time is `LAST_SEEN_PRECISION` old, so that time is written down as
often as before (the write moves the generation; the entry read with it carries it).
The keys are hashes of 256-bit tokens, so looking one up in a dict reveals nothing.
"""

from __future__ import annotations

from app.clock import now
from app.store.state import LAST_SEEN_PRECISION, Device, State, TokenCheck

__all__ = ["TokenCache"]


class TokenCache:
    """Active devices by token hash, valid for one devices generation (see the module)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._generation: int | None = None
        self._known: dict[str, TokenCheck] = {}

    def __len__(self) -> int:
        return len(self._known)

    async def adevice_for_token_hash(self, token_hash: str) -> Device | None:
        """The active device holding this token, marking it as seen (as `State`'s twin)."""
        known = self._known.get(token_hash)
        if known is not None and self._still_true(known):
            return known.device
        check = await self.state.acheck_token_hash(token_hash)
        if check is None:
            return None
        self._remember(token_hash, check)
        return check.device

    def _still_true(self, known: TokenCheck) -> bool:
        """No device changed since `known` was read, and its last-seen time is fresh."""
        fresh = now() - known.seen_at < LAST_SEEN_PRECISION
        return fresh and self._current_generation() == known.generation

    def _current_generation(self) -> int | None:
        """The generation as committed now; a change empties what is kept."""
        generation = self.state.db.devices_generation()
        if generation is None or generation != self._generation:
            self._forget_all(generation)
        return generation

    def _remember(self, token_hash: str, check: TokenCheck) -> None:
        # Any generation but the one kept means other rows may be out of date: start over.
        # (Two checks finishing out of order only cost a read; a hit needs the current one.)
        if check.generation != self._generation:
            self._forget_all(check.generation)
        self._known[token_hash] = check

    def _forget_all(self, generation: int | None) -> None:
        self._known.clear()
        self._generation = generation
