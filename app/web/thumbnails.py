"""Thumbnails for the status page: made on first request, kept on disk under the data dir.

JPEG and HEIC (and anything else Pillow opens) are decoded through Pillow and pillow-heif;
JPEGs use Pillow's draft mode, so only a reduced image (down to 1/8 per side) is decoded.
Videos and other files get no thumbnail (the page shows an icon). Decoding is bounded:
a file or image too large for its format gets the icon; one decode at a time per item (six
page loads of a new photo make one thumbnail, the others wait and read it) and at most
`MAX_DECODES` at once in all, so a planted image cannot multiply its cost. A thumbnail is
written under a temporary name and renamed, so a half-written one is never served.
Thumbnails are a cache: deleting the folder only costs the time to make them again.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

__all__ = ["Thumbnails", "TooLarge"]

log = logging.getLogger(__name__)

EDGE = 320
# Decoded in full, so their pixels are what they cost: 48 MP is the largest iPhone photo
# (HEIC, ~150 MB while decoded); other formats without a reduced decode get 16 MP (64 MB).
MAX_PIXELS = {"JPEG": 250_000_000, "MPO": 250_000_000, "HEIF": 50_000_000}
MAX_PIXELS_OTHER = 16_000_000
# pillow-heif reads the whole file into memory before decoding; no real photo is this big.
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_DECODES = 2


class TooLarge(ValueError):
    """The file or its image is beyond what a thumbnail may cost."""


class Thumbnails:
    """`<data_dir>/thumbnails/aa/<sha256>.jpg`, made from the spool copy when first asked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._decodes = threading.BoundedSemaphore(MAX_DECODES)
        self._guard = threading.Lock()
        self._per_item: dict[str, threading.Lock] = {}

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.jpg"

    def get(self, sha256: str, source: Path) -> Path | None:
        """The cached thumbnail, made now if needed; None if the file cannot be shown."""
        cached = self.path_for(sha256)
        if cached.is_file():
            return cached
        if not source.is_file():
            return None  # the spool copy is gone (removed after verification)
        with self._item_lock(sha256) as first:
            if not first and cached.is_file():
                return cached  # made while this request waited for the other one
            return self._make_bounded(sha256, source, cached)

    def _item_lock(self, sha256: str) -> _ItemLock:
        with self._guard:
            lock = self._per_item.setdefault(sha256, threading.Lock())
        return _ItemLock(self, sha256, lock)

    def _release(self, sha256: str, lock: threading.Lock) -> None:
        with self._guard:
            if self._per_item.get(sha256) is lock and not lock.locked():
                del self._per_item[sha256]

    def _make_bounded(self, sha256: str, source: Path, cached: Path) -> Path | None:
        # Imported on the first thumbnail: Pillow and pillow-heif cost ~40 ms of start-up.
        from PIL import Image

        try:
            if source.stat().st_size > MAX_FILE_BYTES:
                raise TooLarge(f"the file is over {MAX_FILE_BYTES // (1024 * 1024)} MiB")
            with self._decodes:
                return self._make(source, cached)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            log.info("thumbnail.unavailable sha256=%s reason=%s", sha256, exc)
            return None

    def _make(self, source: Path, cached: Path) -> Path:
        from PIL import ImageOps

        from app.intake.media import open_image  # Pillow with HEIC support

        with open_image(source) as image:
            limit = MAX_PIXELS.get(image.format or "", MAX_PIXELS_OTHER)
            if image.width * image.height > limit:
                raise TooLarge(f"{image.width}x{image.height} is over {limit:,} pixels")
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


class _ItemLock:
    """Holds one item's lock; `first` is whether nobody else was making it when we came."""

    def __init__(self, owner: Thumbnails, sha256: str, lock: threading.Lock) -> None:
        self._owner, self._sha256, self._lock = owner, sha256, lock

    def __enter__(self) -> bool:
        first = self._lock.acquire(blocking=False)
        if not first:
            self._lock.acquire()
        return first

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()
        self._owner._release(self._sha256, self._lock)
