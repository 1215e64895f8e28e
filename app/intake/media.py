"""What a file is and when it was taken, read from its bytes; never fails an upload.

Kind comes from the file's signature (filetype), never from its name or the client's
content type. Capture time: EXIF DateTimeOriginal with its offset for JPEG/HEIC
(Pillow with pillow-heif), the QuickTime/MP4 creation date for videos (hachoir, UTC).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import filetype
import pillow_heif
from PIL import Image

__all__ = ["Kind", "MediaInfo", "open_image", "probe"]

log = logging.getLogger(__name__)

pillow_heif.register_heif_opener()


def open_image(path: Path) -> Image.Image:
    """Pillow's `Image.open`, able to read HEIC too (pillow-heif is registered above)."""
    return Image.open(path)


_EXIF_IFD = 0x8769
_DATE_TIME = 0x0132
_DATE_TIME_ORIGINAL, _DATE_TIME_DIGITIZED = 0x9003, 0x9004
_OFFSET_TIME, _OFFSET_TIME_ORIGINAL, _OFFSET_TIME_DIGITIZED = 0x9010, 0x9011, 0x9012

Kind = Literal["photo", "video", "other"]

# Extensions we trust a signature to name, used when a file arrives without a name.
_EXTENSION_BY_MIME = {
    "image/heic": "heic",
    "image/heif": "heif",
    "image/jpeg": "jpg",
    "video/quicktime": "mov",
    "video/mp4": "mp4",
}


@dataclass(frozen=True)
class MediaInfo:
    kind: Kind
    mime: str | None
    extension: str | None
    captured_at: datetime | None
    captured_source: Literal["exif", "quicktime"] | None


def probe(path: Path) -> MediaInfo:
    """Kind and capture time of the file at `path`; unknown parts are None."""
    guess = filetype.guess(str(path))
    mime = guess.mime if guess else None
    extension = (_EXTENSION_BY_MIME.get(mime) or guess.extension) if guess and mime else None
    kind: Kind = "other"
    if mime and mime.startswith("image/"):
        kind = "photo"
    elif mime and mime.startswith("video/"):
        kind = "video"
    captured: datetime | None = None
    source: Literal["exif", "quicktime"] | None = None
    try:
        if kind == "photo":
            captured, source = _exif_capture_time(path), "exif"
        elif kind == "video":
            captured, source = _quicktime_capture_time(path), "quicktime"
    except Exception:  # a damaged header must never cost the user the upload
        log.warning("media.metadata_unreadable path=%s", path.name, exc_info=True)
        captured = None
    return MediaInfo(kind, mime, extension, captured, source if captured else None)


def _exif_capture_time(path: Path) -> datetime | None:
    # Image.open reads headers only; pixels are never decoded here.
    with open_image(path) as image:
        exif = image.getexif()
    sub = exif.get_ifd(_EXIF_IFD)
    for date_tag, offset_tag in (
        (_DATE_TIME_ORIGINAL, _OFFSET_TIME_ORIGINAL),
        (_DATE_TIME_DIGITIZED, _OFFSET_TIME_DIGITIZED),
    ):
        if date_tag in sub:
            return _exif_datetime(sub[date_tag], sub.get(offset_tag))
    if _DATE_TIME in exif:
        return _exif_datetime(exif[_DATE_TIME], sub.get(_OFFSET_TIME))
    return None


def _exif_datetime(raw: object, offset: object) -> datetime | None:
    try:
        taken = datetime.strptime(str(raw).strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return taken.replace(tzinfo=_parse_offset(str(offset)) if offset else None)


def _parse_offset(text: str) -> timezone | None:
    text = text.strip()
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        minutes = int(text[1:3]) * 60 + int(text[4:6])
    except ValueError:
        return None
    return timezone(timedelta(minutes=minutes if text[0] == "+" else -minutes))


def _quicktime_capture_time(path: Path) -> datetime | None:
    from hachoir.core import config as hachoir_config
    from hachoir.metadata import extractMetadata
    from hachoir.parser import createParser

    hachoir_config.quiet = True  # it would print warnings about odd atoms to stdout

    parser = createParser(str(path))
    if parser is None:
        return None
    with parser:
        metadata = extractMetadata(parser)
    if metadata is None or not metadata.has("creation_date"):
        return None
    created = metadata.get("creation_date")
    if not isinstance(created, datetime) or created.year < 1971:
        return None  # QuickTime's zero date (1904) means "unknown"
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created
