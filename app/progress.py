"""Copy progress: how many bytes of each file under way the relay has sent to the target.

The relay opens `tracking(...)` around one copy; while it is open, a target may call
`report_sent(n)` after each chunk it sends, from any thread (the context travels into
`asyncio.to_thread`). Reporting is optional: a target that never reports shows its copy as
"copying" without a percentage. Changes are handed on at most every `min_interval` seconds
per file, so a fast copy does not flood the event hub.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CopyProgress", "ProgressBoard", "report_sent"]

Publish = Callable[[dict[str, Any]], None]

# The copy running in this task (and the threads it starts); None outside a copy.
_current: ContextVar[CopyProgress | None] = ContextVar("photo_relay_copy", default=None)


@dataclass
class CopyProgress:
    """One file on its way to the target."""

    sha256: str
    name: str
    size: int
    sent: int = 0
    reported: bool = False
    board: ProgressBoard | None = field(default=None, repr=False)
    _published_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_event(self) -> dict[str, Any]:
        return {
            "type": "progress",
            "sha256": self.sha256,
            "name": self.name,
            "size": self.size,
            "sent": self.sent if self.reported else None,
        }


def report_sent(nbytes: int) -> None:
    """Called by a target after sending `nbytes` more of the current file; cheap and safe."""
    progress = _current.get()
    if progress is not None and progress.board is not None:
        progress.board.advance(progress, nbytes)


class ProgressBoard:
    """The copies under way and their bytes sent; publishes progress events."""

    def __init__(self, publish: Publish | None = None, *, min_interval: float = 0.2) -> None:
        self._publish = publish
        self._min_interval = min_interval
        self._copies: dict[str, CopyProgress] = {}
        self._lock = threading.Lock()

    @contextmanager
    def tracking(self, sha256: str, name: str, size: int) -> Iterator[CopyProgress]:
        progress = CopyProgress(sha256, name, size, board=self)
        with self._lock:
            self._copies[sha256] = progress
        token = _current.set(progress)
        self._emit(progress)
        try:
            yield progress
        finally:
            _current.reset(token)
            with self._lock:
                self._copies.pop(sha256, None)
            self._emit({"type": "progress_done", "sha256": sha256})

    def advance(self, progress: CopyProgress, nbytes: int) -> None:
        with progress._lock:
            progress.sent = min(progress.size, progress.sent + nbytes)
            progress.reported = True
            moment = time.monotonic()
            due = progress.sent >= progress.size or (
                moment - progress._published_at >= self._min_interval
            )
            if due:
                progress._published_at = moment
        if due:
            self._emit(progress)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [p.as_event() for p in self._copies.values()]

    def _emit(self, what: CopyProgress | dict[str, Any]) -> None:
        if self._publish is not None:
            self._publish(what.as_event() if isinstance(what, CopyProgress) else what)
