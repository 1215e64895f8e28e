"""A request body on its way in, whichever way it comes: from the socket or through ASGI.

`serve`'s protocol offers an upload's body straight from the socket (`app.socket_body`):
one reader thread takes it whole, feeding a blocking consumer. When that is not on offer
(another server, TLS, a chunked body) or every reader thread is busy, the body arrives as
ASGI messages on the event loop (`chunks`), each within the idle timeout, and the async
twins of the same steps handle it. Either way the consumer sees the same bytes in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from app.socket_body import Buffer, Claim, SocketBody

__all__ = ["Buffer", "Claim", "UploadBody"]

T = TypeVar("T")


@dataclass(frozen=True)
class UploadBody:
    """A body's pieces and framing; `socket` when the server can hand it to a thread."""

    chunks: AsyncIterator[bytes]
    declared_size: int | None
    content_type: str | None
    idle_timeout: float
    socket: SocketBody | None = None

    def claim(self) -> Claim | None:
        """The body for a reader thread, or None: read `chunks` instead."""
        if self.socket is None or self.declared_size is None:
            return None
        return self.socket.claim()

    async def read(self, claim: Claim, consume: Callable[[Iterator[Buffer]], T]) -> T:
        """`consume(pieces)` in the reader thread `claim` reserved; what it returned."""
        assert self.socket is not None, "a claim comes from the socket body"
        return await self.socket.read(claim, consume, self.idle_timeout)
