"""The pages' heavy work in a process of its own, under a deadline.

The playground converts whatever anyone pastes (open to all unless ``admin_token`` is set)
and the inspector runs the rules one at a time over an upstream's entries. Much of that
work is pure Python or a regular expression, which holds the GIL: in a thread of the
server, a document built to be slow would stop every other request for as long as it ran.
Here it runs in one worker process, one job at a time, so serving never waits on it; a job
still running after ``DEADLINE`` has its process killed (the next job gets a new one) and
its page says the document took too long.

The worker is started at the first use, from multiprocessing's fork server (a fresh
interpreter that has imported the pages and the core, not a fork of the running server
and its threads). Where no process can be started (a read-only root without a writable
``/tmp`` for the fork server's socket, say), the work runs in a thread as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.pool
from collections.abc import Callable
from typing import Any, TypeVar

from feedfix.service.logs import log

DEADLINE = 20.0  # seconds one page's work may take
PRELOADED = ["feedfix.service.web.inspector"]  # what the fork server imports once
T = TypeVar("T")


class TooSlow(Exception):
    """The work ran past the deadline and was stopped."""


class Offload:
    """Runs functions (importable by name, with picklable arguments) in the worker."""

    def __init__(self, deadline: float = DEADLINE) -> None:
        self.deadline = deadline
        self._pool: multiprocessing.pool.Pool | None = None
        self._in_thread = False  # no process could be started: threads from now on
        self._turn = asyncio.Lock()

    def _start(self) -> multiprocessing.pool.Pool | None:
        if self._pool is None and not self._in_thread:
            try:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(PRELOADED)
                self._pool = context.Pool(1)
            except OSError as exc:
                self._in_thread = True
                log("the pages' work runs in a thread (no worker process)", error=str(exc))
        return self._pool

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the worker; TooSlow past the deadline."""
        loop = asyncio.get_running_loop()
        async with self._turn:  # one job at a time: the worker has one process
            pool = self._start()
            if pool is None:
                return await loop.run_in_executor(None, function, *args)
            done: asyncio.Future[T] = loop.create_future()

            def settle(outcome: Any, failed: bool = False) -> None:
                def apply() -> None:
                    if done.done():
                        return
                    if failed:
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)

                with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                    loop.call_soon_threadsafe(apply)

            pool.apply_async(
                function, args, callback=settle, error_callback=lambda e: settle(e, True)
            )
            try:
                return await asyncio.wait_for(done, self.deadline)
            except TimeoutError:
                await loop.run_in_executor(None, self._stop)
                raise TooSlow(f"took more than {self.deadline:g} s") from None

    def _stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()

    async def close(self) -> None:
        """Stop the worker (at shutdown)."""
        await asyncio.get_running_loop().run_in_executor(None, self._stop)
