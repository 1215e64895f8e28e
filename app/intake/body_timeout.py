"""The idle timeout on request bodies: a body that stops arriving is refused, not waited for.

uvicorn limits how long a connection may sit idle between requests, not how long one body
may take; without this a client that trickles a byte a minute holds a connection and a
spool temp file for ever. Each chunk must arrive within the idle timeout of the one before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from app.errors import RequestTimeout

__all__ = ["idle_limited"]


async def idle_limited(chunks: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """Yield `chunks`, raising RequestTimeout (408) when the next is `seconds` late."""
    iterator = aiter(chunks)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(iterator), seconds)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout(
                f"The upload stopped: no data arrived for {seconds:g} seconds, so it was "
                "refused and nothing was stored. Check the connection and send the file again."
            ) from None
        yield chunk
