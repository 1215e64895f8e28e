"""Supervised background tasks: kept referenced, crashes logged and restarted, stopped cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["SupervisedTask"]

log = logging.getLogger(__name__)


class SupervisedTask:
    """Runs `work()` until stopped; if it crashes, logs why and starts it again."""

    def __init__(
        self,
        name: str,
        work: Callable[[], Coroutine[Any, Any, None]],
        *,
        restart_delay: float = 5.0,
    ) -> None:
        self.name = name
        self._work = work
        self._restart_delay = restart_delay
        self._task: asyncio.Task[None] | None = None
        self.crashes = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=self.name)

    async def _supervise(self) -> None:
        while True:
            try:
                await self._work()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.crashes += 1
                log.exception("task.crashed name=%s crashes=%d", self.name, self.crashes)
                await asyncio.sleep(self._restart_delay)

    async def stop(self, grace: float = 10.0) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self._task, timeout=grace)
