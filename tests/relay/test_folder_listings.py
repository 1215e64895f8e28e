"""A relay pass lists each destination folder once, and still compares names case-insensitively."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import running
from tests.support import samples
from tests.support.faults import Fault
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer
from tests.targets.nextcloud.test_relay import FOLDER, remote_settings, send, wait_verified


def folder_listings(server: DavServer) -> int:
    """Depth-1 PROPFINDs of the month folder the photos go to."""
    folder = f"{server.files_prefix}/{FOLDER}"
    return sum(
        1
        for h in server.faults.headers
        if h["method"] == "PROPFIND"
        and h.get("HTTP_DEPTH") == "1"
        and h["path"].rstrip("/") == folder
    )


def test_one_listing_per_pass_and_case_insensitive_clashes_still_caught(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Five photos in one pass: one listing; case variants (ours or foreign) get other names."""
    foreign = b"a file the owner put there"
    (nextcloud.files_dir / FOLDER).mkdir(parents=True)
    (nextcloud.files_dir / FOLDER / "img_0003.jpg").write_bytes(foreign)
    hold = nextcloud.faults.add(Fault("hold", methods={"PUT"}, times=1))
    photos = [
        ("IMG_0001.JPG", samples.jpeg(seed=110)),
        ("img_0001.jpg", samples.jpeg(seed=111)),  # a case variant of a name we write
        ("IMG_0003.JPG", samples.jpeg(seed=112)),  # a case variant of the foreign file
        ("IMG_0004.JPG", samples.jpeg(seed=113)),
        ("IMG_0005.JPG", samples.jpeg(seed=114)),
    ]
    with running(remote_settings(tmp_path, nextcloud)) as service:
        with service.device() as client:
            hashes = [send(client, data, name) for name, data in photos]
        wait_for(lambda: hold.fired == 1, what="the first upload to be held")
        hold.released.set()  # everything so far was queued while the relay was busy
        done = wait_verified(service, *hashes)
    paths = [r["remote_path"] for r in done]
    assert paths[0] == "2024/05/IMG_0001.JPG"
    assert paths[1] == f"2024/05/img_0001 ({hashes[1][:8]}).jpg"
    assert paths[2] == f"2024/05/IMG_0003 ({hashes[2][:8]}).JPG"
    assert paths[3:] == ["2024/05/IMG_0004.JPG", "2024/05/IMG_0005.JPG"]
    assert nextcloud.file(f"{FOLDER}/img_0003.jpg").read_bytes() == foreign
    assert folder_listings(nextcloud) == 1
