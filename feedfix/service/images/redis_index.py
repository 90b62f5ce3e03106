"""The image index in Redis, for replicas that share one image folder: the archive's
(``RedisArchiveIndex``, an ``ArchiveIndex``) beside the cache's (``redis_meta.RedisMeta``),
so every replica serves every image the folder holds, and one replica's eviction never
removes what another pins.

Keys, under the store's prefix and ``img:`` (``P``)::

    P c:{key}         hash: a cached image's media_type, size, etag, url, stored_at
    P used            zset: every cached image by last use;  P lru: the evictable ones only
    P totals          hash: entries, bytes (the cache), archived_bytes (pinned archive)
    P a:{key}         hash: an archived image's row (see archive_index.py)
    P pending         zset: pending images by next try;  P archived: archived ones by newest
    P failures        zset: images whose last attempt failed, by when
    P pinned, P unpinned   sets: pinned images; archived images past archive_size
    P holders:{key}   zset: "feed\\x1fentry" that point at the image, by the entry's date
    P refs:{feed}     hash: "entry\\x1fkey" -> "dated" or "dated|left_at"
    P left            zset: "feed\\x1fentry\\x1fkey" by when the entry left the feed
    P feeds, P backfilled  sets of feed names

Every change that touches an image's pin is one Lua script (``redis_scripts.py``), so
replicas never see an image half pinned. The cache's calls are made on the event loop
(short, with a one-second timeout; a failure is served as a miss, as SQLite's are); the
archive's on the archiver's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import redis

from feedfix.service.image_archive import FEED_LEVEL, ArchiveSummary, ImageRow, State
from feedfix.service.images.archive_index import (
    ArchiveIndexError,
    Claim,
    Ref,
)
from feedfix.service.images.redis_scripts import Scripts

T = TypeVar("T")
SEP = "\x1f"


class RedisArchiveIndex:
    """The archive's index in Redis (see ``archive_index.ArchiveIndex``)."""

    def __init__(self, db: redis.Redis, prefix: str) -> None:
        self.s = Scripts(db, prefix)

    def _call(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except redis.RedisError as exc:
            raise ArchiveIndexError(f"image archive index in Redis: {exc}") from exc

    # ---- references ------------------------------------------------------------------------

    def _refs(self, feed: str) -> dict[tuple[str, str], tuple[float, float | None]]:
        raw: dict[bytes, bytes] = self.s.db.hgetall(self.s.key("refs:", feed))  # type: ignore[assignment]
        out: dict[tuple[str, str], tuple[float, float | None]] = {}
        for field, value in raw.items():
            entry, _, key = field.decode().partition(SEP)
            dated, _, left = value.decode().partition("|")
            out[(entry, key)] = (float(dated), float(left) if left else None)
        return out

    def update(
        self,
        feed: str,
        now: float,
        kept: Mapping[str, float],
        refs: Mapping[str, Sequence[Ref]],
        keep_for: float,
    ) -> None:
        """See ``ArchiveIndex.update`` (only the feed's lease holder writes its references)."""

        def write() -> None:
            s, p = self.s, self.s.prefix
            existing = self._refs(feed)
            pipe = s.db.pipeline(transaction=False)
            pipe.sadd(s.key("feeds"), feed)
            table, left = s.key("refs:", feed), s.key("left")
            wanted = {(entry, ref.key) for entry, images in refs.items() for ref in images}
            for (entry, key), (dated, gone_at) in existing.items():
                member, field = feed + SEP + entry, entry + SEP + key
                replaced = entry in refs and (entry, key) not in wanted
                leaving = entry not in kept and entry not in refs and entry != FEED_LEVEL
                if replaced or (leaving and keep_for <= 0):
                    pipe.hdel(table, field)
                    pipe.zrem(left, member + SEP + key)
                    s.unref(args=[p, key, member], client=pipe)
                elif leaving and gone_at is None:
                    pipe.hset(table, field, f"{dated!r}|{now!r}")
                    pipe.zadd(left, {member + SEP + key: now})
                elif not leaving and gone_at is not None:  # back in the feed
                    pipe.hset(table, field, repr(dated))
                    pipe.zrem(left, member + SEP + key)
            for entry, images in refs.items():
                dated = kept.get(entry, now)
                member = feed + SEP + entry
                for ref in images:
                    pipe.hset(table, entry + SEP + ref.key, repr(dated))
                    pipe.zrem(left, member + SEP + ref.key)
                    s.ref(args=[p, ref.key, member, ref.path, ref.url, dated, now], client=pipe)
            pipe.execute()

        self._call(write)

    def expire(self, now: float, keep_for: float, feeds: Sequence[str] | None = None) -> None:
        """See ``ArchiveIndex.expire``."""

        def write() -> None:
            s = self.s
            if feeds is not None:
                known = {f.decode() for f in s.db.smembers(s.key("feeds"))}  # type: ignore[union-attr]
                for feed in sorted(known - set(feeds)):
                    self.update(feed, now, {}, {}, keep_for)
                    s.db.srem(s.key("backfilled"), feed)
                    if not s.db.hlen(s.key("refs:", feed)):
                        s.db.srem(s.key("feeds"), feed)
            members: list[bytes] = s.db.zrangebyscore(s.key("left"), "-inf", now - keep_for)  # type: ignore[assignment]
            pipe = s.db.pipeline(transaction=False)
            for raw in members:
                feed, entry, key = raw.decode().split(SEP)
                pipe.hdel(s.key("refs:", feed), entry + SEP + key)
                pipe.zrem(s.key("left"), raw)
                s.unref(args=[s.prefix, key, feed + SEP + entry], client=pipe)
            pipe.execute()

        self._call(write)

    # ---- the archiver's work ---------------------------------------------------------------

    def claim(self, now: float, limit: int, hold: float) -> list[Claim]:
        """See ``ArchiveIndex.claim``: atomic, so two replicas never take one image."""
        rows = self._call(lambda: self.s.claim(args=[self.s.prefix, now, limit, hold]))
        return [
            Claim(k.decode(), path.decode(), url.decode(), int(attempts),
                  float(first) if first else None)
            for k, path, url, attempts, first in rows
        ]  # fmt: skip

    def archived(self, sizes: Mapping[str, int]) -> None:
        """See ``ArchiveIndex.archived``: one round trip."""
        p = self.s.prefix
        self._each(sizes, lambda key, pipe: self.s.archived(args=[p, key, sizes[key]], client=pipe))

    def failed(self, key: str, now: float, reason: str, error: str, next_try: float | None) -> None:
        """See ``ArchiveIndex.failed``."""
        args: list[str | float] = [self.s.prefix, key, now, reason, error, next_try or ""]
        self._call(lambda: self.s.failed(args=args))

    def requeue(self, keys: Sequence[str], now: float) -> None:
        """See ``ArchiveIndex.requeue``."""
        self._each(keys, lambda key, pipe: self.s.requeue(
            args=[self.s.prefix, key, now, "lost"], client=pipe))  # fmt: skip

    def _each(self, keys: Iterable[str], call: Callable[[str, Any], object]) -> None:
        def write() -> None:
            pipe = self.s.db.pipeline(transaction=False)
            for key in keys:
                call(key, pipe)
            pipe.execute()

        self._call(write)

    def fit(self, limit: int | None) -> None:
        """See ``ArchiveIndex.fit``."""

        def plan() -> tuple[list[str], list[str], list[str]]:
            s = self.s
            total = int(s.db.hget(s.key("totals"), "archived_bytes") or 0)  # type: ignore[arg-type]
            if (limit is None or total <= limit) and not s.db.scard(s.key("unpinned")):
                return [], [], []
            keys = [k.decode() for k in s.db.zrevrange(s.key("archived"), 0, -1)]  # type: ignore[union-attr]
            pipe = s.db.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(s.key("a:", key), ["size", "pinned"])
                pipe.exists(s.key("c:", key))
            found = pipe.execute()
            running = 0
            pin: list[str] = []
            unpin: list[str] = []
            gone: list[str] = []
            for key, (size, pinned), cached in zip(keys, found[::2], found[1::2], strict=True):
                running += int(size or 0)
                if limit is not None and running > limit:
                    if pinned == b"1":
                        unpin.append(key)
                elif pinned != b"1":
                    (pin if cached else gone).append(key)
            return pin, unpin, gone

        pin, unpin, gone = self._call(plan)
        p = self.s.prefix
        self._each(pin, lambda key, pipe: self.s.pin(args=[p, key, "1"], client=pipe))
        self._each(unpin, lambda key, pipe: self.s.pin(args=[p, key, "0"], client=pipe))
        self._each(gone, lambda key, pipe: self.s.requeue(args=[p, key, 0, "refit"], client=pipe))

    def resume(self, now: float) -> None:
        """Nothing: other replicas may hold the claims (they run out after ``hold``)."""

    def next_due(self) -> float | None:
        """See ``ArchiveIndex.next_due``."""
        first = self._call(lambda: self.s.db.zrange(self.s.key("pending"), 0, 0, withscores=True))
        return float(first[0][1]) if first else None  # type: ignore[index]

    # ---- what people see -------------------------------------------------------------------

    def _rows(self, keys: Sequence[str]) -> list[ImageRow]:
        fields = ["url", "state", "pinned", "size", "reason", "error", "attempts", "due"]

        def read() -> list[Any]:
            pipe = self.s.db.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self.s.key("a:", key), fields)
            return pipe.execute()

        rows = []
        for key, values in zip(keys, self._call(read), strict=True):
            url, state, pinned, size, reason, error, attempts, due = (
                v.decode() if v is not None else None for v in values
            )
            if state is None:
                continue
            shown: State = (
                "retrying" if state == "pending" and int(attempts or 0) > 0
                else "unpinned" if state == "archived" and pinned == "0"
                else state
            )  # fmt: skip
            rows.append(
                ImageRow(key, url or "", shown, int(size or 0), reason, error,
                         int(attempts or 0), float(due) if due else None)
            )  # fmt: skip
        return rows

    def _feed_keys(self, feed: str) -> dict[str, list[str]]:
        """Each entry's image keys."""
        by_entry: dict[str, list[str]] = {}
        for entry, key in self._call(lambda: self._refs(feed)):
            by_entry.setdefault(entry, []).append(key)
        return by_entry

    def summary(self, feed: str | None = None) -> ArchiveSummary:
        """See ``ArchiveIndex.summary``: totals from counters, the failures by reading them."""
        s = self.s
        if feed is not None:
            keys = sorted({k for ks in self._feed_keys(feed).values() for k in ks})
            return _tally(self._rows(keys))

        def read() -> list[Any]:
            pipe = s.db.pipeline(transaction=False)
            pipe.zcard(s.key("archived"))
            pipe.scard(s.key("unpinned"))
            pipe.hget(s.key("totals"), "archived_bytes")
            pipe.zcard(s.key("pending"))
            pipe.zrange(s.key("failures"), 0, -1)
            return pipe.execute()

        archived, unpinned, size, pending, failing = self._call(read)
        failures = self._rows([k.decode() for k in failing])
        tally = _tally(failures)
        return ArchiveSummary(
            archived=int(archived) - int(unpinned),
            bytes=int(size or 0),
            pending=int(pending) - tally.retrying,
            retrying=tally.retrying,
            failed=tally.failed,
            unpinned=int(unpinned),
            reasons=tally.reasons,
        )

    def failures(self, feed: str | None = None, limit: int = 1000) -> list[ImageRow]:
        """See ``ArchiveIndex.failures``."""
        if feed is None:
            found = self._call(lambda: self.s.db.zrevrange(self.s.key("failures"), 0, limit - 1))
            keys = [k.decode() for k in found]  # type: ignore[union-attr]
        else:
            keys = sorted({k for ks in self._feed_keys(feed).values() for k in ks})
        rows = [r for r in self._rows(keys) if r.reason and r.state in ("retrying", "failed")]
        return rows[:limit]

    def images(self, feed: str, entries: Sequence[str]) -> dict[str, list[ImageRow]]:
        """See ``ArchiveIndex.images``."""
        by_entry = self._feed_keys(feed)
        found = {}
        for entry in entries:
            rows = self._rows(sorted(by_entry.get(entry, [])))
            found[entry] = sorted(rows, key=lambda r: r.url)
        return found

    def retry(self, feed: str | None, now: float) -> int:
        """See ``ArchiveIndex.retry``."""
        keys = [r.key for r in self.failures(feed, limit=1_000_000)]
        p = self.s.prefix
        self._each(keys, lambda key, pipe: self.s.requeue(args=[p, key, now, "retry"], client=pipe))
        return len(keys)

    def backfilled(self, feed: str) -> bool:
        """See ``ArchiveIndex.backfilled``."""
        return bool(self._call(lambda: self.s.db.sismember(self.s.key("backfilled"), feed)))

    def mark_backfilled(self, feed: str) -> None:
        """See ``ArchiveIndex.mark_backfilled``."""
        self._call(lambda: self.s.db.sadd(self.s.key("backfilled"), feed))

    def close(self) -> None:
        """Close the connection pool (the cache's index shares it)."""
        self.s.db.close()


def _tally(rows: Iterable[ImageRow]) -> ArchiveSummary:
    """A summary counted from rows."""
    counts = {"archived": 0, "pending": 0, "retrying": 0, "failed": 0, "unpinned": 0}
    size = 0
    reasons: dict[str, int] = {}
    for row in rows:
        counts[row.state] += 1
        size += row.size if row.state == "archived" else 0
        if row.reason and row.state in ("retrying", "failed"):
            reasons[row.reason] = reasons.get(row.reason, 0) + 1
    return ArchiveSummary(bytes=size, reasons=reasons, **counts)
