"""The image cache's index in Redis (a ``CacheMeta``), shared by replicas that share one image
folder; its keys are listed in ``redis_index.py``. Calls are made on the event loop: short,
with a one-second timeout, a failure served as a miss (as SQLite's are).

A Redis that stops answering (a host gone, packets dropped) would hold the loop for the
whole timeout on every image request: after a failure the index is left alone for
``REST`` seconds (each call a ``MetaResting`` at once), then asked again. The loop then
waits at most one timeout in every ``REST``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from feedfix.service.images.meta import CacheEntry, CacheStats, MetaError, MetaResting
from feedfix.service.images.redis_scripts import Scripts

T = TypeVar("T")
META_TIMEOUT = 1.0  # seconds a cache index call on the event loop may take
REST = 5.0  # seconds the index is left alone after it failed


def client(url: str) -> redis.Redis:
    """A connection pool for the image index, with a short timeout (calls on the loop)."""
    return redis.Redis.from_url(
        url, socket_timeout=META_TIMEOUT, socket_connect_timeout=META_TIMEOUT
    )


class RedisMeta:
    """The cache's index in Redis (see ``meta.CacheMeta``); a failure is a ``MetaError``."""

    def __init__(
        self, db: redis.Redis, prefix: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.s = Scripts(db, prefix)
        self._stats = CacheStats(0, 0)
        self.clock = clock
        self._resting_until = 0.0

    def _call(self, action: Callable[[], T]) -> T:
        if self.clock() < self._resting_until:
            raise MetaResting("image cache index in Redis: not answering, asked again shortly")
        try:
            return action()
        except redis.RedisError as exc:
            self._resting_until = self.clock() + REST
            raise MetaError(f"image cache index in Redis: {exc}") from exc

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, if cached."""

        def read() -> list[Any]:
            pipe = self.s.db.pipeline(transaction=False)
            pipe.hmget(self.s.key("c:", key), ["media_type", "size", "etag", "url", "stored_at"])
            pipe.zscore(self.s.key("used"), key)
            return pipe.execute()

        (media, size, etag, url, stored), used = self._call(read)
        if size is None:
            return None
        return CacheEntry(
            key, media.decode(), int(size), etag.decode(), url.decode(), float(stored),
            float(used if used is not None else stored),
        )  # fmt: skip

    def put(self, entry: CacheEntry) -> None:
        """Add or replace an entry (evictable unless the archive pins it)."""
        e = entry
        args: list[str | int | float] = [
            self.s.prefix, e.key, e.media_type, e.size, e.etag, e.url, e.stored_at, e.used_at
        ]  # fmt: skip
        self._call(lambda: self.s.put(args=args))

    def touch(self, uses: Iterable[tuple[str, float]]) -> None:
        """Record last uses (only ever later ones)."""

        def write() -> None:
            pipe = self.s.db.pipeline(transaction=False)
            for key, when in uses:
                pipe.zadd(self.s.key("used"), {key: when}, xx=True, gt=True)
                pipe.zadd(self.s.key("lru"), {key: when}, xx=True, gt=True)
            pipe.execute()

        self._call(write)

    def evict(self, limit: int, keep: str | None = None) -> list[CacheEntry]:
        """Remove least-recently-used unpinned entries until at most ``limit`` bytes remain."""
        rows = self._call(lambda: self.s.evict(args=[self.s.prefix, limit, keep or ""]))
        return [
            CacheEntry(k.decode(), m.decode(), int(size), etag.decode(), url.decode(),
                       float(stored), float(used))
            for k, m, size, etag, url, stored, used in rows
        ]  # fmt: skip

    def discard(self, key: str) -> None:
        """Forget one entry."""
        self._call(lambda: self.s.discard(args=[self.s.prefix, key]))

    def stats(self) -> CacheStats:
        """Entries and bytes held (the last known totals while Redis does not answer)."""

        def read() -> list[Any]:
            found: list[Any] = self.s.db.hmget(self.s.key("totals"), ["entries", "bytes"])  # type: ignore[assignment]
            return found

        try:
            entries, size = self._call(read)
        except MetaError:
            return self._stats
        self._stats = CacheStats(int(entries or 0), int(size or 0))
        return self._stats

    def close(self) -> None:
        """The connection pool is the archive index's too: closed by whoever made it."""
