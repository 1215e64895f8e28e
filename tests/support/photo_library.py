"""Fake photo libraries for the shortcut interpreter: realistic shapes, made in milliseconds.

Every asset gets unique bytes (a small JPEG with its capture date, plus a trailer naming
it), so the service can tell them apart by hash. The shapes are the ones that broke the
old walk: busy days, bursts within one second, very old scans, thousands in one day,
photos added later with an old date, edits after a backup, deletions.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from tests.support import samples
from tests.support.shortcut_interpreter import BERLIN, Asset

__all__ = ["Library", "unique_jpeg"]

# The library's "now" is the real one: the service walks changes from its own clock.
NOW = datetime.now(BERLIN).replace(microsecond=0) - timedelta(hours=2)


def unique_jpeg(taken: datetime, number: int) -> bytes:
    """A JPEG whose EXIF date is `taken`, with a trailer that makes its bytes unique."""
    body = samples.jpeg(taken.replace(tzinfo=None), seed=number % 997)
    return body + f"\n#asset-{number}".encode()


class Library:
    """Builds a list of assets; `number` keeps names and bytes unique across calls."""

    def __init__(self, seed: int = 7) -> None:
        self.assets: list[Asset] = []
        self.number = 0
        self.random = random.Random(seed)

    def photo(self, taken: datetime, *, added: datetime | None = None, **extra: object) -> Asset:
        self.number += 1
        asset = Asset(
            f"IMG_{self.number:04d}",
            "JPG",
            taken,
            unique_jpeg(taken, self.number),
            modified=added or taken + timedelta(seconds=2),
            **extra,  # type: ignore[arg-type]
        )
        self.assets.append(asset)
        return asset

    def day(self, day: datetime, count: int) -> list[Asset]:
        """`count` photos spread over one local day (08:00 to 22:00), in order."""
        start = day.replace(hour=8, minute=0, second=0, microsecond=0)
        step = max(1, (14 * 3600) // max(count, 1))
        return [self.photo(start + timedelta(seconds=i * step)) for i in range(count)]

    def burst(self, moment: datetime, count: int) -> list[Asset]:
        """`count` photos within one second (Burst, or many photos saved together)."""
        return [self.photo(moment + timedelta(microseconds=i * 1000)) for i in range(count)]

    def ordinary(self, days: int, end: datetime = NOW, most: int = 9) -> list[Asset]:
        """0 to `most` photos a day for `days` days up to `end`."""
        made = []
        for back in range(days, 0, -1):
            made += self.day(end - timedelta(days=back), self.random.randint(0, most))
        return made

    def edit(self, asset: Asset, at: datetime) -> None:
        """An edit after the fact: the render is what gets sent now; the size may not change."""
        render = bytearray(asset.data)
        render[-1:] = b"E"  # same length as the original: only the bytes tell them apart
        asset.edited = bytes(render)
        # PhotoKit's modificationDate only moves forward (an album may have moved it to
        # the real now already, while this library's clock runs two hours behind).
        asset.modified = max(at, asset.changed_at() + timedelta(seconds=1))
