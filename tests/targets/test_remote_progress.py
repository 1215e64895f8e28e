"""Live progress of remote copies: the WebDAV/NextCloud targets report bytes as they go out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.errors import TargetUnavailable
from app.progress import ProgressBoard
from app.store.chunk_progress import ChunkProgress
from app.targets.nextcloud.target import NextcloudTarget
from app.targets.webdav import DavTarget
from tests.conftest import remote_settings
from tests.support.faults import Fault
from tests.support.webdav_server import DavServer
from tests.targets.test_dav_target import put, run, source, target_for

CHUNKED = {"target_chunk_threshold_bytes": 1_000_000, "target_chunk_bytes": 1 << 20}


def sent_values(events: list[dict[str, Any]], sha: str) -> list[int]:
    return [
        e["sent"]
        for e in events
        if e["type"] == "progress" and e["sha256"] == sha and e["sent"] is not None
    ]


def tracked_put(target: DavTarget, path: str, file: Path, sha: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    board = ProgressBoard(events.append, min_interval=0)
    with board.tracking(sha, path, file.stat().st_size):
        run(put(target, path, file, sha))
    return events


@pytest.mark.parametrize("chunked", [False, True], ids=["single-put", "chunked"])
def test_remote_copy_reports_bytes_sent_up_to_the_whole_file(
    tmp_path: Path, nextcloud: DavServer, chunked: bool
) -> None:
    """A single PUT and a chunked upload both report growing byte counts ending at the size."""
    file, _, sha = source(tmp_path, 2_500_000)
    overrides = CHUNKED if chunked else {}
    events = tracked_put(target_for(tmp_path, nextcloud, **overrides), "a/V.MOV", file, sha)
    sent = sent_values(events, sha)
    assert sent == sorted(sent)
    assert any(0 < n < 2_500_000 for n in sent), "no percentage while the copy was under way"
    assert sent[-1] == 2_500_000
    assert nextcloud.faults.count("PUT", "/uploads/") == (3 if chunked else 0)


def test_resumed_chunked_upload_starts_its_progress_at_the_chunks_already_sent(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """After a drop in chunk 3, the resumed copy's first progress already counts chunks 1-2."""
    file, _, sha = source(tmp_path, 4_500_000)
    nextcloud.faults.add(Fault("drop", methods={"PUT"}, path_contains="/00003", times=1))
    progress = ChunkProgress(None)
    settings = remote_settings(tmp_path, nextcloud, **CHUNKED)
    with pytest.raises(TargetUnavailable):
        tracked_put(NextcloudTarget(settings.destination, progress), "a/V.MOV", file, sha)
    sent = sent_values(
        tracked_put(NextcloudTarget(settings.destination, progress), "a/V.MOV", file, sha), sha
    )
    assert sent[0] == 2 * (1 << 20)
    assert sent[-1] == 4_500_000
