"""Hostile media made on the fly: a pixel bomb PNG, a movie of empty atoms, a huge fake HEIC.

Each is built in well under a second. The PNG is valid and really decodes to its claimed
size (13000x13000 RGB is 507 MB of pixels in a 0.5 MB file): one compressed block of
zero rows, flushed so it can be repeated, then the stream's real checksum.
"""

from __future__ import annotations

import os
import struct
import zlib
from datetime import datetime
from pathlib import Path

from PIL import Image

__all__ = ["atom_bomb_movie", "exif_with_date", "pixel_bomb_png", "sparse_heic"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def exif_with_date(taken: datetime) -> bytes:
    exif = Image.Exif()
    exif[0x8769] = {0x9003: taken.strftime("%Y:%m:%d %H:%M:%S")}
    return exif.tobytes()


def pixel_bomb_png(width: int = 13000, height: int = 13000, exif: bytes | None = None) -> bytes:
    """A real RGB PNG of `width` x `height` black pixels; `exif` goes after the pixels."""
    rows_per_block = 100
    assert height % rows_per_block == 0
    block = (b"\0" * (1 + 3 * width)) * rows_per_block
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(height // rows_per_block):
        checksum = zlib.adler32(block, checksum)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    stream = b"\x78\xda" + segment * (height // rows_per_block) + final
    stream += struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    tail = _chunk(b"eXIf", exif) if exif else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", stream)
        + tail
        + _chunk(b"IEND", b"")
    )


def atom_bomb_movie(atoms: int = 2_000_000) -> bytes:
    """A QuickTime file of `atoms` empty atoms (8 bytes each), its moov at the very end."""
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", b"qt  ", 0x200, b"qt  ")
    empty = struct.pack(">I4s", 8, b"free")
    moov = struct.pack(">I4s", 8, b"moov")
    return ftyp + empty * atoms + moov


def sparse_heic(path: Path, size: int = 1 << 30) -> Path:
    """A file of `size` bytes (sparse: no disk used) that opens with HEIC's magic bytes."""
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"heic", 0, b"mif1", b"heic")
    with path.open("wb") as handle:
        handle.write(ftyp + struct.pack(">I4s", 0, b"mdat"))  # mdat: "to the end of the file"
        handle.truncate(size)
    os.utime(path)
    return path
