"""The home copy under guard while it is copied: missing or damaged bytes are named so.

A copy that fails its check at the destination may be the destination's fault (retry) or
the home copy's (bit rot, a file changed or removed by hand): only a re-read at home tells
which. A missing or short copy is seen before anything is sent. Either way the relay gets
`HomeCopyDamaged`, never a retry loop, and never delivers the damaged bytes as verified.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.errors import HomeCopyDamaged, VerificationFailed
from app.store.spool import Spool

__all__ = ["home_copy_checked"]


@asynccontextmanager
async def home_copy_checked(spool: Spool, sha256: str, size: int) -> AsyncIterator[None]:
    """Raise HomeCopyDamaged, before or after the copy, if the home copy is to blame."""
    problem = await spool.acopy_problem(sha256, size)
    if problem is not None:
        raise HomeCopyDamaged(problem)
    try:
        yield
    except (VerificationFailed, OSError) as exc:
        # Only on failure: a healthy copy is read once, by the target, as before.
        problem = await spool.acopy_damage(sha256, size)
        if problem is not None:
            raise HomeCopyDamaged(problem) from exc
        raise
