"""The image cache: each origin image fetched once, kept on disk, served even when the
origin later fails.

- Single flight: concurrent requests for one image share one fetch (a task, so that a
  reader hanging up does not cancel it for the others).
- On disk: the body in ``{cache_dir}/{key[:2]}/{key}``, written to a temporary file, fsynced
  and renamed, so that a crash never leaves half an image under its name; its type, size
  and ETag in the metadata index (``meta.py``). The total stays under ``cache_size``, least
  recently used out first.
- Failures are remembered for ``negative_seconds`` so a broken image does not hammer its
  origin: a bounded table, since each entry expires quickly anyway.
- A crash leaves at most stray files, removed at the next start (only those older than
  ``LEFTOVER_AGE``: replicas that share the folder may be writing the younger ones).
- Images the archive pins (``archive_index.py``) are passed over by the eviction.
- Memory stays flat as the cache grows: uses are batched before they reach the index, and
  the only per-image tables (recent entries, failures, uses) are capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from feedfix.core.imagesign import Verified
from feedfix.service.images.fetch import ImageFetcher, ImageFetchError
from feedfix.service.images.meta import CacheEntry, CacheMeta, CacheStats, MetaError, MetaResting
from feedfix.service.images.settings import ImageSettings
from feedfix.service.logs import log

RECENT = 1024  # index rows kept in memory for the hottest images
FAILURES = 4096  # remembered failures at most
TOUCH_BATCH = 256  # uses written to the index together (so also the most held)
TOUCH_SECONDS = 30.0  # ... or at least this often
LEFTOVER_AGE = 600.0  # seconds: a stray file younger than this may be another replica's write


def cache_key(verified: Verified) -> str:
    """The file name for an image: the policy is part of it (another Referer, another answer)."""
    return hashlib.sha256(f"{verified.policy}\x00{verified.url}".encode()).hexdigest()


@dataclass(frozen=True)
class Lookup:
    """What the handler serves: the entry, and its body in memory (just fetched, while it is
    being written) or else its file. ``outcome``: hit, miss, or coalesced (served by another
    request's fetch); ``fetched``: origin bytes this request caused (the miss only)."""

    entry: CacheEntry
    path: str
    outcome: str
    body: bytes | None = None
    fetched: int = 0


class ImageCache:
    """Images by signed URL, from disk or fetched once from their origin."""

    def __init__(
        self,
        settings: ImageSettings,
        meta: CacheMeta,
        fetcher: ImageFetcher,
        clock: Callable[[], float] = time.time,
        *,
        recent: int = RECENT,
        failures: int = FAILURES,
    ) -> None:
        self.settings = settings
        self.meta = meta
        self.fetcher = fetcher
        self.clock = clock
        self.limits = {"recent": recent, "failures": failures, "uses": TOUCH_BATCH}
        self.root = Path(settings.cache_dir)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # the owner's alone
        self._root = str(self.root)
        self._recent: OrderedDict[str, CacheEntry] = OrderedDict()
        self._failures: OrderedDict[str, tuple[float, ImageFetchError]] = OrderedDict()
        self._uses: dict[str, float] = {}
        self._last_flush = clock()
        self._flights: dict[str, asyncio.Task[Lookup]] = {}
        self._stores: dict[str, asyncio.Task[bool]] = {}  # by key: the body being kept
        # Told each key dropped (evicted, or its file gone): what remembers answers for it.
        self.listeners: list[Callable[[str], None]] = []
        self._sweep_leftovers()

    def path(self, key: str) -> Path:
        """Where the body of ``key`` lives."""
        return Path(self.file(key))

    def file(self, key: str) -> str:
        """``path`` as a string, made cheaply (it is needed for every hit)."""
        return f"{self._root}/{key[:2]}/{key}"

    def stats(self) -> CacheStats:
        """Entries and bytes on disk."""
        return self.meta.stats()

    def resident(self) -> dict[str, int]:
        """The sizes of the in-memory tables, each capped (see ``limits``) whatever the
        number of images cached: what keeps memory flat as the cache grows."""
        return {
            "recent": len(self._recent),
            "failures": len(self._failures),
            "uses": len(self._uses),
            "flights": len(self._flights),
        }

    def peek(self, verified: Verified) -> Lookup | None:
        """The image if it is on disk (a use is recorded), else None; never fetches."""
        key = cache_key(verified)
        entry = self._entry(key)
        if entry is None:
            return None
        self.used(key)
        return Lookup(entry, self.file(key), "hit")

    async def get(self, verified: Verified, *, fresh: bool = False) -> Lookup:
        """The cached image, or the one fetch of it; ImageFetchError (possibly remembered,
        unless ``fresh``: the archive's retries keep their own time)."""
        hit = self.peek(verified)
        if hit is not None:
            return hit
        key = cache_key(verified)
        failure = self._failures.get(key)
        if failure is not None:
            if failure[0] > self.clock() and not fresh:
                raise failure[1]
            del self._failures[key]
        flight = self._flights.get(key)
        if flight is not None:
            lookup = await asyncio.shield(flight)
            return Lookup(lookup.entry, lookup.path, "coalesced", lookup.body)
        flight = asyncio.ensure_future(self._fetch(key, verified))
        self._flights[key] = flight  # kept until the body is on disk (see _store)

        def landed(done: asyncio.Task[Lookup]) -> None:
            if done.cancelled() or done.exception() is not None:
                self._flights.pop(key, None)  # a failure frees the key at once

        flight.add_done_callback(landed)
        return await asyncio.shield(flight)

    async def keep(
        self, verified: Verified, gate: AbstractAsyncContextManager[None] | None = None
    ) -> CacheEntry:
        """The image on disk and in the index, fetched once if it is not (sharing a reader's
        fetch under way): what the archive asks. ``gate`` is held while fetching only (not
        while the body is written). ImageFetchError when it can't be had or kept (``disk``)."""
        async with gate or contextlib.nullcontext():
            lookup = await self.get(verified, fresh=True)
        key = lookup.entry.key
        if lookup.body is not None:  # fetched just now: wait until it is on disk and indexed
            store = self._stores.get(key)
            if store is not None:
                await asyncio.shield(store)
            if self._entry(key) is None:
                raise ImageFetchError("refused", 507, "cannot write the image to disk", "disk")
        return lookup.entry

    async def settle(self) -> None:
        """Wait until every fetched image is on disk and in the index."""
        while self._stores:
            await asyncio.gather(*self._stores.values(), return_exceptions=True)

    def forget(self, key: str) -> None:
        """Drop an entry whose file has gone (removed by hand, disk trouble)."""
        self._recent.pop(key, None)
        try:
            self.meta.discard(key)
        except MetaError as exc:
            log("image cache index", logging.WARNING, error=str(exc))
        self._dropped(key)

    async def close(self) -> None:
        """Write pending uses, wait for fetches under way, close the fetcher and the index."""
        if self._flights:
            await asyncio.gather(*self._flights.values(), return_exceptions=True)
        await self.settle()
        self.flush()
        await self.fetcher.close()
        self.meta.close()

    def flush(self) -> None:
        """Write the batched uses to the index (lost, not fatal, if it can't be written)."""
        if self._uses:
            uses, self._uses = self._uses, {}
            try:
                self.meta.touch(uses.items())
            except MetaError as exc:
                log("image cache index", logging.WARNING, error=str(exc))
        self._last_flush = self.clock()

    def _entry(self, key: str) -> CacheEntry | None:
        entry = self._recent.get(key)
        if entry is not None:
            self._recent.move_to_end(key)
            return entry
        try:
            entry = self.meta.get(key)
        except MetaError as exc:
            # served as a miss: fetched (once) and answered anyway
            if not isinstance(exc, MetaResting):  # said when it failed, not per request
                log("image cache index", logging.WARNING, error=str(exc))
            return None
        if entry is not None:
            self._remember(key, entry)
        return entry

    def _remember(self, key: str, entry: CacheEntry) -> None:
        self._recent[key] = entry
        if len(self._recent) > self.limits["recent"]:
            self._recent.popitem(last=False)

    def used(self, key: str) -> None:
        """Record a use of ``key`` (batched: see ``flush``)."""
        now = self.clock()
        self._uses[key] = now
        if len(self._uses) >= TOUCH_BATCH or now - self._last_flush >= TOUCH_SECONDS:
            self.flush()

    def _dropped(self, key: str) -> None:
        for listener in self.listeners:
            listener(key)

    async def _fetch(self, key: str, verified: Verified) -> Lookup:
        try:
            fetched = await self.fetcher.fetch(verified)
        except ImageFetchError as exc:
            self._failures[key] = (self.clock() + self.settings.limits.remember_failures, exc)
            if len(self._failures) > self.limits["failures"]:
                self._failures.popitem(last=False)
            raise
        now = self.clock()
        entry = CacheEntry(
            key=key,
            media_type=fetched.media_type,
            size=len(fetched.body),
            etag='"' + hashlib.sha256(fetched.body).hexdigest()[:32] + '"',
            url=verified.url,
            stored_at=now,
            used_at=now,
        )
        store = asyncio.ensure_future(self._store(entry, fetched.body))
        self._stores[key] = store
        store.add_done_callback(lambda _done: self._stores.pop(key, None))
        return Lookup(entry, self.file(key), "miss", fetched.body, len(fetched.body))

    async def _store(self, entry: CacheEntry, body: bytes) -> bool:
        """Write the body (off the event loop: fsync takes milliseconds), then index it and
        evict what no longer fits; whether it is kept. Readers are served from memory
        meanwhile, so a cold fetch does not wait for the disk."""
        path = self.path(entry.key)
        try:
            await asyncio.to_thread(_write_atomically, path, body)
            self.meta.put(entry)
            evicted = self.meta.evict(self.settings.limits.cache_size, keep=entry.key)
        except (OSError, MetaError) as exc:
            log(
                "image cache: cannot keep an image", logging.WARNING, path=str(path), error=str(exc)
            )
            return False  # a body without its row is removed at the next start
        finally:
            self._flights.pop(entry.key, None)
        self._remember(entry.key, entry)
        for old in evicted:
            self._recent.pop(old.key, None)
            self._uses.pop(old.key, None)
            self.path(old.key).unlink(missing_ok=True)
            self._dropped(old.key)
        return True

    def _sweep_leftovers(self) -> None:
        """Remove what a crash left behind: temporary files never renamed into use, and
        bodies written but never indexed (they would escape ``cache_size``). One pass over
        the folder at start-up, of files older than ``LEFTOVER_AGE`` (another replica on the
        same folder may be between writing a body and indexing it); rows whose file is gone
        are dropped when first asked for."""
        old = self.clock() - LEFTOVER_AGE
        for shard in self.root.iterdir():
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for leftover in shard.iterdir():
                try:
                    if leftover.stat().st_mtime > old:
                        continue
                except FileNotFoundError:
                    continue
                if leftover.name.endswith(".tmp") or self.meta.get(leftover.name) is None:
                    leftover.unlink(missing_ok=True)


def _write_atomically(path: Path, body: bytes) -> None:
    """Write ``body`` to ``path`` so that readers see all of it or nothing: a temporary name
    of its own (replicas sharing the folder never write one file at once), then a rename."""
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    with temporary.open("wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
