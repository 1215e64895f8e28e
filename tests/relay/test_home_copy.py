"""The home-copy guard around a real copy to the local target: who is to blame for a mismatch."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.errors import HomeCopyDamaged, VerificationFailed
from app.relay.home_copy import home_copy_checked
from app.store.spool import Spool
from app.targets.local import LocalTarget
from tests.support.on_disk import library_files

DATA = b"photo bytes " * 50_000
SHA = hashlib.sha256(DATA).hexdigest()
TAKEN = datetime(2024, 5, 4, 9, 30, tzinfo=UTC)


def spooled(tmp_path: Path) -> Spool:
    spool = Spool(tmp_path / "spool", min_free_bytes=0)
    spool.prepare()
    writer = spool.open_writer()
    writer.write(DATA)
    assert writer.finish() == SHA
    spool.commit(writer, SHA)
    return spool


async def copy(spool: Spool, target: LocalTarget, path: str) -> None:
    await target.check()  # creates the library folder
    async with home_copy_checked(spool, SHA, len(DATA)):
        await target.put_new(path, spool.path_for(SHA), size=len(DATA), sha256=SHA, captured=TAKEN)


def test_a_healthy_copy_passes_through(tmp_path: Path) -> None:
    """Nothing wrong at home: the copy lands, the guard adds no error."""
    spool, target = spooled(tmp_path), LocalTarget(tmp_path / "library")
    asyncio.run(copy(spool, target, "a.jpg"))
    assert (tmp_path / "library" / "a.jpg").read_bytes() == DATA


def test_changed_bytes_at_home_are_named_damaged_and_never_land(tmp_path: Path) -> None:
    """Same size, other bytes: the local copy's re-hash fails, the re-read at home says why."""
    spool, target = spooled(tmp_path), LocalTarget(tmp_path / "library")
    with spool.path_for(SHA).open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"X")
    with pytest.raises(HomeCopyDamaged, match="damaged"):
        asyncio.run(copy(spool, target, "a.jpg"))
    assert library_files(tmp_path / "library") == []


def test_a_short_copy_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """A copy of the wrong size is caught by its size alone; the library is not touched."""
    spool, target = spooled(tmp_path), LocalTarget(tmp_path / "library")
    with spool.path_for(SHA).open("r+b") as handle:
        handle.truncate(10)
    with pytest.raises(HomeCopyDamaged, match="10 bytes instead of"):
        asyncio.run(copy(spool, target, "a.jpg"))
    assert library_files(tmp_path / "library") == []


def test_a_destination_mismatch_with_a_sound_home_copy_stays_a_verification_failure(
    tmp_path: Path,
) -> None:
    """The destination's fault (a file there differs) is retried as before, not called damage."""
    spool, target = spooled(tmp_path), LocalTarget(tmp_path / "library")
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "a.jpg").write_bytes(b"other")

    async def verify() -> None:
        async with home_copy_checked(spool, SHA, len(DATA)):
            await target.verify("a.jpg", size=len(DATA), sha256=SHA)

    with pytest.raises(VerificationFailed):
        asyncio.run(verify())
