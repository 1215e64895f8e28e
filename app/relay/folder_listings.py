"""What is already in each destination folder, listed once per relay pass.

Listing a large month folder for every photo is slow, so the relay keeps each folder's
names (keyed NFC + case-folded, as clashes are compared) while it has work, adds the names
it writes, and drops everything when it goes idle: the next pass sees files added behind
its back. Within a pass an exact-name file that appeared meanwhile is still caught, because
the target looks at the path before writing and never overwrites.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.naming import name_key

__all__ = ["FolderListings"]

ListNames = Callable[[str], Awaitable[list[str]]]


class FolderListings:
    """Per-folder name maps (name_key -> name), shared by the copies of one relay pass."""

    def __init__(self, list_names: ListNames) -> None:
        self._list_names = list_names
        self._folders: dict[str, asyncio.Future[dict[str, str]]] = {}

    async def taken(self, folder: str) -> dict[str, str]:
        """The names in `folder`; listed once, however many copies ask at the same time."""
        listing = self._folders.get(folder)
        if listing is None:
            listing = asyncio.ensure_future(self._list(folder))
            self._folders[folder] = listing
        try:
            return await asyncio.shield(listing)
        except Exception:
            if self._folders.get(folder) is listing:
                del self._folders[folder]  # a failed listing is asked again next time
            raise

    def add(self, folder: str, name: str) -> None:
        """A name now taken in `folder` (we wrote it, or found it in the way)."""
        listing = self._folders.get(folder)
        if (
            listing is not None
            and listing.done()
            and not listing.cancelled()
            and not listing.exception()
        ):
            listing.result().setdefault(name_key(name), name)

    def clear(self) -> None:
        """The pass is over: list again next time."""
        self._folders.clear()

    async def _list(self, folder: str) -> dict[str, str]:
        return {name_key(n): n for n in await self._list_names(folder)}
