"""What the cache knows about each stored image, behind a small interface.

The bytes live in files; this is the index: media type, size, ETag, when last used. The
SQLite implementation keeps it in a table of the store's file (or any file), so that a
restart finds the cache, and so that resident memory does not grow with the number of
images: only running totals are held in memory. Its eviction passes over the images the
archive pins (``archive_index.py``, in the same file). ``MemoryMeta`` is for tests and
one-shots; ``redis_index.py`` holds the index of replicas that share one image folder.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from feedfix.core.errors import FeedfixError
from feedfix.service.images.archive_schema import ARCHIVE_SCHEMA


class MetaError(FeedfixError):
    """The index can't be read or written (disk full, locked, corrupt); names the file."""


class MetaResting(MetaError):
    """The index failed a moment ago and is not asked again yet (said once, when it failed:
    not logged again for every request meanwhile)."""


@dataclass(frozen=True)
class CacheEntry:
    """One cached image: its key (also its file name), type, size and strong ETag."""

    key: str
    media_type: str
    size: int
    etag: str
    url: str
    stored_at: float
    used_at: float


@dataclass(frozen=True)
class CacheStats:
    """How much the cache holds."""

    entries: int
    bytes: int


class CacheMeta(Protocol):
    """The cache's index. ``touch`` takes a batch (the cache collects uses and writes them
    together); ``evict`` removes least-recently-used entries until the total fits."""

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, if cached."""
        ...

    def put(self, entry: CacheEntry) -> None:
        """Add or replace an entry."""
        ...

    def touch(self, uses: Iterable[tuple[str, float]]) -> None:
        """Record when each key was last used."""
        ...

    def evict(self, limit: int, keep: str | None = None) -> list[CacheEntry]:
        """Remove least-recently-used entries (never ``keep``, never an image the archive
        pins) until at most ``limit`` bytes remain, or only those are left; return what was
        removed so its files can be deleted."""
        ...

    def discard(self, key: str) -> None:
        """Forget one entry (its file is gone)."""
        ...

    def stats(self) -> CacheStats:
        """Entries and bytes held."""
        ...

    def close(self) -> None:
        """Release the storage."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS image_cache (
    key TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    url TEXT NOT NULL,
    stored_at REAL NOT NULL,
    used_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS image_cache_used_at ON image_cache (used_at);
"""
CACHE_SCHEMA = _SCHEMA
_COLUMNS = "key, media_type, size, etag, url, stored_at, used_at"


class SQLiteMeta:
    """The index in an SQLite table; only the totals are kept in memory."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        with self._errors():
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA + ARCHIVE_SCHEMA)  # eviction reads the archive's pins
            count, total = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM image_cache"
            ).fetchone()
        self._entries, self._bytes = int(count), int(total)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise MetaError(f"{self.path}: image cache index: {exc}") from exc

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, if cached."""
        with self._errors():
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM image_cache WHERE key = ?",  # noqa: S608 (constant)
                (key,),
            ).fetchone()
        return CacheEntry(*row) if row else None

    def put(self, entry: CacheEntry) -> None:
        """Add or replace an entry, keeping the totals right."""
        with self._errors(), self._db:
            old = self._db.execute("SELECT size FROM image_cache WHERE key = ?", (entry.key,))
            previous = old.fetchone()
            self._db.execute(
                f"INSERT OR REPLACE INTO image_cache ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    entry.key,
                    entry.media_type,
                    entry.size,
                    entry.etag,
                    entry.url,
                    entry.stored_at,
                    entry.used_at,
                ),
            )
        if previous:
            self._bytes -= int(previous[0])
        else:
            self._entries += 1
        self._bytes += entry.size

    def touch(self, uses: Iterable[tuple[str, float]]) -> None:
        """Record last uses, in one transaction."""
        with self._errors(), self._db:
            self._db.executemany(
                "UPDATE image_cache SET used_at = MAX(used_at, ?) WHERE key = ?",
                [(when, key) for key, when in uses],
            )

    def evict(self, limit: int, keep: str | None = None) -> list[CacheEntry]:
        """Remove the least recently used entries until at most ``limit`` bytes remain,
        passing over those a published entry pins (``archive_index.py``)."""
        removed: list[CacheEntry] = []
        with self._errors():
            while self._bytes > limit:
                batch = self._evict_batch(limit, keep)
                if not batch:
                    break
                removed += batch
        return removed

    def _evict_batch(self, limit: int, keep: str | None) -> list[CacheEntry]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM image_cache c WHERE key != ? AND NOT EXISTS "  # noqa: S608 (constant)
            "(SELECT 1 FROM image_archive a WHERE a.key = c.key AND a.pinned = 1) "
            "ORDER BY used_at LIMIT 64",
            (keep or "",),
        ).fetchall()
        batch: list[CacheEntry] = []
        over = self._bytes - limit
        for row in rows:
            if over <= 0:
                break
            batch.append(CacheEntry(*row))
            over -= batch[-1].size
        with self._db:
            self._db.executemany("DELETE FROM image_cache WHERE key = ?", [(e.key,) for e in batch])
        self._entries -= len(batch)
        self._bytes -= sum(e.size for e in batch)
        return batch

    def discard(self, key: str) -> None:
        """Forget one entry."""
        entry = self.get(key)
        if entry is None:
            return
        with self._errors(), self._db:
            self._db.execute("DELETE FROM image_cache WHERE key = ?", (key,))
        self._entries -= 1
        self._bytes -= entry.size

    def stats(self) -> CacheStats:
        """Entries and bytes held (running totals, exact)."""
        return CacheStats(self._entries, self._bytes)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


class MemoryMeta:
    """The index in a dict, least recently used first: for tests and one-shot runs."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, if cached."""
        return self._entries.get(key)

    def put(self, entry: CacheEntry) -> None:
        """Add or replace an entry."""
        self.discard(entry.key)
        self._entries[entry.key] = entry
        self._bytes += entry.size

    def touch(self, uses: Iterable[tuple[str, float]]) -> None:
        """Record last uses (moving each key to the recent end)."""
        for key, when in uses:
            if (entry := self._entries.get(key)) is not None:
                self._entries[key] = replace(entry, used_at=max(entry.used_at, when))
                self._entries.move_to_end(key)

    def evict(self, limit: int, keep: str | None = None) -> list[CacheEntry]:
        """Remove the least recently used entries until at most ``limit`` bytes remain."""
        removed: list[CacheEntry] = []
        for key in list(self._entries):
            if self._bytes <= limit:
                break
            if key != keep:
                removed.append(self._entries.pop(key))
                self._bytes -= removed[-1].size
        return removed

    def discard(self, key: str) -> None:
        """Forget one entry."""
        if (entry := self._entries.pop(key, None)) is not None:
            self._bytes -= entry.size

    def stats(self) -> CacheStats:
        """Entries and bytes held."""
        return CacheStats(len(self._entries), self._bytes)

    def close(self) -> None:
        """Nothing to release."""
