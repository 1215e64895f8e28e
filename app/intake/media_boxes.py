"""Metadata read straight from a file's structure, within a budget: boxes, segments, chunks.

Each reader walks headers only and seeks past payloads, so a 1 GiB file costs what its
headers cost. The depth walked is fixed by each reader (three levels at most: meta, iinf,
infe), never by the file. A `Budget` caps the boxes (atoms, segments, chunks) looked at,
the bytes read into memory and the time spent; a file that needs more raises
`OverBudget`, and the caller stores it without a date from its bytes. Readers:
`heif_exif` (HEIC/HEIF/AVIF: the Exif item through meta/iinf/iloc), `jpeg_exif` (the APP1
segment), `png_exif` (the eXIf chunk), `quicktime_created` (moov/mvhd, for MOV and MP4).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

__all__ = [
    "Budget",
    "OverBudget",
    "heif_exif",
    "jpeg_exif",
    "png_exif",
    "quicktime_created",
]

MAX_BOXES = 10_000
MAX_READ_BYTES = 4 * 1024 * 1024
MAX_SECONDS = 2.0
_QUICKTIME_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)


class OverBudget(Exception):
    """The metadata could not be reached within the budget; the message says which part."""


@dataclass
class Budget:
    """What one file's metadata may cost; `spend` and `read` raise OverBudget past it."""

    boxes: int = MAX_BOXES
    read_bytes: int = MAX_READ_BYTES
    seconds: float = MAX_SECONDS
    _started: float = field(default_factory=time.monotonic)
    _read: int = 0

    def spend(self, what: str) -> None:
        self.boxes -= 1
        if self.boxes < 0:
            raise OverBudget(f"more than {MAX_BOXES} {what} before the metadata")
        if time.monotonic() - self._started > self.seconds:
            raise OverBudget(f"reading the metadata took over {self.seconds:g} s")

    def read(self, stream: BinaryIO, size: int) -> bytes:
        self._read += size
        if size < 0 or self._read > self.read_bytes:
            raise OverBudget(f"the metadata is over {self.read_bytes // (1024 * 1024)} MiB")
        data = stream.read(size)
        if len(data) != size:
            raise ValueError("the file ends inside its metadata")
        return data


@dataclass(frozen=True)
class Box:
    kind: bytes
    start: int  # of the payload
    size: int | None  # of the payload; None: to the end of the file


def _boxes(stream: BinaryIO, start: int, end: int | None, budget: Budget) -> Iterator[Box]:
    """The ISO BMFF / QuickTime boxes between `start` and `end`, headers only."""
    position = start
    while end is None or position + 8 <= end:
        stream.seek(position)
        header = stream.read(8)
        if len(header) < 8:
            return
        budget.spend("boxes")
        size, kind = struct.unpack(">I4s", header)
        header_size = 8
        if size == 1:
            large = stream.read(8)
            if len(large) < 8:
                return
            size, header_size = struct.unpack(">Q", large)[0], 16
        if size == 0:
            yield Box(kind, position + header_size, None)
            return
        if size < header_size:
            raise ValueError(f"a box {kind!r} claims {size} bytes")
        yield Box(kind, position + header_size, size - header_size)
        position += size


def _find(stream: BinaryIO, parent: Box | None, kind: bytes, budget: Budget) -> Box | None:
    start = parent.start if parent else 0
    end = None if parent is None or parent.size is None else parent.start + parent.size
    return next((box for box in _boxes(stream, start, end, budget) if box.kind == kind), None)


def _payload(stream: BinaryIO, box: Box, budget: Budget) -> bytes:
    if box.size is None:
        raise OverBudget(f"the {box.kind.decode('latin-1')} box runs to the end of the file")
    stream.seek(box.start)
    return budget.read(stream, box.size)


# -- QuickTime / MP4 ----------------------------------------------------------------------


def quicktime_created(stream: BinaryIO, budget: Budget) -> datetime | None:
    """moov/mvhd's creation time (UTC); None when absent or QuickTime's zero date."""
    moov = _find(stream, None, b"moov", budget)
    mvhd = _find(stream, moov, b"mvhd", budget) if moov else None
    if mvhd is None:
        return None
    stream.seek(mvhd.start)
    version = budget.read(stream, 4)[0]
    if version == 1:
        seconds = struct.unpack(">Q", budget.read(stream, 8))[0]
    else:
        seconds = struct.unpack(">I", budget.read(stream, 4))[0]
    created = _QUICKTIME_EPOCH + timedelta(seconds=seconds)  # OverflowError past 9999
    return None if created.year < 1971 else created  # 1904 means "unknown"


# -- HEIF ---------------------------------------------------------------------------------


def _uint(data: bytes, offset: int, size: int) -> tuple[int, int]:
    if size == 0:
        return 0, offset
    if offset + size > len(data):
        raise ValueError("a HEIF item table is cut short")
    return int.from_bytes(data[offset : offset + size], "big"), offset + size


def _exif_item_id(stream: BinaryIO, iinf: Box, budget: Budget) -> int | None:
    stream.seek(iinf.start)
    version = budget.read(stream, 4)[0]
    first = iinf.start + 4 + (2 if version == 0 else 4)
    end = None if iinf.size is None else iinf.start + iinf.size
    for infe in _boxes(stream, first, end, budget):
        if infe.kind != b"infe":
            continue
        data = _payload(stream, infe, budget)
        if data[0] < 2:
            continue  # versions 0 and 1 name no item type
        id_size = 2 if data[0] == 2 else 4
        item_id, offset = _uint(data, 4, id_size)
        if data[offset + 2 : offset + 6] == b"Exif":
            return item_id
    return None


def _item_extents(iloc: bytes, wanted: int) -> tuple[int, list[tuple[int, int]]] | None:
    """(construction method, [(offset, length)]) of item `wanted` in an iloc payload."""
    version = iloc[0]
    offset_size, length_size = iloc[4] >> 4, iloc[4] & 15
    base_size, index_size = iloc[5] >> 4, (iloc[5] & 15) if version in (1, 2) else 0
    count, at = _uint(iloc, 6, 2 if version < 2 else 4)
    for _ in range(count):
        item_id, at = _uint(iloc, at, 2 if version < 2 else 4)
        method = 0
        if version in (1, 2):
            method_field, at = _uint(iloc, at, 2)
            method = method_field & 15
        _, at = _uint(iloc, at, 2)  # data reference index
        base, at = _uint(iloc, at, base_size)
        extent_count, at = _uint(iloc, at, 2)
        extents = []
        for _ in range(extent_count):
            _, at = _uint(iloc, at, index_size)
            extent_offset, at = _uint(iloc, at, offset_size)
            extent_length, at = _uint(iloc, at, length_size)
            extents.append((base + extent_offset, extent_length))
        if item_id == wanted:
            return method, extents
    return None


def heif_exif(stream: BinaryIO, budget: Budget) -> bytes | None:
    """The TIFF bytes of a HEIF file's Exif item, or None if it has none."""
    meta = _find(stream, None, b"meta", budget)
    if meta is None or meta.size is None:
        return None
    inner = Box(b"meta", meta.start + 4, meta.size - 4)  # meta is a full box
    iinf = _find(stream, inner, b"iinf", budget)
    iloc = _find(stream, inner, b"iloc", budget)
    if iinf is None or iloc is None:
        return None
    item_id = _exif_item_id(stream, iinf, budget)
    if item_id is None:
        return None
    located = _item_extents(_payload(stream, iloc, budget), item_id)
    if located is None:
        return None
    method, extents = located
    origin = 0
    if method == 1:  # offsets into meta's idat box
        idat = _find(stream, inner, b"idat", budget)
        if idat is None:
            return None
        origin = idat.start
    elif method != 0:
        return None
    data = bytearray()
    for offset, length in extents:
        stream.seek(origin + offset)
        data += budget.read(stream, length)
    # The item opens with the offset of the TIFF header past these four bytes.
    skip = int.from_bytes(data[:4], "big") if len(data) >= 4 else 0
    return bytes(data[4 + skip :])


# -- JPEG and PNG -------------------------------------------------------------------------


def jpeg_exif(stream: BinaryIO, budget: Budget) -> bytes | None:
    """The APP1 Exif segment's TIFF bytes, from the segments before the image data."""
    stream.seek(2)  # past SOI
    while True:
        budget.spend("JPEG segments")
        marker = stream.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind in (0xD9, 0xDA):  # end of image, start of scan: no metadata beyond
            return None
        if kind == 0x01 or 0xD0 <= kind <= 0xD8 or kind == 0xFF:
            if kind == 0xFF:
                stream.seek(-1, 1)  # a fill byte
            continue
        length = struct.unpack(">H", budget.read(stream, 2))[0]
        if length < 2:
            raise ValueError("a JPEG segment claims less than its own length")
        if kind == 0xE1:
            payload = budget.read(stream, length - 2)
            if payload.startswith(b"Exif\x00\x00"):
                return payload[6:]
        else:
            stream.seek(length - 2, 1)


def png_exif(stream: BinaryIO, budget: Budget) -> bytes | None:
    """The eXIf chunk's TIFF bytes; chunks are walked by their headers, pixels never read."""
    stream.seek(8)  # past the signature
    while True:
        header = stream.read(8)
        if len(header) < 8:
            return None
        budget.spend("PNG chunks")
        length, kind = struct.unpack(">I4s", header)
        if kind == b"eXIf":
            return budget.read(stream, length)
        if kind == b"IEND":
            return None
        stream.seek(length + 4, 1)  # data and CRC
