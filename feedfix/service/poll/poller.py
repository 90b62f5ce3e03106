"""The poller: one task per feed, each a good citizen of its upstream.

A per-feed schedule with jitter, bounded concurrency overall and per upstream host, the
config's reloads, and the copies other replicas store. Each poll is ``one_poll.py``'s
(conditional GETs, cleaning in the worker, the decision of ``decide.py``); what a feed's
state becomes in the catalog, the metrics and the log is ``publish.py``'s.

Replicas on one shared store (Redis) take a feed's lease before each poll (``coordination.py``)
and store under its fencing token; a replica that is not polling a feed serves the copy the
others store (``replicas/replication.py`` calls ``adopt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

from feedfix.config import Config, FeedConfig
from feedfix.core.schedule import first_delay
from feedfix.service.catalog import Catalog
from feedfix.service.coordination import Coordinator, Lease, Solo
from feedfix.service.logs import log
from feedfix.service.metrics import Metrics
from feedfix.service.poll.decide import Memory, fingerprint, on_config
from feedfix.service.poll.one_poll import OnePoll, StoreCalls
from feedfix.service.poll.publish import Publisher
from feedfix.service.poll.runtime import FeedRuntime
from feedfix.service.poll.transport import AiohttpTransport, Transport
from feedfix.service.poll.worker import Worker
from feedfix.service.state import Snapshot
from feedfix.service.store import SharedStore, Store, StoreError
from feedfix.service.tasks import cancel_and_wait

STORE_RETRY = 2.0  # seconds between tries to reach a shared store that did not answer
LEASE_RETRY = 0.5  # shortest wait for a lease another replica holds
DUE_SLACK = 0.02  # a feed due within this is polled now (a sleep may end a little early)


class Poller:
    """Runs every configured feed's schedule; ``catalog`` receives what is to be served.

    ``transport`` is how the fetcher reaches the network (aiohttp unless given: tests pass a
    ``MockTransport``); ``clock``, ``monotonic`` and ``draw`` are the time and the jitter.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        catalog: Catalog,
        metrics: Metrics,
        cleaner: Worker,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
        transport: Transport | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.config = config
        self.coordinator: Coordinator = coordinator or Solo()
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.clock = clock
        self.cleaner = cleaner
        self.calls = StoreCalls(store)
        self.publisher = Publisher(catalog, metrics)
        self.one = OnePoll(
            self.calls,
            cleaner,
            self.publisher,
            self.adopt,
            clock=clock,
            monotonic=monotonic,
            draw=draw,
        )
        self.one.transport = transport
        self.feeds: dict[str, FeedRuntime] = {}
        self._global = asyncio.Semaphore(config.poll.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    # ---- start, stop, reload -------------------------------------------------------------

    async def load(self) -> None:
        """Read every feed's stored state and serve its last good copy at once (the archives
        stay in the store: each poll that republishes reads its feed's)."""
        reachable = True  # a shared store down at start is not waited for once per feed
        for feed in self.config.feeds:
            reachable = self._load_feed(feed, reachable=reachable)

    def _load_feed(self, feed: FeedConfig, *, reachable: bool = True) -> bool:
        """Serve the feed's stored copy; false when the store did not answer (a shared store
        down at start: its copies are served once it answers, see ``adopt``)."""
        snapshot = Snapshot()
        if reachable:
            try:
                snapshot = self.store.load(feed.name, archive=False)  # polls read the archive
            except StoreError as exc:
                if not self.coordinator.shared:  # a file that cannot be read: not served
                    raise
                log("storage unreachable at start", logging.ERROR, error=str(exc))
                reachable = False
        memory = on_config(Memory(snapshot.state, snapshot.published), fingerprint(feed))
        runtime = self.feeds[feed.name] = FeedRuntime(feed, memory)
        if reachable:  # else the next 200 stores them (the inspector shows none until then)
            try:
                runtime.has_sources = bool(self.store.sources(feed.name, 1))
            except StoreError:
                reachable = False
        self.publisher.publish(runtime, self.config)
        return reachable

    async def start(self) -> None:
        """Open the HTTP client and start one task per feed."""
        if self.one.transport is None:
            self.one.transport = AiohttpTransport(limit=self.config.poll.concurrency * 2)
        for runtime in self.feeds.values():
            self._start_task(runtime)

    def _start_task(self, runtime: FeedRuntime) -> None:
        runtime.task = asyncio.create_task(self._run(runtime), name=f"poll:{runtime.config.name}")

    async def stop(self) -> None:
        """Cancel every task, wait for them, close the client and the worker threads."""
        await cancel_and_wait(r.task for r in self.feeds.values() if r.task is not None)
        if self.one.transport is not None:
            await self.one.transport.close()
        self.calls.close()

    async def reload(self, config: Config) -> dict[str, list[str]]:
        """Apply a new config: new feeds start, removed ones stop, changed ones restart.

        Returns the names of the feeds ``added``, ``removed`` and ``changed``, for the log.
        """
        old = self.feeds
        changes: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
        self.config = config
        wanted = {f.name: f for f in config.feeds}
        for name in list(old):
            if name not in wanted:
                runtime = old.pop(name)
                if runtime.task is not None:
                    runtime.task.cancel()
                self.catalog.remove(name)
                await self.cleaner.forget(name)
                changes["removed"].append(name)
        for name, feed in wanted.items():
            existing = old.get(name)
            if existing is None:
                self._load_feed(feed)
                await self.cleaner.forget(name)  # a name used before starts with no rendering
                self._start_task(self.feeds[name])
                changes["added"].append(name)
            elif existing.config != feed:
                if existing.task is not None:
                    existing.task.cancel()
                existing.config = feed
                existing.ttl_noted = False
                existing.memory = on_config(existing.memory, fingerprint(feed))
                self._start_task(existing)
                changes["changed"].append(name)
        return changes

    # ---- the schedule ----------------------------------------------------------------------

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self.config.poll.per_host)
        return self._hosts[host]

    async def _run(self, runtime: FeedRuntime) -> None:
        feed, memory = runtime.config, runtime.memory
        # The stored next poll is kept only by a feed that is fine: one whose last poll
        # failed or whose URL or rules changed is polled within the first seconds, and one
        # with no copy at all (new, or never polled well) at once, before the others.
        fine = (
            memory.state.failures == 0
            and memory.published is not None
            and memory.state.fingerprint == fingerprint(feed)
        )
        now = self.clock()
        if memory.published is None:  # nothing to serve but a 503: first, at once
            delay = 0.0
        else:  # served meanwhile: spread over the first seconds, or its stored next poll
            due = memory.state.next_poll if fine else None
            delay = first_delay(feed.name, due, now, feed.interval)
        self._schedule(runtime, now + delay)
        while True:
            with contextlib.suppress(TimeoutError):  # asked to poll now: the wait ends early
                await asyncio.wait_for(runtime.wake.wait(), delay)
            runtime.wake.clear()
            async with self._global, self._host_limit(feed.source):
                try:
                    delay = await self._turn(runtime)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a bug must not end the feed's schedule
                    log(
                        "poll crashed",
                        logging.ERROR,
                        feed=feed.name,
                        error=repr(exc),
                        traceback=traceback.format_exc(),
                    )
                    delay = feed.interval
                    self._schedule(runtime, self.clock() + delay)

    def _schedule(self, runtime: FeedRuntime, when: float) -> None:
        """Show the next poll as it really is (the index reads it)."""
        state = replace(runtime.memory.state, next_poll=when)
        runtime.memory = replace(runtime.memory, state=state)
        self.publisher.publish(runtime, self.config)

    def poll_now(self, name: str) -> bool:
        """Move a feed's next poll to now (False: no such feed)."""
        runtime = self.feeds.get(name)
        if runtime is None:
            return False
        runtime.wake.set()
        return True

    async def _turn(self, runtime: FeedRuntime) -> float:
        """Poll the feed if this process gets its lease and it is due; seconds until the next
        try. Alone on its store, a process always gets the lease and the feed is due."""
        coordinator = self.coordinator
        leases = self.metrics.leases
        try:
            lease, wait = await coordinator.acquire(runtime.config.name)
        except StoreError:  # no coordination, no poll: the copies held are served, stale
            leases.labels("error").inc()
            return STORE_RETRY
        if lease is None:  # another replica polls it now; try again when its lease runs out
            leases.labels("busy").inc()
            return max(LEASE_RETRY, min(wait, runtime.config.interval))
        leases.labels("taken").inc()
        async with coordinator.holding(lease):
            if coordinator.shared:
                await self.adopt(runtime.config.name)  # what the last poller left
                due = runtime.memory.state.next_poll
                now = self.clock()
                if due is not None and due > now + DUE_SLACK:
                    return due - now  # polled elsewhere since this replica last looked
            return await self.poll(runtime, lease)

    # ---- what other replicas stored ------------------------------------------------------

    def feed_names(self) -> list[str]:
        """The configured feeds."""
        return list(self.feeds)

    async def adopt(self, name: str) -> None:
        """Serve the store's copy of ``name`` (another replica wrote it). A store without
        one (Redis restarted empty) never replaces the copy held: it is stored again with
        this replica's next write."""
        runtime = self.feeds.get(name)
        if runtime is None:
            return
        try:
            snapshot = await self.calls.run(self.store.load, name, archive=False)
        except StoreError:
            return
        held = runtime.memory
        if snapshot.published is None:
            if held.published is not None:
                runtime.memory = replace(held, unsaved=True, lost=True)
            return
        same = held.published is not None and held.published.etag == snapshot.published.etag
        published = held.published if same else snapshot.published
        if not same:
            self.metrics.adopted.inc()
        runtime.memory = on_config(Memory(snapshot.state, published), fingerprint(runtime.config))
        self.publisher.publish(runtime, self.config)

    async def restore(self, name: str) -> bool:
        """Put the copy served of ``name`` back into a store that lost it (Redis restarted
        empty): true when it was missing and is stored now."""
        runtime, store = self.feeds.get(name), self.store
        if runtime is None or not isinstance(store, SharedStore):
            return False
        memory = runtime.memory
        if memory.published is None:
            return False
        try:
            done = await self.calls.run(store.restore, name, memory.state, memory.published)
        except StoreError:
            return False
        if done:
            runtime.memory = replace(memory, unsaved=False, lost=False)
            self.metrics.restored.inc()
            log("restored into an empty store", feed=name, by="sync")
        return done

    def store_health(self, error: str | None) -> None:
        """The store stopped (``error``) or started answering again: every copy served is
        marked stale while it is down, and /healthz says so."""
        self.publisher.store_down_since = None if error is None else self.clock()
        self.catalog.store_error = error
        self.metrics.store_up.set(0 if error is not None else 1)
        for runtime in self.feeds.values():
            self.publisher.publish(runtime, self.config)

    async def poll(self, runtime: FeedRuntime, lease: Lease | None = None) -> float:
        """Poll one feed now (``one_poll.OnePoll.run``); seconds until its next poll."""
        return await self.one.run(runtime, self.config, lease)
