"""What the spool tidies at start-up: temp files of a crash, and old unrecorded objects."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.durable_dirs import make_dir_durably
from app.store.spool import SHARDS, Spool
from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import record_fsyncs, spool_objects, spool_temp_files
from tests.support.servers import ThreadedService
from tests.support.uploads import put_blob, sha256_hex


def test_start_up_removes_crash_leftovers_but_never_a_recorded_file(
    start_service: Callable[..., Service],
) -> None:
    """Temp files and hour-old unrecorded objects go; young or recorded objects stay."""
    first = start_service()
    data = samples.jpeg(seed=120)
    with first.device() as client:
        assert put_blob(client, data).status_code == 201
    first.server.stop()
    spool = first.settings.spool_dir
    recorded = spool / "objects" / sha256_hex(data)[:2] / sha256_hex(data)
    os.utime(recorded, (time.time() - 7200, time.time() - 7200))
    old, young = "ab" * 32, "cd" * 32
    for sha, age in ((old, 7200), (young, 60)):
        path = spool / "objects" / sha[:2] / sha
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half-recorded")
        os.utime(path, (time.time() - age, time.time() - age))
    (spool / "tmp" / "interrupted.part").write_bytes(b"partial upload")

    restarted = ThreadedService(first.settings)
    restarted.start()
    try:
        assert spool_temp_files(first.settings) == []
        assert sorted(p.name for p in spool_objects(first.settings)) == sorted(
            [sha256_hex(data), young]
        )
        with first.device() as client:
            assert client.get(f"/v1/items/{sha256_hex(data)}").status_code == 200
    finally:
        restarted.stop()


def test_a_new_spool_has_every_shard_folder_durable_before_the_first_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All 256 objects/<aa> folders exist after start-up, and objects/ (their parent) and
    the spool (objects/' parent) were fsynced after they were made."""
    fsynced = record_fsyncs(monkeypatch)
    spool = Spool(tmp_path / "spool", min_free_bytes=0)
    spool.prepare()
    assert sorted(p.name for p in spool.objects_dir.iterdir()) == sorted(SHARDS)
    assert spool.objects_dir in fsynced
    assert spool.root in fsynced
    fsynced.clear()
    spool.prepare()  # a restart makes nothing and fsyncs nothing
    assert fsynced == []


def test_a_shard_folder_removed_by_hand_is_made_again_durably_by_the_next_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool", min_free_bytes=0)
    spool.prepare()
    data = samples.jpeg(seed=121)
    shard = spool.objects_dir / sha256_hex(data)[:2]
    shard.rmdir()
    fsynced = record_fsyncs(monkeypatch)
    writer = spool.open_writer()
    writer.write(data)
    stored = spool.commit(writer, writer.finish(), replace=False)
    assert stored == shard / sha256_hex(data)
    assert stored.read_bytes() == data
    # The file, the new folder's entry in objects/, then the link in the new folder.
    assert fsynced[-2:] == [spool.objects_dir, shard]
    assert list(spool.tmp_dir.iterdir()) == []  # the temp name is gone


def test_a_file_where_a_folder_belongs_is_an_error_not_a_folder(tmp_path: Path) -> None:
    """As `mkdir -p` says it: "Not a directory" (the relay's message shows it)."""
    (tmp_path / "2024").write_bytes(b"the owner's own file")
    with pytest.raises(NotADirectoryError, match="Not a directory"):
        make_dir_durably(tmp_path / "2024")
    with pytest.raises(NotADirectoryError, match="Not a directory"):
        make_dir_durably(tmp_path / "2024" / "07")
    assert (tmp_path / "2024").read_bytes() == b"the owner's own file"
