"""Spool retention: home copies go only after verification and the retention period."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path

from app.clock import iso, now
from app.store.db import Database
from app.store.retention import sweep_spool
from app.store.spool import Spool
from app.store.state import NewItem, State
from tests.conftest import running
from tests.support import samples
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer
from tests.targets.nextcloud.test_relay import FOLDER, remote_settings, send, wait_verified


def stored_item(state: State, spool: Spool, content: bytes) -> str:
    sha = hashlib.sha256(content).hexdigest()
    writer = spool.open_writer()
    writer.write(content)
    assert writer.finish() == sha
    spool.commit(writer, sha)
    taken = iso(now())
    state.record_received(
        NewItem(sha, len(content), "IMG.JPG", "photo", taken, taken, "client", "IMG.JPG", None)
    )
    return sha


def test_sweep_removes_only_verified_copies_past_the_retention_period(tmp_path: Path) -> None:
    """Unverified and recently verified copies stay; a copy verified long enough ago goes."""
    db = Database(tmp_path / "db.sqlite")
    state = State(db)
    spool = Spool(tmp_path / "spool", min_free_bytes=0)
    spool.prepare()
    pending = stored_item(state, spool, b"not relayed yet")
    recent = stored_item(state, spool, b"verified today")
    old = stored_item(state, spool, b"verified long ago")
    for sha in (recent, old):
        state.mark_verified(sha, "IMG.JPG", "size+sha256-readback", "verified")
    long_ago = iso(now() - timedelta(days=31))
    db.call(
        lambda c: c.execute("UPDATE items SET verified_at = ? WHERE sha256 = ?", (long_ago, old))
    )

    assert asyncio.run(sweep_spool(state, spool, 30)) == 1

    kept = [sha for sha in (pending, recent, old) if spool.path_for(sha).exists()]
    assert kept == [pending, recent]
    assert [e.event for e in state.journal_for(old)][-1] == "spool.removed"
    assert asyncio.run(sweep_spool(state, spool, 30)) == 0
    db.close()


def test_a_photo_sent_again_after_its_home_copy_went_is_not_kept_again(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """Retention removed the home copy; the same photo uploaded again is dropped at once."""
    data = samples.jpeg(seed=52)
    settings = remote_settings(tmp_path, webdav_server, spool_retention_days=0)
    with running(settings) as service:
        with service.device() as client:
            sha = send(client, data, "IMG_0001.JPG")
        wait_verified(service, sha)
        spool = service.server.app_services.spool
        wait_for(lambda: not spool.path_for(sha).exists(), what="the spool copy to go")
        with service.device() as client:
            again = client.post("/v1/uploads", files={"file": ("IMG_0001.JPG", data)})
            assert again.status_code == 200, again.text
            assert again.json()["items"][0]["state"] == "verified"
            assert not spool.path_for(sha).exists(), "the repeated copy stayed in the spool"
            events = [e["event"] for e in client.get(f"/v1/items/{sha}/journal").json()]
        assert events[-2:] == ["item.duplicate", "spool.removed"]
        assert webdav_server.all_files() == {f"{FOLDER}/IMG_0001.JPG": data}
