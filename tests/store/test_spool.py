"""What the spool tidies at start-up: temp files of a crash, and old unrecorded objects."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import spool_objects, spool_temp_files
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
