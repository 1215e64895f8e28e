"""Thumbnails cost bounded memory: a pixel bomb gets the icon, decodes are shared and limited.

Six page loads of one new photo used to decode it six times at once (a 13000x13000 PNG:
7.5-11 GB). Here `Thumbnails` is driven from threads as the page's worker threads drive it;
`CountingThumbnails` is the real class with its decode counted, nothing replaced.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from PIL import Image

from app.web.thumbnails import MAX_DECODES, Thumbnails
from tests.conftest import Service
from tests.support import samples
from tests.support.hostile_files import pixel_bomb_png
from tests.support.status_page import logged_in
from tests.support.uploads import put_blob, sha256_hex


class CountingThumbnails(Thumbnails):
    """Thumbnails that count their decodes and the most that ran at once."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.decodes = 0
        self.running = 0
        self.most_at_once = 0
        self._count = threading.Lock()

    def _make(self, source: Path, cached: Path) -> Path:
        with self._count:
            self.decodes += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.05)  # hold the decode long enough for the others to arrive
            return super()._make(source, cached)
        finally:
            with self._count:
                self.running -= 1


def in_threads(count: int, work: object) -> list[Path | None]:
    results: list[Path | None] = [None] * count

    def run(index: int) -> None:
        results[index] = work(index)  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_six_requests_for_one_new_photo_decode_it_once(tmp_path: Path) -> None:
    """Concurrent requests for the same item wait for one decode and share its file."""
    source = tmp_path / "photo.jpg"
    source.write_bytes(samples.jpeg(seed=5))
    thumbs = CountingThumbnails(tmp_path / "thumbnails")
    results = in_threads(6, lambda _: thumbs.get("ab" * 32, source))
    assert thumbs.decodes == 1
    assert len(set(results)) == 1 and results[0] is not None and results[0].is_file()


def test_at_most_max_decodes_run_at_once_across_items(tmp_path: Path) -> None:
    """Eight different new photos are decoded at most MAX_DECODES at a time."""
    sources = []
    for index in range(8):
        source = tmp_path / f"photo-{index}.jpg"
        source.write_bytes(samples.jpeg(seed=index))
        sources.append(source)
    thumbs = CountingThumbnails(tmp_path / "thumbnails")
    results = in_threads(8, lambda i: thumbs.get(f"{i:02x}" * 32, sources[i]))
    assert all(result is not None for result in results)
    assert thumbs.decodes == 8
    assert thumbs.most_at_once == MAX_DECODES


def test_a_pixel_bomb_gets_no_thumbnail_and_is_never_decoded(tmp_path: Path) -> None:
    """A 0.5 MB PNG claiming 169 megapixels is refused from its header: None, no decode."""
    source = tmp_path / "bomb.png"
    source.write_bytes(pixel_bomb_png())
    thumbs = CountingThumbnails(tmp_path / "thumbnails")
    started = time.monotonic()
    assert thumbs.get("cd" * 32, source) is None
    assert time.monotonic() - started < 2.0  # decoding it took about 4 s
    assert thumbs.most_at_once == 1  # _make ran, and refused before decoding
    assert not (tmp_path / "thumbnails").exists() or not any((tmp_path / "thumbnails").rglob("*"))


def test_the_status_page_shows_the_icon_for_a_pixel_bomb(service: Service) -> None:
    """The page's thumbnail URL for the bomb answers with the photo icon, not an error."""
    data = pixel_bomb_png()
    with service.device() as client:
        assert put_blob(client, data, name="bomb.png").status_code == 201
    with logged_in(service) as client:
        reply = client.get(f"/thumbnails/{sha256_hex(data)}.jpg")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("image/svg+xml")


def test_a_large_jpeg_is_thumbnailed_from_a_reduced_decode(tmp_path: Path) -> None:
    """A 6000x4000 JPEG still gets its 320-pixel thumbnail (draft mode, not refused)."""
    out = io.BytesIO()
    Image.new("RGB", (6000, 4000), (40, 80, 120)).save(out, "JPEG", quality=50)
    source = tmp_path / "large.jpg"
    source.write_bytes(out.getvalue())
    made = Thumbnails(tmp_path / "thumbnails").get("ef" * 32, source)
    assert made is not None
    assert max(Image.open(made).size) == 320
