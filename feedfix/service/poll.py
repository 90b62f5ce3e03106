"""The poller: one task per feed, each a good citizen of its upstream.

Conditional GETs with the stored validators (a 304 costs no parsing), a per-feed schedule with
jitter, bounded concurrency overall and per upstream host, the upstream's Retry-After /
max-age / ttl honoured, exponential backoff on errors. Parsing, cleaning and rendering run
in the cleaning worker (a thread or a process: ``cleaner.py``), so the event loop never
waits on them. Nothing that is not a good feed replaces the last good output.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import aiohttp

from feedfix.config import Config, FeedConfig
from feedfix.core.archive import Archived
from feedfix.core.errors import FeedfixError
from feedfix.core.republish import rules_fingerprint
from feedfix.core.schedule import (
    Hints,
    first_delay,
    max_age_seconds,
    next_delay,
    retry_after_seconds,
)
from feedfix.service.catalog import Catalog, ServedFeed, Status
from feedfix.service.fetch import FetchError, FetchRequest, FetchResult, GuardedResolver, fetch
from feedfix.service.logs import log
from feedfix.service.metrics import Metrics
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published
from feedfix.service.store import Store, StoreError
from feedfix.service.worker import Cleaned, Job, Worker


@dataclass
class FeedRuntime:
    """What the poller keeps in memory for one feed."""

    config: FeedConfig
    state: FeedState
    published: Published | None
    task: asyncio.Task[None] | None = None
    unsaved: bool = False  # the served output could not be stored: store it with the next poll
    resend: bool = False  # archive rows went unstored: have the worker send them all again


def fingerprint(feed: FeedConfig) -> str:
    """What the published output depends on besides the upstream's bytes."""
    return f"{feed.url}\x1f{rules_fingerprint(feed)}"


def _forget_validators_if_changed(runtime: FeedRuntime) -> None:
    """After the URL or the rules change, a 304 must not keep the old output: fetch in full."""
    if runtime.state.fingerprint != fingerprint(runtime.config):
        runtime.state.upstream_etag = None
        runtime.state.upstream_last_modified = None


@dataclass(frozen=True)
class Attempt:
    """One poll's raw outcome, before it is stored and served."""

    started: float  # wall clock, for the history
    began: float  # monotonic, for the duration
    result: FetchResult | None
    made: Cleaned | None
    error: FeedfixError | None
    hints: Hints


class Poller:
    """Runs every configured feed's schedule; ``catalog`` receives what is to be served."""

    def __init__(
        self,
        config: Config,
        store: Store,
        catalog: Catalog,
        metrics: Metrics,
        cleaner: Worker,
        *,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.clock = clock
        self.draw = draw
        self.cleaner = cleaner
        self._restarting = asyncio.Lock()
        self.storage = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedfix-store")
        self.feeds: dict[str, FeedRuntime] = {}
        self._global = asyncio.Semaphore(config.poll.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._session: aiohttp.ClientSession | None = None

    # ---- start, stop, reload -------------------------------------------------------------

    async def load(self) -> None:
        """Read every feed's stored state, serve its last good copy at once, and hand the
        stored archives to the cleaning worker."""
        await self.cleaner.seed({f.name: self._load_feed(f) for f in self.config.feeds})

    def _load_feed(self, feed: FeedConfig) -> dict[str, Archived]:
        snapshot = self.store.load(feed.name)
        runtime = FeedRuntime(feed, snapshot.state, snapshot.published)
        _forget_validators_if_changed(runtime)
        self.feeds[feed.name] = runtime
        self._publish(runtime)
        return snapshot.archive

    async def _restart_cleaner(self) -> None:
        """The worker died (killed, or crashed on some input): a new one, seeded from the store."""
        log("cleaning worker died; restarting it", logging.ERROR)
        self.cleaner.restart()
        loop = asyncio.get_running_loop()
        archives = {}
        for name, runtime in self.feeds.items():
            snapshot = await loop.run_in_executor(self.storage, self.store.load, name)
            archives[name] = snapshot.archive
            runtime.resend = True  # rows the old worker sent may not all have been stored
        await self.cleaner.seed(archives)

    async def start(self) -> None:
        """Open the HTTP client and start one task per feed."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.config.poll.concurrency * 2,
                resolver=GuardedResolver(),
                use_dns_cache=False,  # each connection resolves, through the guard
            ),
            auto_decompress=True,
        )
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
        if self._session is not None:
            await self._session.close()
        self.storage.shutdown(wait=True)

    async def reload(self, config: Config) -> None:
        """Apply a new config: new feeds start, removed ones stop, changed ones restart."""
        old = self.feeds
        self.config = config
        wanted = {f.name: f for f in config.feeds}
        for name in list(old):
            if name not in wanted:
                runtime = old.pop(name)
                if runtime.task is not None:
                    runtime.task.cancel()
                self.catalog.remove(name)
                await self.cleaner.forget(name)
        for name, feed in wanted.items():
            existing = old.get(name)
            if existing is None:
                await self.cleaner.seed({name: self._load_feed(feed)})
                self._start_task(self.feeds[name])
            elif existing.config != feed:
                if existing.task is not None:
                    existing.task.cancel()
                existing.config = feed
                _forget_validators_if_changed(existing)
                self._start_task(existing)

    # ---- the schedule ----------------------------------------------------------------------

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self.config.poll.per_host)
        return self._hosts[host]

    async def _run(self, runtime: FeedRuntime) -> None:
        feed = runtime.config
        delay = first_delay(feed.name, runtime.state.next_poll, self.clock(), feed.interval)
        while True:
            await asyncio.sleep(delay)
            async with self._global, self._host_limit(feed.url):
                try:
                    delay = await self.poll(runtime)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a bug must not end the feed's schedule
                    log("poll crashed", logging.ERROR, feed=feed.name, error=repr(exc))
                    delay = feed.interval

    # ---- one poll --------------------------------------------------------------------------

    async def poll(self, runtime: FeedRuntime) -> float:
        """Fetch, republish, store and serve one feed; returns seconds until the next poll."""
        feed, state = runtime.config, runtime.state
        started, began = self.clock(), time.monotonic()
        have_copy = runtime.published is not None
        request = FetchRequest(
            url=feed.url,
            etag=state.upstream_etag if have_copy else None,
            last_modified=state.upstream_last_modified if have_copy else None,
            timeout=feed.timeout,
            connect_timeout=feed.connect_timeout,
            max_size=feed.max_size,
            user_agent=feed.user_agent,
            headers=feed.headers,
            max_redirects=self.config.poll.max_redirects,
            allow_private_redirects=self.config.poll.allow_private_redirects,
        )
        if self._session is None:
            raise RuntimeError("Poller.start() must run before poll()")
        hints = Hints()
        result: FetchResult | None = None
        made: Cleaned | None = None
        error: FeedfixError | None = None
        try:
            result = await fetch(self._session, request)
            hints = Hints(max_age=max_age_seconds(result.cache_control))
            if result.status == 200:
                made = await self._clean(runtime, result)
                if made.ttl_minutes:
                    hints = replace(hints, ttl=made.ttl_minutes * 60.0)
        except FetchError as exc:
            error = exc
            hints = Hints(retry_after=retry_after_seconds(exc.retry_after, self.clock()))
        except FeedfixError as exc:
            error = exc
        attempt = Attempt(started, began, result, made, error, hints)
        return await self._finish(runtime, attempt)

    async def _clean(self, runtime: FeedRuntime, result: FetchResult) -> Cleaned:
        """Republish in the cleaning worker (a new one if it died: this poll then fails)."""
        job = Job(
            feed=runtime.config,
            data=result.body,
            now=self.clock(),
            self_url=self._self_url(runtime.config.name),
            encoding_hint=result.charset,
            etag=runtime.published.etag if runtime.published is not None else None,
            body=runtime.published.body if runtime.published is not None else b"",
            resend=runtime.resend,
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

    async def _finish(self, runtime: FeedRuntime, attempt: Attempt) -> float:
        feed, state = runtime.config, runtime.state
        result, made, error = attempt.result, attempt.made, attempt.error
        now = self.clock()
        published: Published | None = None
        archive: ArchiveUpdate | None = None
        changed = False
        if error is None and result is not None:
            outcome = "not_modified" if result.status == 304 else "ok"
            self._succeeded(runtime, result, now)
            if made is not None:
                changed = made.published is not None
                published = made.published or runtime.published
                archive = made.archive if changed or made.archive.changed else None
                self._count_rules(made)
        else:
            outcome = "error"
            self._failed(runtime, error, now)
        delay = next_delay(
            interval=feed.interval,
            ok=error is None,
            failures=state.failures,
            hints=attempt.hints,
            max_backoff=max(self.config.poll.max_backoff, feed.interval),
            jitter=self.config.poll.jitter,
            draw=self.draw(),
        )
        state.next_poll = now + delay
        duration = time.monotonic() - attempt.began
        record = PollRecord(
            started=attempt.started,
            status=outcome,
            duration=round(duration, 4),
            error=str(error) if error else None,
            bytes=len(result.body) if result is not None else 0,
            changed=changed,
            http_status=result.status if result else getattr(error, "status", None),
        )
        to_store = published if changed else None
        if runtime.unsaved and to_store is None:
            to_store = runtime.published
        if await self._store(feed.name, state, record, to_store, archive):
            runtime.unsaved = False
            runtime.resend = runtime.resend and archive is None
        else:
            runtime.unsaved = True
            runtime.resend = runtime.resend or archive is not None
            state.upstream_etag = state.upstream_last_modified = None
        if published is not None:
            runtime.published = published
        self._publish(runtime)
        self.metrics.count_poll(feed.name, outcome)
        self.metrics.poll_seconds.labels(feed.name).observe(duration)
        log(
            "poll",
            feed=feed.name,
            status=outcome,
            http=record.http_status,
            duration_ms=round(duration * 1000, 1),
            entries=runtime.published.entries if runtime.published else 0,
            window=made.window if made else None,
            cleaned=made.cleaned if made else None,
            rendered=made.rendered if made else None,
            changed=changed,
            next_in_s=round(delay, 1),
            error=record.error,
        )
        return delay

    def _succeeded(self, runtime: FeedRuntime, result: FetchResult, now: float) -> None:
        feed, state = runtime.config, runtime.state
        state.failures = 0
        state.last_success = now
        state.stale_since = None
        state.permanent_redirect = result.permanent_redirect
        if result.status == 200:
            state.upstream_etag = result.etag
            state.upstream_last_modified = result.last_modified
            state.fingerprint = fingerprint(feed)
            self.metrics.upstream_bytes.labels(feed.name).inc(len(result.body))

    def _failed(self, runtime: FeedRuntime, error: FeedfixError | None, now: float) -> None:
        state = runtime.state
        state.failures += 1
        state.last_error = str(error)
        state.last_error_at = now
        if runtime.published is not None and state.stale_since is None:
            state.stale_since = now
        kind = error.kind if isinstance(error, FetchError) else "bad-feed"
        self.metrics.poll_errors.labels(runtime.config.name, kind).inc()

    def _count_rules(self, made: Cleaned) -> None:
        for name, changes in made.rule_changes.items():
            self.metrics.rule_changes.labels(name).inc(changes)
        self.metrics.entries_cleaned.labels("cleaned").inc(made.cleaned)
        self.metrics.entries_cleaned.labels("reused").inc(made.reused)

    async def _store(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None,
        archive: ArchiveUpdate | None,
    ) -> bool:
        """Write the poll; a storage failure is reported and the in-memory copy still served."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self.storage, self.store.save, name, state, record, published, archive
            )
            return True
        except StoreError as exc:
            state.last_error = f"storage: {exc}"
            state.last_error_at = self.clock()
            log("storage failed", logging.ERROR, feed=name, error=str(exc))
            return False

    def _publish(self, runtime: FeedRuntime) -> None:
        feed, state = runtime.config, runtime.state
        max_age = min(feed.interval, self.config.server.cache_max_age)
        served = self.catalog.served.get(feed.name)
        if runtime.published is None:
            served = None
        elif served is None or (served.published, served.stale_since, served.max_age) != (
            runtime.published,
            state.stale_since,
            max_age,
        ):  # a 304 poll changes nothing that is served: the replies stay as they are
            served = ServedFeed.of(runtime.published, max_age, state.stale_since)
        status = Status(
            name=feed.name,
            upstream=feed.url,
            last_success=state.last_success,
            last_error=state.last_error,
            last_error_at=state.last_error_at,
            entries=runtime.published.entries if runtime.published else 0,
            next_poll=state.next_poll,
            stale_since=state.stale_since,
            permanent_redirect=state.permanent_redirect,
        )
        self.catalog.publish(feed.name, served, status)
        stale = sum(1 for s in self.catalog.status.values() if s.stale_since is not None)
        self.metrics.stale_feeds.set(stale)
        self.metrics.feed_entries.labels(feed.name).set(status.entries)
