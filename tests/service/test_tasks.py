"""``cancel_and_wait``: a task that loses a cancellation (as a library's timeout handling can
make one do) still ends; one that never ends is returned after the limit."""

from __future__ import annotations

import asyncio
import contextlib

from feedfix.config import Config, FeedConfig
from feedfix.service.catalog import Catalog
from feedfix.service.metrics import Metrics
from feedfix.service.poll.poller import Poller
from feedfix.service.poll.transport import MockResponse, MockTransport
from feedfix.service.poll.worker import Worker
from feedfix.service.store.memory import MemoryStore
from feedfix.service.tasks import cancel_and_wait


async def _loses_one_cancellation(ended: list[bool]) -> None:
    """A retry loop around a wait that turned its cancellation into an error it outlives."""
    with contextlib.suppress(asyncio.CancelledError):  # lost, as a swallowed one is
        await asyncio.sleep(30)
    try:
        while True:
            await asyncio.sleep(0.01)
    finally:
        ended.append(True)


def test_a_task_that_lost_its_cancellation_is_cancelled_again() -> None:
    """One cancel() is swallowed; the second ends it, well within a second."""

    async def test() -> None:
        ended: list[bool] = []
        task = asyncio.create_task(_loses_one_cancellation(ended))
        await asyncio.sleep(0.01)
        late = await asyncio.wait_for(cancel_and_wait([task]), 5)
        assert late == set() and ended == [True] and task.cancelled()

    asyncio.run(test())


def test_a_task_that_never_ends_is_returned_after_the_limit() -> None:
    """A task that swallows every cancellation is given back once ``limit`` has passed."""
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)

    async def test() -> None:
        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0.01)
        assert await cancel_and_wait([task], limit=0.3) == {task}
        release.set()  # leave nothing behind
        task.cancel()
        await asyncio.wait([task], timeout=5)

    asyncio.run(test())


def test_poller_stop_ends_a_feed_task_that_lost_its_cancellation() -> None:
    """``Poller.stop`` returns although a feed's task swallowed the first cancellation (it
    waited in ``gather`` for ever: SIGTERM did not stop ``feedfix serve``)."""

    async def test() -> None:
        feed = FeedConfig(name="z", url="http://127.0.0.1:9/", interval=600.0)
        transport = MockTransport(lambda hop: MockResponse(500, {}))
        worker = Worker()
        poller = Poller(Config(feeds=(feed,)), MemoryStore(), Catalog(), Metrics(), worker,
                        transport=transport)  # fmt: skip
        await poller.load()
        ended: list[bool] = []
        poller.feeds["z"].task = asyncio.create_task(_loses_one_cancellation(ended))
        await asyncio.sleep(0.01)
        await asyncio.wait_for(poller.stop(), 5)
        assert ended == [True]
        worker.close()

    asyncio.run(test())
