"""Sample media made on the fly: JPEG and HEIC with EXIF capture dates, QuickTime movies.

Nothing is downloaded; each maker returns the file's bytes so tests can hash and send them.
"""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

_QUICKTIME_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)


def _exif(taken: datetime) -> bytes:
    exif = Image.Exif()
    sub = {0x9003: taken.strftime("%Y:%m:%d %H:%M:%S")}
    offset = taken.utcoffset()
    if offset is not None:
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        sub[0x9011] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    exif[0x8769] = sub
    return exif.tobytes()


def _image(seed: int) -> Image.Image:
    colour = ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256)
    image = Image.new("RGB", (32, 24), colour)
    image.putpixel((seed % 32, (seed // 32) % 24), (255 - colour[0], 0, 0))
    return image


def jpeg(taken: datetime | None = None, *, seed: int = 0, padding: int = 0) -> bytes:
    """A small JPEG; `taken` becomes DateTimeOriginal (+ OffsetTimeOriginal if aware)."""
    out = io.BytesIO()
    kwargs = {"exif": _exif(taken)} if taken else {}
    _image(seed).save(out, "JPEG", **kwargs)
    # A trailing comment segment after EOI makes large files cheaply and stays a valid JPEG.
    return out.getvalue() + bytes(padding)


def heic(taken: datetime | None = None, *, seed: int = 0) -> bytes:
    """A small HEIC with EXIF, as an iPhone writes it."""
    out = io.BytesIO()
    kwargs = {"exif": _exif(taken)} if taken else {}
    _image(seed).save(out, "HEIF", **kwargs)
    return out.getvalue()


def _atom(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def quicktime(created: datetime, *, seed: int = 0, payload_size: int = 4096) -> bytes:
    """A minimal QuickTime movie whose mvhd creation date is `created` (stored as UTC)."""
    stamp = int((created.astimezone(UTC) - _QUICKTIME_EPOCH).total_seconds())
    mvhd = struct.pack(
        ">B3sIIII I H 10s 36s 7I",
        0,
        b"\0\0\0",
        stamp,
        stamp,
        600,
        600 * 5,
        0x00010000,
        0x0100,
        b"\0" * 10,
        struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000),
        0,
        0,
        0,
        0,
        0,
        0,
        2,
    )
    ftyp = _atom(b"ftyp", b"qt  " + struct.pack(">I", 0x200) + b"qt  ")
    moov = _atom(b"moov", _atom(b"mvhd", mvhd))
    body = bytes((seed + i) % 251 for i in range(payload_size))
    return ftyp + moov + _atom(b"mdat", body)
