"""The poller: one task per feed, each a good citizen of its upstream.

Conditional GETs with the stored validators (a 304 costs no parsing), a per-feed schedule with
jitter, bounded concurrency overall and per upstream host, the upstream's Retry-After /
max-age / ttl honoured, exponential backoff on errors. Parsing, cleaning and rendering run
in the cleaning worker (a thread or a process: ``worker.py``), so the event loop never
waits on them. What each poll means is decided in ``decide.py``, without I/O; this module
only does the I/O around it: fetch, clean, store, serve, count and log.

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
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from feedfix.config import Config, FeedConfig
from feedfix.core.errors import FeedfixError
from feedfix.core.model import Entry
from feedfix.core.schedule import first_delay
from feedfix.service.advice import advice
from feedfix.service.catalog import Catalog, ServedFeed, Status
from feedfix.service.coordination import Coordinator, Lease, Solo
from feedfix.service.logs import log
from feedfix.service.metrics import Metrics
from feedfix.service.poll.decide import (
    Attempt,
    Decision,
    Memory,
    Settings,
    Write,
    decide,
    fingerprint,
    on_config,
    request_for,
    settle,
)
from feedfix.service.poll.fetch import fetch
from feedfix.service.poll.fetch_types import FetchResult
from feedfix.service.poll.local import read_local
from feedfix.service.poll.transport import AiohttpTransport, Transport
from feedfix.service.poll.trim import Trimmer
from feedfix.service.poll.worker import Cleaned, Job, Worker
from feedfix.service.state import Snapshot
from feedfix.service.store import Fenced, Store, StoreError

STORE_RETRY = 2.0  # seconds between tries to reach a shared store that did not answer
LEASE_RETRY = 0.5  # shortest wait for a lease another replica holds
DUE_SLACK = 0.02  # a feed due within this is polled now (a sleep may end a little early)


@dataclass
class FeedRuntime:
    """What the poller keeps in memory for one feed: its config, what it holds, its task."""

    config: FeedConfig
    memory: Memory
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # "poll now" from the web pages
    has_sources: bool = False  # the store holds the window's sources (for the inspector)
    error_kind: str | None = None  # of the last poll, when it failed (for the advice shown)
    ttl_noted: bool = False  # said once that the upstream's ttl lengthens the interval


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
        self.store_down_since: float | None = None  # the store did not answer since then
        self.trim = Trimmer()
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.clock = clock
        self.monotonic = monotonic
        self.draw = draw
        self.cleaner = cleaner
        self.transport = transport
        self._restarting = asyncio.Lock()
        self.storage = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedfix-store")
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
        self._publish(runtime)
        return reachable

    async def _restart_cleaner(self) -> None:
        """The worker died (killed, or crashed on some input): a new one (each job brings
        its feed's archive from the store, so there is nothing to hand it)."""
        log("cleaning worker died; restarting it", logging.ERROR)
        self.cleaner.restart()

    async def start(self) -> None:
        """Open the HTTP client and start one task per feed."""
        if self.transport is None:
            self.transport = AiohttpTransport(limit=self.config.poll.concurrency * 2)
        for runtime in self.feeds.values():
            self._start_task(runtime)

    def _start_task(self, runtime: FeedRuntime) -> None:
        runtime.task = asyncio.create_task(self._run(runtime), name=f"poll:{runtime.config.name}")

    async def stop(self) -> None:
        """Cancel every task, wait for them, close the client and the worker threads."""
        tasks = [r.task for r in self.feeds.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.transport is not None:
            await self.transport.close()
        self.storage.shutdown(wait=True)

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
        # failed, that has no good copy, or whose URL or rules changed is polled at once.
        fine = (
            memory.state.failures == 0
            and memory.published is not None
            and memory.state.fingerprint == fingerprint(feed)
        )
        now = self.clock()
        delay = first_delay(feed.name, memory.state.next_poll if fine else None, now,
                            feed.interval)  # fmt: skip
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
        self._publish(runtime)

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
        loop = asyncio.get_running_loop()
        try:
            snapshot = await loop.run_in_executor(
                self.storage, lambda: self.store.load(name, archive=False)
            )
        except StoreError:
            return
        held = runtime.memory
        if snapshot.published is None:
            if held.published is not None:
                runtime.memory = replace(held, unsaved=True)
            return
        same = held.published is not None and held.published.etag == snapshot.published.etag
        published = held.published if same else snapshot.published
        if not same:
            self.metrics.adopted.inc()
        runtime.memory = on_config(Memory(snapshot.state, published), fingerprint(runtime.config))
        self._publish(runtime)

    async def restore(self, name: str) -> bool:
        """Put the copy served of ``name`` back into a store that lost it (Redis restarted
        empty): true when it was missing and is stored now."""
        runtime = self.feeds.get(name)
        put_back = getattr(self.store, "restore", None)
        if runtime is None or runtime.memory.published is None or put_back is None:
            return False
        memory = runtime.memory
        loop = asyncio.get_running_loop()
        try:
            done = bool(await loop.run_in_executor(
                self.storage, put_back, name, memory.state, memory.published
            ))  # fmt: skip
        except StoreError:
            return False
        if done:
            runtime.memory = replace(memory, unsaved=False)
            self.metrics.restored.inc()
        return done

    def store_health(self, error: str | None) -> None:
        """The store stopped (``error``) or started answering again: every copy served is
        marked stale while it is down, and /healthz says so."""
        self.store_down_since = None if error is None else self.clock()
        self.catalog.store_error = error
        self.metrics.store_up.set(0 if error is not None else 1)
        for runtime in self.feeds.values():
            self._publish(runtime)

    # ---- one poll --------------------------------------------------------------------------

    async def poll(self, runtime: FeedRuntime, lease: Lease | None = None) -> float:
        """Fetch, republish, store and serve one feed; returns seconds until the next poll.

        ``lease``: the one this poll runs under; its token fences the write."""
        if self.transport is None:
            raise RuntimeError("Poller.start() must run before poll()")
        feed = runtime.config
        request = request_for(runtime.memory, feed, self.config.poll)
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
                made = await self._clean(runtime, result)
        except FeedfixError as exc:  # every expected failure; anything else is a bug
            error = exc
        attempt = Attempt(started, self.monotonic() - began, result, made, error)
        settings = Settings.of(feed, self.config.poll)
        now = self.clock()
        decision = decide(runtime.memory, attempt, now, settings, self.draw())
        held = runtime.memory
        runtime.memory = decision.memory
        runtime.error_kind = decision.error_kind
        try:
            failure = await self._store(feed.name, decision.write, lease)
        except Fenced as exc:  # a newer poll elsewhere: its result stands, and is served
            self.metrics.fenced.inc()
            log("publish refused", logging.WARNING, feed=feed.name, error=str(exc))
            runtime.memory = held
            await self.adopt(feed.name)
            return decision.delay
        runtime.memory = settle(runtime.memory, decision.write, failure, self.clock())
        if made is not None and made.sources is not None and failure is None:
            runtime.has_sources = await self._store_sources(feed.name, made.sources)
        self.catalog.record_poll(
            feed.name, decision.outcome, started, made.rule_changes if made else None
        )
        if made is not None:  # the archive read, the rows written: give their pages back
            await asyncio.get_running_loop().run_in_executor(self.storage, self.trim)
        self._publish(runtime)
        self._count(feed.name, decision, attempt, made)
        self._log(runtime, decision, attempt, made)
        return decision.delay

    async def _clean(self, runtime: FeedRuntime, result: FetchResult) -> Cleaned:
        """Republish in the cleaning worker (a new one if it died: this poll then fails)."""
        served = runtime.memory.published
        loop = asyncio.get_running_loop()
        try:  # read for this poll only: what the process keeps is what it serves
            archive = await loop.run_in_executor(
                self.storage, self.store.load_archive, runtime.config.name
            )
        except StoreError as exc:
            raise FeedfixError(f"cannot read the archive: {exc}") from exc
        job = Job(
            feed=runtime.config,
            data=result.body,
            now=self.clock(),
            self_url=self._self_url(runtime.config.name),
            encoding_hint=result.charset,
            served=served,
            resend=runtime.memory.resend,
            want_sources=not runtime.has_sources,
            archive=archive,
            posts=result.posts,
        )
        generation = self.cleaner.generation
        try:
            return await self.cleaner.republish(job)
        except BrokenProcessPool as exc:
            async with self._restarting:  # every poll in flight sees it die: replace it once
                if self.cleaner.generation == generation:
                    await self._restart_cleaner()
            raise FeedfixError("the cleaning worker died while cleaning this feed") from exc

    def _self_url(self, name: str) -> str | None:
        base = self.config.server.base_url
        return f"{base.rstrip('/')}/feeds/{name}.atom" if base else None

    async def _store(self, name: str, write: Write, lease: Lease | None) -> str | None:
        """Write the poll; returns why it could not be stored (the copy in memory is served
        all the same). A StoreError is an outage of the store (locked, disk full); anything
        else is a bug, logged with its traceback. ``Fenced`` (the lease passed on) is raised."""
        loop = asyncio.get_running_loop()
        fence = lease.token if lease is not None else None
        try:
            await loop.run_in_executor(
                self.storage,
                lambda: self.store.save(
                    name, write.state, write.record, write.published, write.archive, fence=fence
                ),
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
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.storage, self.store.save_sources, name, sources)
        except StoreError as exc:
            log("storing the sources failed", logging.ERROR, feed=name, error=str(exc))
            return False
        return True

    def _count(self, name: str, decision: Decision, attempt: Attempt, made: Cleaned | None) -> None:
        metrics = self.metrics
        metrics.count_poll(name, decision.outcome)
        metrics.poll_seconds.labels(name).observe(attempt.duration)
        if decision.error_kind is not None:
            metrics.poll_errors.labels(name, decision.error_kind).inc()
        elif attempt.result is not None and attempt.result.status == 200:
            metrics.upstream_bytes.labels(name).inc(attempt.result.size)
        if made is not None:
            for rule, changes in made.rule_changes.items():
                metrics.rule_changes.labels(rule).inc(changes)
            metrics.entries_cleaned.labels("cleaned").inc(made.cleaned)
            metrics.entries_cleaned.labels("reused").inc(made.reused)

    def _log(
        self, runtime: FeedRuntime, decision: Decision, attempt: Attempt, made: Cleaned | None
    ) -> None:
        published = runtime.memory.published
        record = decision.write.record
        log(
            "poll",
            logging.WARNING if decision.outcome == "error" else logging.INFO,
            feed=runtime.config.name,
            status=decision.outcome,
            http=record.http_status,
            duration_ms=round(attempt.duration * 1000, 1),
            entries=published.entries if published else 0,
            window=made.window if made else None,
            cleaned=made.cleaned if made else None,
            rendered=made.rendered if made else None,
            changed=decision.changed,
            next_in_s=round(decision.delay, 1),
            error=record.error,
        )
        ttl = made.ttl_minutes * 60 if made is not None and made.ttl_minutes else 0
        feed = runtime.config
        lengthens = min(ttl, self.config.poll.max_backoff) > feed.interval
        if lengthens and feed.url is not None and not runtime.ttl_noted:
            runtime.ttl_noted = True  # once per feed config: a reload that changes it says again
            log(
                "interval lengthened by the upstream's ttl",
                logging.WARNING,
                feed=feed.name,
                interval_s=feed.interval,
                ttl_s=ttl,
                max_backoff_s=self.config.poll.max_backoff,
            )

    def _publish(self, runtime: FeedRuntime) -> None:
        feed, state, published = runtime.config, runtime.memory.state, runtime.memory.published
        if state.stale_since is None and self.store_down_since is not None:
            state = replace(state, stale_since=self.store_down_since)  # served, not shared
        max_age = min(feed.interval, self.config.server.cache_max_age)
        served = self.catalog.served.get(feed.name)
        if published is None:
            served = None
        elif served is None or (served.published, served.stale_since, served.max_age) != (
            published,
            state.stale_since,
            max_age,
        ):  # a 304 poll changes nothing that is served: the replies stay as they are
            served = ServedFeed.of(
                feed.name, published, max_age, state.stale_since, self.catalog.identities
            )
        status = Status(
            name=feed.name,
            upstream=feed.source,
            last_success=state.last_success,
            last_error=state.last_error,
            last_error_at=state.last_error_at,
            entries=published.entries if published else 0,
            next_poll=state.next_poll,
            stale_since=state.stale_since,
            permanent_redirect=state.permanent_redirect,
            failures=state.failures,
            upstream_etag=state.upstream_etag,
            upstream_last_modified=state.upstream_last_modified,
            advice=advice(feed, runtime.error_kind),
        )
        self.catalog.publish(feed.name, served, status)
        stale = sum(1 for s in self.catalog.status.values() if s.stale_since is not None)
        self.metrics.stale_feeds.set(stale)
        self.metrics.feed_entries.labels(feed.name).set(status.entries)
