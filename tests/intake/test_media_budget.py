"""Metadata is read within a budget: hostile files are stored, dated by the fallback, and say why.

A PNG that claims 13000x13000 pixels, a movie of two million empty atoms and a 1 GiB file
with HEIC's magic bytes each used to cost hundreds of MB to GBs and up to a minute; here
`probe` reads them by their headers only, and an upload of the atom bomb is stored with
the reason in its journal.
"""

from __future__ import annotations

import io
import struct
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from app.intake.media import MediaInfo, probe
from app.intake.media_boxes import MAX_BOXES
from tests.conftest import Service
from tests.support import samples
from tests.support.hostile_files import (
    atom_bomb_movie,
    exif_with_date,
    pixel_bomb_png,
    sparse_heic,
)
from tests.support.uploads import put_blob, sha256_hex

# Generous: the readers take milliseconds; a decode of the bomb took seconds and GBs.
WITHIN_SECONDS = 2.0


def timed_probe(path: Path) -> tuple[MediaInfo, float]:
    started = time.monotonic()
    info = probe(path)
    return info, time.monotonic() - started


def test_a_png_pixel_bomb_is_dated_from_its_exif_chunk_without_decoding(tmp_path: Path) -> None:
    """The eXIf chunk after 507 MB of claimed pixels is found by walking chunk headers."""
    path = tmp_path / "bomb.png"
    path.write_bytes(pixel_bomb_png(exif=exif_with_date(datetime(2021, 7, 8, 9, 10, 11))))
    info, seconds = timed_probe(path)
    assert seconds < WITHIN_SECONDS
    assert (info.kind, info.captured_at, info.problem) == (
        "photo",
        datetime(2021, 7, 8, 9, 10, 11),
        None,
    )


def test_a_movie_of_two_million_empty_atoms_gives_up_at_the_atom_cap(tmp_path: Path) -> None:
    """The walk stops at the cap, quickly, and says so; the kind is still read."""
    path = tmp_path / "bomb.mov"
    path.write_bytes(atom_bomb_movie())
    info, seconds = timed_probe(path)
    assert seconds < WITHIN_SECONDS
    assert info.kind == "video"
    assert info.captured_at is None
    assert f"more than {MAX_BOXES} boxes" in info.problem


def test_a_1_gib_file_with_heic_magic_is_read_by_its_headers_only(tmp_path: Path) -> None:
    """A sparse 1 GiB 'HEIC' is probed at once: no meta box, no date, nothing read whole."""
    info, seconds = timed_probe(sparse_heic(tmp_path / "huge.heic"))
    assert seconds < WITHIN_SECONDS
    assert (info.kind, info.captured_at) == ("photo", None)


def test_a_heic_whose_meta_box_claims_a_gigabyte_is_over_budget(tmp_path: Path) -> None:
    """A box size that would have the reader take 1 GiB into memory is refused by the budget."""
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"heic", 0, b"mif1", b"heic")
    meta = struct.pack(">I4sI", 1 << 30, b"meta", 0)
    infe = struct.pack(">I4sBxxxHH4sx", 21, b"infe", 2, 1, 0, b"Exif")
    iinf = struct.pack(">I4sIH", 14 + len(infe), b"iinf", 0, 1) + infe
    iloc = struct.pack(">I4s", 1 << 29, b"iloc")
    path = tmp_path / "claims.heic"
    path.write_bytes(ftyp + meta + iinf + iloc)
    info, seconds = timed_probe(path)
    assert seconds < WITHIN_SECONDS
    assert info.captured_at is None
    assert info.problem is not None and "over 4 MiB" in info.problem


@pytest.mark.parametrize("maker", [samples.jpeg, samples.heic], ids=["jpeg", "heic"])
def test_exif_dates_are_still_read_from_real_photos(tmp_path: Path, maker: object) -> None:
    """The budgeted readers find what Pillow found: DateTimeOriginal and its offset."""
    taken = datetime(2022, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-5)))
    path = tmp_path / "photo"
    path.write_bytes(maker(taken, seed=3))  # type: ignore[operator]
    assert probe(path).captured_at == taken


def test_quicktime_dates_are_still_read(tmp_path: Path) -> None:
    """moov/mvhd's creation time, in UTC."""
    path = tmp_path / "movie.mov"
    path.write_bytes(samples.quicktime(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)))
    assert probe(path).captured_at == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_an_upload_whose_metadata_is_over_budget_is_stored_and_says_why(service: Service) -> None:
    """The atom bomb gets 201, the fallback date, and a journal entry naming the cap."""
    data = atom_bomb_movie(MAX_BOXES + 100)
    with service.device() as client:
        reply = put_blob(client, data, name="IMG_0001.MOV")
    assert reply.status_code == 201, reply.text
    assert reply.json()["captured_source"] == "fallback"
    with service.admin() as admin:
        journal = admin.get(f"/v1/items/{sha256_hex(data)}/journal").json()
    reasons = [e["message"] for e in journal if e["event"] == "intake.capture_time_unreadable"]
    assert len(reasons) == 1 and f"more than {MAX_BOXES} boxes" in reasons[0]


def test_an_exif_date_outside_what_every_zone_can_show_falls_back(service: Service) -> None:
    """A photo claiming 0001-01-01 is stored, dated when it arrived, with the reason kept."""
    exif = Image.Exif()
    exif[0x8769] = {0x9003: "0001:01:01 00:00:00", 0x9011: "+05:00"}
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    with service.device() as client:
        reply = put_blob(client, data, name="IMG_0081.JPG")
        assert reply.status_code == 201, reply.text
        assert reply.json()["captured_source"] == "fallback"
        assert client.get(f"/v1/items/{sha256_hex(data)}").status_code == 200
    with service.admin() as admin:
        journal = admin.get(f"/v1/items/{sha256_hex(data)}/journal").json()
    assert any("1 Jan 1, 00:00" in e["message"] for e in journal), journal
