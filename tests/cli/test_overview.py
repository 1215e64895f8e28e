"""`photo-relay import` and `photo-relay status` against a real data folder and service."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import httpx
from click.testing import CliRunner

from app.cli.commands import main
from tests.conftest import make_settings, running, sha256_hex
from tests.support import samples
from tests.support.servers import wait_for

ENV = {"PHOTO_RELAY_MIN_FREE_BYTES": "0"}


def camera_card(root: Path) -> dict[str, bytes]:
    """A DCIM folder with two photos and a movie, plus the junk a Mac leaves behind."""
    files = {
        "DCIM/100APPLE/IMG_0001.JPG": samples.jpeg(datetime(2019, 7, 1, 12, 0), seed=41),
        "DCIM/100APPLE/IMG_0002.HEIC": samples.heic(datetime(2019, 7, 2, 9, 30), seed=42),
        "DCIM/101APPLE/IMG_0003.MOV": samples.quicktime(datetime(2019, 7, 3, 18, 0).astimezone()),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / ".Trashes").mkdir()
    (root / ".Trashes" / "old.jpg").write_bytes(b"deleted")
    (root / "DCIM" / ".DS_Store").write_bytes(b"finder")
    return files


def journal_rows(service_url: str, admin: str, sha: str) -> int:
    headers = {"Authorization": f"Bearer {admin}"}
    return len(httpx.get(f"{service_url}/v1/items/{sha}/journal", headers=headers).json())


def test_import_backs_up_a_folder_once_and_the_running_relay_copies_it(tmp_path: Path) -> None:
    """Import stores every file, the running service copies them; a second run sends nothing."""
    card = tmp_path / "card"
    files = camera_card(card)
    settings = make_settings(tmp_path, events_poll_seconds=0.2)
    runner = CliRunner()
    with running(settings) as service:
        first = runner.invoke(
            main, ["import", str(card), "--data-dir", str(settings.data_dir)], env=ENV
        )
        assert first.exit_code == 0, first.output
        assert "Backing up 3 file(s)" in first.output
        assert "3 file(s) backed up, 0 already here" in first.output
        library = settings.local_library_dir
        wait_for(
            lambda: len([p for p in library.rglob("*") if p.is_file()]) == 3,
            what="the running service's relay to copy the imported files",
        )
        assert (library / "2019" / "07" / "IMG_0001.JPG").read_bytes() == files[
            "DCIM/100APPLE/IMG_0001.JPG"
        ]
        sha = sha256_hex(files["DCIM/100APPLE/IMG_0001.JPG"])
        before = journal_rows(service.base_url, service.admin_token, sha)

        second = runner.invoke(
            main, ["import", str(card), "--data-dir", str(settings.data_dir)], env=ENV
        )
        assert second.exit_code == 0, second.output
        assert "0 file(s) backed up, 3 already here" in second.output
        assert "Backing up" not in second.output
        assert journal_rows(service.base_url, service.admin_token, sha) == before
        with service.admin() as admin:
            item = admin.get(f"/v1/items/{sha}").json()
    assert item["device"] is None
    assert item["state"] == "verified"


def test_import_names_a_refused_file_and_goes_on(tmp_path: Path) -> None:
    """An empty file is refused with the reason and exit 1; the others are still stored."""
    card = tmp_path / "card"
    card.mkdir()
    (card / "good.jpg").write_bytes(samples.jpeg(seed=43))
    (card / "empty.jpg").write_bytes(b"")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = CliRunner().invoke(main, ["import", str(card), "--data-dir", str(data_dir)], env=ENV)
    assert result.exit_code == 1
    assert "1 file(s) backed up, 0 already here, 1 problem(s)" in result.output
    assert "empty.jpg: The file is empty" in result.output


def test_status_prints_the_page_summary(tmp_path: Path) -> None:
    """`photo-relay status` shows the verdict, the counts and each device's last backup."""
    settings = make_settings(tmp_path)
    with running(settings) as service:
        data = samples.jpeg(seed=45)
        with service.device() as device:
            device.put(f"/v1/blobs/{sha256_hex(data)}", content=data)
        with service.admin() as admin:
            wait_for(lambda: admin.get("/v1/status").json()["counts"]["verified"] == 1)
        result = CliRunner().invoke(main, ["status", "--data-dir", str(settings.data_dir)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "Everything is safe: the file is a verified copy." in result.output
    assert "Files: 1 total · 1 verified · 0 waiting" in result.output
    assert "phone: last backup just now (today " in result.output
    assert "Kept on this machine: 1 file(s)" in result.output
    assert "Spool" not in result.output and not re.search(r"\d{4}-\d\d-\d\dT", result.output)
