"""Stopping tasks for sure: a cancellation can be lost.

Before Python 3.12, ``asyncio.wait_for`` could swallow a cancellation that came as the
awaitable it waited for finished (CPython bpo-42130), and library code that waits with
timeouts (redis-py's, aiohttp's) runs inside the poll and replication loops, which outlive
their errors. A lost cancellation left ``gather`` waiting at shutdown for ever: twice in 10
runs of the replica suite under load, ``feedfix serve`` went on polling and did not stop
within 10 s of SIGTERM (which path lost it was not caught in the act). So tasks are cancelled
again until they end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

CANCEL_AGAIN = 0.5  # seconds a cancelled task may take before it is cancelled again


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], *, limit: float | None = None
) -> set[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait until they end, cancelling again each one that is still
    running ``CANCEL_AGAIN`` seconds later; the ones still running after ``limit`` seconds
    (None: no limit) are returned."""
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    while pending:
        for task in pending:
            task.cancel()
        wait = CANCEL_AGAIN if deadline is None else min(CANCEL_AGAIN, deadline - loop.time())
        if wait <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=wait)
    return pending
