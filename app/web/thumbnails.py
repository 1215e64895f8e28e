"""Thumbnails for the status page: made on first request, kept on disk under the data dir.

JPEG and HEIC (and anything else Pillow opens) are decoded through Pillow and pillow-heif;
JPEGs use Pillow's draft mode, so only a reduced image is decoded. Videos and other files
get no thumbnail (the page shows an icon): decoding a frame would mean reading the movie.
A thumbnail is written under a temporary name and renamed, so a half-written one is never
served. Thumbnails are a cache: deleting the folder only costs the time to make them again.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

__all__ = ["Thumbnails"]

log = logging.getLogger(__name__)

EDGE = 320
# Larger images are not decoded for a thumbnail (a decompression bomb, or a panorama).
MAX_PIXELS = 120_000_000


class Thumbnails:
    """`<data_dir>/thumbnails/aa/<sha256>.jpg`, made from the spool copy when first asked."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.jpg"

    def get(self, sha256: str, source: Path) -> Path | None:
        """The cached thumbnail, made now if needed; None if the file cannot be shown."""
        cached = self.path_for(sha256)
        if cached.is_file():
            return cached
        if not source.is_file():
            return None  # the spool copy is gone (removed after verification)
        # Imported on the first thumbnail: Pillow and pillow-heif cost ~40 ms of start-up.
        from PIL import Image

        try:
            return self._make(source, cached)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            log.info("thumbnail.unavailable sha256=%s reason=%s", sha256, exc)
            return None

    def _make(self, source: Path, cached: Path) -> Path:
        from PIL import ImageOps

        from app.intake.media import open_image  # Pillow with HEIC support

        with open_image(source) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError("image too large for a thumbnail")
            image.draft("RGB", (EDGE * 2, EDGE * 2))  # JPEG: decode at a reduced size
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((EDGE, EDGE))
            small = upright.convert("RGB")
        cached.parent.mkdir(parents=True, exist_ok=True)
        temp = cached.parent / f".{uuid.uuid4().hex}.tmp"
        try:
            small.save(temp, "JPEG", quality=80)
            os.replace(temp, cached)
        finally:
            temp.unlink(missing_ok=True)
        return cached
