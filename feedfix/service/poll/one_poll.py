"""One poll of one feed: fetch (or read the local source), clean in the worker, decide,
store under the lease's fence, publish, count and log.

What the poll means is decided in ``decide.py`` without I/O; this module does the I/O
around it. Store calls run one at a time on the store's own thread (``StoreCalls``), so the
event loop never waits on SQLite or Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

from feedfix.config import Config
from feedfix.core.errors import FeedfixError
from feedfix.core.model import Entry
from feedfix.service.coordination import Lease
from feedfix.service.image_archive import ImageRefs
from feedfix.service.logs import log
from feedfix.service.poll.decide import (
    Attempt,
    DecisionSettings,
    Write,
    decide,
    request_for,
    settle,
)
from feedfix.service.poll.fetch import fetch
from feedfix.service.poll.fetch_types import FetchResult
from feedfix.service.poll.local import read_local
from feedfix.service.poll.publish import Publisher
from feedfix.service.poll.runtime import FeedRuntime
from feedfix.service.poll.transport import Transport
from feedfix.service.poll.worker import Cleaned, Job, Worker
from feedfix.service.store import Fenced, Store, StoreError
from feedfix.service.trim import Trimmer

P = ParamSpec("P")
T = TypeVar("T")


class StoreCalls:
    """The store's calls, made one at a time on its own thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedfix-store")

    async def run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call(*args, **kwargs)`` on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: call(*args, **kwargs))

    def close(self) -> None:
        """Wait for the calls in flight, then end the thread."""
        self.executor.shutdown(wait=True)


class OnePoll:
    """Polls one feed at a time when asked (the poller runs the schedule)."""

    def __init__(
        self,
        calls: StoreCalls,
        cleaner: Worker,
        publisher: Publisher,
        adopt: Callable[[str], Awaitable[None]],
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
        draw: Callable[[], float],
        images: ImageRefs | None = None,
    ) -> None:
        self.calls = calls
        self.store = calls.store
        self.cleaner = cleaner
        self.publisher = publisher
        self.adopt = adopt  # serve the store's copy of a feed (the poller's)
        self.clock = clock
        self.monotonic = monotonic
        self.draw = draw
        self.images = images  # the image archive, told each stored poll's entries' images
        self.transport: Transport | None = None  # set by ``Poller.start``
        self.trim = Trimmer()
        self._restarting = asyncio.Lock()

    async def run(self, runtime: FeedRuntime, config: Config, lease: Lease | None) -> float:
        """Fetch, republish, store and serve one feed; seconds until the next poll. ``lease``
        is the one this poll runs under: its token fences the write (refused when another
        replica has polled since: its copy is adopted instead)."""
        if self.transport is None:
            raise RuntimeError("Poller.start() must run before poll()")
        feed = runtime.config
        request = request_for(runtime.memory, feed, config.poll)
        started, began = self.clock(), self.monotonic()
        result: FetchResult | None = None
        made: Cleaned | None = None
        error: FeedfixError | None = None
        try:
            if feed.path is not None:  # a local file or folder, read off the event loop
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(None, read_local, feed.path, request)
            else:
                result = await fetch(self.transport, request)
            if result.status == 200:
                made = await self._clean(runtime, result, config)
        except FeedfixError as exc:  # every expected failure; anything else is a bug
            error = exc
        attempt = Attempt(started, self.monotonic() - began, result, made, error)
        decision = decide(
            runtime.memory,
            attempt,
            self.clock(),
            DecisionSettings.of(feed, config.poll),
            self.draw(),
        )
        held = runtime.memory
        runtime.memory = decision.memory
        runtime.error_kind = decision.error_kind
        try:
            failure = await self._store(feed.name, decision.write, lease)
        except Fenced as exc:  # a newer poll elsewhere: its result stands, and is served
            self.publisher.metrics.fenced.inc()
            log("publish refused", logging.WARNING, feed=feed.name, error=str(exc))
            runtime.memory = held
            await self.adopt(feed.name)
            return decision.delay
        runtime.memory = settle(runtime.memory, decision.write, failure, self.clock())
        if held.lost and failure is None and decision.write.published is not None:
            # the store had lost this feed (Redis came back empty): this write put it back
            # before the replicas' check of the store did
            self.publisher.metrics.restored.inc()
            log("restored into an empty store", feed=feed.name, by="poll")
        if made is not None and made.sources is not None and failure is None:
            runtime.has_sources = await self._store_sources(feed.name, made.sources)
        images = made.images if made is not None and failure is None else None
        if images is not None and self.images is not None:
            self.images.published(images)  # queued: the poll never waits for an image
        self.publisher.catalog.record_poll(
            feed.name, decision.outcome, started, made.rule_changes if made else None
        )
        if made is not None:  # the archive read, the rows written: give their pages back
            await self.calls.run(self.trim)
        self.publisher.publish(runtime, config)
        self.publisher.count(feed.name, decision, attempt, made)
        self.publisher.log(runtime, decision, attempt, made, config.poll.max_backoff)
        return decision.delay

    async def _clean(self, runtime: FeedRuntime, result: FetchResult, config: Config) -> Cleaned:
        """Republish in the cleaning worker (a new one if it died: this poll then fails)."""
        try:  # read for this poll only: what the process keeps is what it serves
            archive = await self.calls.run(self.store.load_archive, runtime.config.name)
        except StoreError as exc:
            raise FeedfixError(f"cannot read the archive: {exc}") from exc
        base = config.server.base_url
        name = runtime.config.name
        job = Job(
            feed=runtime.config,
            data=result.body,
            now=self.clock(),
            self_url=f"{base.rstrip('/')}/feeds/{name}.atom" if base else None,
            encoding_hint=result.charset,
            served=runtime.memory.published,
            resend=runtime.memory.resend,
            want_sources=not runtime.has_sources,
            archive=archive,
            posts=result.posts,
            image_base=base if self.images is not None else None,
        )
        generation = self.cleaner.generation
        try:
            return await self.cleaner.republish(job)
        except BrokenProcessPool as exc:
            async with self._restarting:  # every poll in flight sees it die: replace it once
                if self.cleaner.generation == generation:
                    log("cleaning worker died; restarting it", logging.ERROR)
                    self.cleaner.restart()  # each job brings its archive: nothing to hand it
            raise FeedfixError("the cleaning worker died while cleaning this feed") from exc

    async def _store(self, name: str, write: Write, lease: Lease | None) -> str | None:
        """Write the poll; returns why it could not be stored (the copy in memory is served
        all the same). A StoreError is an outage of the store (locked, disk full); anything
        else is a bug, logged with its traceback. ``Fenced`` (the lease passed on) is raised."""
        fence = lease.token if lease is not None else None
        try:
            await self.calls.run(
                self.store.save,
                name,
                write.state,
                write.record,
                write.published,
                write.archive,
                fence=fence,
            )
        except Fenced:
            raise
        except StoreError as exc:
            log("storage failed", logging.ERROR, feed=name, error=str(exc))
            return str(exc)
        except Exception as exc:
            log(
                "storage crashed",
                logging.ERROR,
                feed=name,
                error=repr(exc),
                traceback=traceback.format_exc(),
            )
            return f"internal error ({type(exc).__name__})"
        return None

    async def _store_sources(self, name: str, sources: tuple[Entry, ...]) -> bool:
        """Keep the window's entries as received, for the inspector (best effort: a failure
        is logged, asked for again with the next 200, and the feed is served all the same)."""
        try:
            await self.calls.run(self.store.save_sources, name, sources)
        except StoreError as exc:
            log("storing the sources failed", logging.ERROR, feed=name, error=str(exc))
            return False
        return True
