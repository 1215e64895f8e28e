"""What a file is and when it was taken, read from its headers; never fails an upload.

Kind comes from the file's signature (filetype), never from its name or the client's
content type. Capture time: EXIF DateTimeOriginal with its offset for JPEG, HEIC and PNG,
the QuickTime/MP4 creation date for videos (UTC). Pixels are never decoded to find it:
the EXIF bytes are located by walking the file's boxes, segments or chunks within a
budget (app/intake/media_boxes.py); a file that does not fit it, or whose metadata is
damaged, gets no date from its bytes and `MediaInfo.problem` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Literal

import filetype
import pillow_heif
from PIL import Image

from app.intake.media_boxes import (
    Budget,
    OverBudget,
    heif_exif,
    jpeg_exif,
    png_exif,
    quicktime_created,
)

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

# Where each kind of file keeps its EXIF bytes; other images carry no date we read.
_EXIF_READERS: dict[str, Callable[[BinaryIO, Budget], bytes | None]] = {
    "image/jpeg": jpeg_exif,
    "image/heic": heif_exif,
    "image/heif": heif_exif,
    "image/avif": heif_exif,
    "image/png": png_exif,
}


@dataclass(frozen=True)
class MediaInfo:
    kind: Kind
    mime: str | None
    extension: str | None
    captured_at: datetime | None
    captured_source: Literal["exif", "quicktime"] | None
    # Why the bytes gave no capture time although they might have carried one.
    problem: str | None = None


def probe(path: Path) -> MediaInfo:
    """Kind and capture time of the file at `path`; unknown parts are None."""
    with path.open("rb") as stream:
        return _probe_stream(stream, path.name)


def _probe_stream(stream: BinaryIO, name: str) -> MediaInfo:
    guess = filetype.guess(stream)  # reads the signature, then seeks back to the start
    mime = guess.mime if guess else None
    extension = (_EXTENSION_BY_MIME.get(mime) or guess.extension) if guess and mime else None
    kind: Kind = "other"
    if mime and mime.startswith("image/"):
        kind = "photo"
    elif mime and mime.startswith("video/"):
        kind = "video"
    captured: datetime | None = None
    source: Literal["exif", "quicktime"] | None = None
    problem: str | None = None
    try:
        if kind == "photo" and mime in _EXIF_READERS:
            captured, source = _exif_capture_time(_EXIF_READERS[mime](stream, Budget())), "exif"
        elif kind == "video":
            captured, source = quicktime_created(stream, Budget()), "quicktime"
    except OverBudget as exc:
        problem = f"its metadata could not be read within the limits ({exc})"
    except Exception as exc:  # a damaged header must never cost the user the upload
        problem = f"its metadata is damaged ({type(exc).__name__}: {str(exc)[:200]})"
    if problem is not None:
        log.warning("media.metadata_unreadable path=%s reason=%s", name, problem)
    return MediaInfo(kind, mime, extension, captured, source if captured else None, problem)


def _exif_capture_time(tiff: bytes | None) -> datetime | None:
    if not tiff:
        return None
    exif = Image.Exif()
    exif.load(tiff)
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
