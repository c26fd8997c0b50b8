"""One background-loop helper for every long-running task of a service (the outbox
relay, each listener): started once, stopped once, and never dead in silence."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Loop:
    """Runs `step()` again and again in a task of its own until `stop()`.

    A step that raises is logged with its traceback and the loop goes on after `pause`
    seconds: a transient fault (a database blip, a bug hit by one message) never ends
    the loop silently while the process keeps answering as if all were well.
    """

    def __init__(self, name: str, step: Callable[[], Awaitable[None]], *, pause: float = 1.0):
        self.name = name
        self._step = step
        self._pause = pause
        self._task: asyncio.Task[None] | None = None
        self.stopping = False  # a flag as well as the cancel: 3.11 can swallow a cancel

    def start(self) -> None:
        self.stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self.stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while not self.stopping:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: step failed; going on in %ss", self.name, self._pause)
                await asyncio.sleep(self._pause)
