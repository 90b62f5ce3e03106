"""The image archive's worker: every image a published entry points at, fetched in the
background before any reader asks, and kept pinned in the cache while the entry is published.

A poll hands over its entries' images (``published``, the ``image_archive.ImageRefs`` hand-off):
the update is queued (bounded: past ``UPDATES`` a feed is read again from the store instead)
and returns at once, so publishing never waits. One task per process then, off the event loop
on a thread of its own, writes the references to the index (``archive_index.py``), claims the
images that are due (at most ``IN_FLIGHT`` at a time; on Redis a claim is atomic, so one
replica fetches each image) and fetches them through the proxy's own cache and fetcher
(``cache.keep``: the same guard, host rules, limits, single flight, and no more than
``per_host`` at once per origin host). A failure is tried again 1 min later, then 2, 4…
(at most 6 h apart, later if the origin says ``Retry-After``) until ``archive_retry_for``
has passed since the first one; then it is recorded as failed, with its reason.

Readers come first (``readers_first.py``): while the front answers more than ``BUSY``
requests a second, one image at a time, ``BUSY_GAP`` apart.

What the pages and ``/metrics`` show is a summary read every ``SUMMARY_EVERY`` seconds, so
neither a scrape nor a page waits for the index. Memory stays flat as the archive grows:
the pending images live in the store, and only the ones in flight are held here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from feedfix.config import ImagesConfig
from feedfix.core.imagesign import ImageURLError, verify
from feedfix.service.image_archive import (
    FEED_LEVEL,
    ArchiveSummary,
    EntryImages,
    ImageRow,
    ages,
    describe,
    entry_paths,
)
from feedfix.service.images.archive_index import (
    FIRST_RETRY,
    MAX_RETRY_GAP,
    ArchiveIndex,
    ArchiveIndexError,
    Claim,
    Ref,
)
from feedfix.service.images.cache import ImageCache, cache_key
from feedfix.service.images.fetch import HostSlots, ImageFetchError
from feedfix.service.images.metrics import ArchiveMetrics
from feedfix.service.logs import log
from feedfix.service.readers_first import BUSY_GAP, GiveWay
from feedfix.service.store import Store, StoreError
from feedfix.service.tasks import cancel_and_wait
from feedfix.service.trim import Trimmer

P = ParamSpec("P")
T = TypeVar("T")
UPDATES = 256  # polls' updates queued at most (past it, a feed is read again from the store)
APPLY_CHUNK = 200  # entries of an update written to the index at a time
IN_FLIGHT = 64  # images claimed and being fetched at once, all hosts together
CLAIM_HOLD = 600.0  # seconds a claim keeps other replicas off an image
IDLE = 10.0  # seconds between looks at the index when nothing is due (retries, other replicas)
SUMMARY_EVERY = 5.0  # seconds between summaries for the pages and /metrics
EXPIRE_EVERY = 600.0  # seconds between drops of references past archive_days
FIT_EVERY = 1.0  # seconds between applications of archive_size while images come in
FLUSH_EVERY = 0.5  # seconds between writes of newly archived images to the index (a batch)
DROPPED = 4096  # files found gone, remembered until the index is told (then forgotten)


@dataclass(frozen=True)
class ArchiveSettings:
    """What the archiver needs of the config: ``[images]``, the proxy's base URL, its keys."""

    limits: ImagesConfig
    base_url: str
    keys: tuple[bytes, ...]

    @property
    def keep_for(self) -> float:
        """Seconds an entry's images stay pinned after it leaves the feed."""
        return self.limits.archive_days * 86400


class Archiver:
    """Fetches and pins the images of published entries (``published`` is the hand-off)."""

    def __init__(
        self,
        settings: ArchiveSettings,
        cache: ImageCache,
        index: ArchiveIndex,
        store: Store,
        metrics: ArchiveMetrics,
        *,
        clock: Callable[[], float] = time.time,
        first_retry: float = FIRST_RETRY,
        readers: GiveWay | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.index = index
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.first_retry = first_retry
        self.readers = readers
        self._next_start = 0.0  # while readers come first: no fetch starts before this
        self.summary = ArchiveSummary()
        self._updates: asyncio.Queue[EntryImages] = asyncio.Queue(UPDATES)
        self._rescan: set[str] = set()  # feeds whose update did not fit in the queue
        self._dropped: set[str] = set()
        self._done: dict[str, int] = {}  # archived, not yet in the index: key -> size
        self._flushed_at = 0.0  # when ``_done`` was last written (a write every FLUSH_EVERY)
        self._wake = asyncio.Event()
        self._fetches: set[asyncio.Task[None]] = set()
        self._hosts = HostSlots(settings.limits.per_host)  # readers wait behind few of ours
        self._fit_wanted, self._fit_at = True, 0.0  # archive_size: to apply, and when last
        # without an archive_size, once at the start (pins what an earlier bound let go): a
        # fit is a write over every row, which the loop's own writes would wait behind
        self._bounded = settings.limits.archive_size is not None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedfix-archive")
        self._trim = Trimmer()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # set while nothing is queued, in flight or due now
        cache.listeners.append(self._file_gone)
        metrics.watch(lambda: self.summary)

    # ---- the hand-off ----------------------------------------------------------------------

    def published(self, refs: EntryImages) -> None:
        """A poll stored these entries: queue them (never waits; see the module)."""
        try:
            self._updates.put_nowait(refs)
        except asyncio.QueueFull:
            self._rescan.add(refs.feed)
        self._idle.clear()
        self._wake.set()

    def _file_gone(self, key: str) -> None:
        """The cache dropped ``key``: evicted (never a pinned one), or its file went."""
        if len(self._dropped) < DROPPED:
            self._dropped.add(key)

    # ---- life ------------------------------------------------------------------------------

    async def start(self, feeds: Sequence[str]) -> None:
        """Start working: first resume where the store says, drop the references of feeds no
        longer configured and read the feeds never indexed from the store (again and again
        while the store does not answer: the service serves meanwhile)."""
        self._task = asyncio.create_task(self._work(list(feeds)), name="image-archive")

    def _prepare(self, feeds: Sequence[str]) -> None:
        """What ``start`` does first (on the archive's thread)."""
        now = self.clock()
        self.index.expire(now, self.settings.keep_for, feeds)
        self.index.resume(now)
        for feed in feeds:
            self._backfill(feed, now)

    async def reload(self, feeds: Sequence[str]) -> None:
        """A reload removed feeds: their entries leave (``archive_days`` still apply)."""
        await self._run(self.index.expire, self.clock(), self.settings.keep_for, feeds)
        self._wake.set()

    async def stop(self) -> None:
        """Stop working (images in flight are tried again at the next start)."""
        tasks = [*self._fetches, *([self._task] if self._task is not None else [])]
        await cancel_and_wait(tasks)  # again until they end: a cancellation can be lost
        if self._done:  # kept already: say so, or the next start fetches them again
            with contextlib.suppress(ArchiveIndexError, StoreError):
                await self._run(self.index.archived, self._done)
        self._thread.shutdown(wait=True)  # the index is closed after the cache (it may share)

    async def settled(self, timeout: float) -> bool:
        """Wait until nothing is queued, in flight or due (tests, benchmarks)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call`` on the archive's thread (the index is never read on the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: call(*args, **kwargs))

    # ---- the work --------------------------------------------------------------------------

    async def _work(self, feeds: list[str]) -> None:
        last_summary = last_expire = 0.0
        prepared = False
        while True:
            self._wake.clear()
            try:
                if not prepared:
                    await self._run(self._prepare, feeds)
                    prepared = True
                await self._turn()
                wait = await self._wait()
                now = self.clock()
                if now - last_summary >= SUMMARY_EVERY or self._idle.is_set():
                    self.summary = await self._run(self.index.summary)  # at once when idle
                    last_summary = now
                if now - last_expire >= EXPIRE_EVERY:
                    await self._run(self.index.expire, now, self.settings.keep_for)
                    last_expire, self._fit_wanted = now, self._bounded
            except asyncio.CancelledError:
                raise
            except (ArchiveIndexError, StoreError) as exc:  # the store is down: try again later
                log("image archive: the index did not answer", logging.WARNING, error=str(exc))
                wait = IDLE
            except Exception:  # a bug: say so, and keep archiving
                logging.getLogger("feedfix").exception("image archive failed")
                wait = IDLE
            with contextlib.suppress(TimeoutError):  # a wake-up during this turn counts
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _turn(self) -> None:
        """Apply the queued updates, then claim and start what is due."""
        now = self.clock()
        if self._done and (now - self._flushed_at >= FLUSH_EVERY or not self._fetches):
            done, self._done, self._flushed_at = self._done, {}, now
            await self._run(self.index.archived, done)
        while not self._updates.empty():
            update = self._updates.get_nowait()
            try:
                await self._run(self._apply, update)
            except (ArchiveIndexError, StoreError):
                self._rescan.add(update.feed)  # read from the store once it answers again
                raise
        for feed in sorted(self._rescan):
            self._rescan.discard(feed)
            await self._run(self._backfill, feed, self.clock(), force=True)
        if self._dropped:
            gone, self._dropped = sorted(self._dropped), set()
            await self._run(self.index.requeue, gone, self.clock())
        now = self.clock()
        if self._fit_wanted and now - self._fit_at >= FIT_EVERY:
            self._fit_wanted, self._fit_at = False, now
            await self._run(self.index.fit, self.settings.limits.archive_size)
        room, batch, paced = self._room(now)
        if room >= batch:  # in batches: a claim is a write to the index
            claims = await self._run(self.index.claim, now, room, CLAIM_HOLD)
            if claims:
                self._idle.clear()
                if paced:  # readers come first: the next one not before BUSY_GAP
                    self._next_start = now + BUSY_GAP
            for claim in claims:
                task = asyncio.create_task(self._archive(claim), name="image-archive-fetch")
                self._fetches.add(task)
                task.add_done_callback(self._fetched)

    def _room(self, now: float) -> tuple[int, int, bool]:
        """Fetches that may start now, the fewest worth a claim, and whether they are paced:
        readers first, one ``BUSY_GAP`` after the last; else ``IN_FLIGHT``, a quarter at once."""
        if self.readers is None or not self.readers.now():
            self._next_start = 0.0
            return IN_FLIGHT - len(self._fetches), IN_FLIGHT // 4, False
        if self._fetches or now < self._next_start:
            return 0, 1, True
        return 1, 1, True

    def _fetched(self, task: asyncio.Task[None]) -> None:
        self._fetches.discard(task)
        self._wake.set()

    async def _wait(self) -> float:
        """Seconds until something is due (the index's next pending image, or ``IDLE``)."""
        now = self.clock()
        if self._done or self._fit_wanted:
            flush = FLUSH_EVERY - (now - self._flushed_at) if self._done else FIT_EVERY
            fit = FIT_EVERY - (now - self._fit_at) if self._fit_wanted else FIT_EVERY
            start = self._next_start - now if self._next_start > now else FIT_EVERY  # paced:
            return max(0.0, min(flush, fit, start))  # wake for the next fetch readers allow
        if self._fetches or not self._updates.empty() or self._rescan:
            return IDLE
        due = await self._run(self.index.next_due)
        now = self.clock()
        if (due is None or due > now) and not self._idle.is_set():
            self._idle.set()
            await self._run(self._trim)  # a burst of images is over: give its memory back
        if due is None:
            return IDLE
        return max(0.0, min(IDLE, max(due, self._next_start) - now))  # readers first: not before

    def _apply(self, update: EntryImages) -> None:
        """One poll's update into the index (on the archive's thread), ``APPLY_CHUNK``
        entries at a time: what is held at once stays small however many entries a poll
        cleaned (each call also lets go of the entries that left: the same every time)."""
        entries = list(update.images.items())
        for start in range(0, max(1, len(entries)), APPLY_CHUNK):
            refs = {
                entry: self._refs(paths) for entry, paths in entries[start : start + APPLY_CHUNK]
            }
            self.index.update(update.feed, update.now, update.kept, refs, self.settings.keep_for)
        self._backfill(update.feed, update.now)
        self._fit_wanted = self._bounded

    def _refs(self, paths: Sequence[str]) -> list[Ref]:
        """The signed paths that verify, as index references (others are ignored)."""
        refs = []
        for path in paths:
            try:
                verified = verify(path, self.settings.keys)
            except ImageURLError:
                continue
            refs.append(Ref(cache_key(verified), path, verified.url))
        return refs

    def _backfill(self, feed: str, now: float, *, force: bool = False) -> None:
        """Index every entry the store publishes for ``feed``, once (an archive turned on for
        feeds already served, an update that found the queue full)."""
        if not force and self.index.backfilled(feed):
            return
        archive = self.store.load_archive(feed)
        base = self.settings.base_url
        kept = ages(archive)
        items = [(key, a) for key, a in archive.items() if key != FEED_LEVEL]
        del archive
        for start in range(0, len(items), APPLY_CHUNK):
            chunk = items[start : start + APPLY_CHUNK]
            refs = {key: self._refs(entry_paths(a.entry, base)) for key, a in chunk}
            self.index.update(feed, now, kept, refs, self.settings.keep_for)
        if items:  # a feed not polled yet has nothing to index: its first update will
            self.index.mark_backfilled(feed)

    async def _archive(self, claim: Claim) -> None:
        """Fetch one image into the cache (or find it there) and mark it archived; on a
        failure, schedule the next try or give up. The store not answering leaves the claim
        to run out, and the image to be tried again then."""
        try:
            await self._fetch(claim)
        except (ArchiveIndexError, StoreError) as exc:
            log("image archive: the index did not answer", logging.WARNING, error=str(exc))

    async def _fetch(self, claim: Claim) -> None:
        try:
            verified = verify(claim.path, self.settings.keys)
        except ImageURLError:
            await self._failed(claim, "signature", "signed with a key no longer configured")
            return
        host = (urlsplit(verified.url).hostname or "").lower()
        try:  # the host's slot while fetching, not while writing: the disk is not the origin
            entry = await self.cache.keep(verified, self._hosts.hold(host))
        except ImageFetchError as exc:
            await self._failed(claim, exc.reason, str(exc), exc.retry_after)
            return
        self._done[claim.key] = entry.size  # written to the index a batch at a time (fewer
        # writes that the cache's own, on the event loop, would have to wait for)
        self._fit_wanted = self._bounded
        self.metrics.fetched("archived")

    async def _failed(
        self, claim: Claim, reason: str, error: str, retry_after: float | None = None
    ) -> None:
        now = self.clock()
        attempts = claim.attempts + 1
        gap = min(self.first_retry * 2 ** (attempts - 1), MAX_RETRY_GAP)
        due = now + max(gap, min(retry_after or 0.0, MAX_RETRY_GAP))
        first = claim.first_failure or now
        next_try = due if due <= first + self.settings.limits.archive_retry_for else None
        await self._run(self.index.failed, claim.key, now, reason, error, next_try)
        self.metrics.fetched("failed" if next_try is None else "retrying")
        log(  # each try at debug; giving up at warning (the pages and /metrics count them)
            "image archive: fetch failed" if next_try is not None else "image archive: gave up",
            logging.DEBUG if next_try is not None else logging.WARNING,
            url=claim.url,
            reason=reason,
            error=error,
            retry_in_s=round(next_try - now) if next_try is not None else None,
        )

    # ---- what the pages ask ----------------------------------------------------------------

    def overview(self) -> ArchiveSummary:
        """The whole archive, as last read (every few seconds)."""
        return self.summary

    def words(self) -> str:
        """The whole archive in words, for the index page."""
        return describe(self.summary, self.settings.limits.archive_size)

    async def feed_summary(self, feed: str) -> ArchiveSummary:
        """One feed's part of the archive."""
        return await self._run(self.index.summary, feed)

    async def feed_failures(self, feed: str, limit: int = 100) -> list[ImageRow]:
        """One feed's images whose last attempt failed."""
        return await self._run(self.index.failures, feed, limit)

    async def entry_images(self, feed: str, entries: Sequence[str]) -> dict[str, list[ImageRow]]:
        """Each entry's images and their states."""
        return await self._run(self.index.images, feed, entries)
