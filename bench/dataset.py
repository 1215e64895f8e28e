"""The files the benchmarks send, made once per run in a temp dir and deleted after.

Photos are real JPEGs with an EXIF capture date (so the service reads metadata as it does
for a phone's photos), padded with random bytes to 4 MiB; the big file is random bytes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.support import samples as sample_media

__all__ = ["Dataset", "GeneratedFile", "MiB", "make_dataset"]

MiB = 1024 * 1024
CHUNK = MiB


@dataclass(frozen=True)
class Dataset:
    big: Path
    photos: list[Path]
    sha256: dict[Path, str]

    @property
    def photo_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.photos)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _random_file(path: Path, size: int, rng: random.Random, head: bytes = b"") -> None:
    with path.open("wb") as handle:
        handle.write(head)
        left = size - len(head)
        while left > 0:
            step = min(CHUNK, left)
            handle.write(rng.randbytes(step))
            left -= step


def make_dataset(folder: Path, *, big_bytes: int, photos: int, photo_bytes: int) -> Dataset:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(8)
    big = folder / "big.bin"
    _random_file(big, big_bytes, rng)
    taken = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    paths = []
    for index in range(photos):
        path = folder / f"IMG_{index:04d}.JPG"
        head = sample_media.jpeg(taken + timedelta(minutes=index), seed=index)
        _random_file(path, photo_bytes, rng, head)
        paths.append(path)
    return Dataset(big, paths, {p: _sha256(p) for p in [big, *paths]})


@dataclass(frozen=True)
class GeneratedFile:
    """A large file that exists only as a generator: 1 MiB blocks, each made distinct."""

    size: int
    seed: int = 0

    def chunks(self) -> Iterator[bytes]:
        base = random.Random(self.seed).randbytes(CHUNK)
        for index in range(self.size // CHUNK):
            yield index.to_bytes(8, "big") + base[8:]

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()
