"""The archive's index in the store's SQLite file (see ``archive_index.py``), beside the
cache's ``image_cache`` table: the cache's eviction reads the pins from it in one query."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from feedfix.service.image_archive import FEED_LEVEL, ArchiveSummary, ImageRow
from feedfix.service.images.archive_index import (
    ArchiveIndexError,
    Claim,
    Ref,
)
from feedfix.service.images.archive_schema import ARCHIVE_SCHEMA, ROW, SHOWN

_CHUNK = 500  # keys per IN (...) list
PAGE_CACHE_KIB = 512  # SQLite's page cache for this connection (its default is 2 MB)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(items: Sequence[object]) -> str:
    return ",".join("?" * len(items))


class SQLiteArchiveIndex:
    """The index in the store's SQLite file (beside the cache's ``image_cache`` table, which
    the cache's eviction reads it with). Calls are serialized by a lock."""

    def __init__(self, path: Path | str, cache_schema: str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        with self._errors():
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            self._db.executescript(ARCHIVE_SCHEMA + cache_schema)  # it reads the cache's rows

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise ArchiveIndexError(f"{self.path}: image archive index: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._db

    # ---- references ------------------------------------------------------------------------

    def update(
        self,
        feed: str,
        now: float,
        kept: Mapping[str, float],
        refs: Mapping[str, Sequence[Ref]],
        keep_for: float,
    ) -> None:
        """See ``ArchiveIndex.update``: one transaction."""
        with self._write() as db:
            rows = db.execute(
                "SELECT entry, key, left_at FROM image_refs WHERE feed = ?", (feed,)
            ).fetchall()
            touched = {key for _, key, _ in rows}
            db.executemany(
                "DELETE FROM image_refs WHERE feed = ? AND entry = ?",
                [(feed, entry) for entry in refs],
            )
            new = [
                (feed, entry, ref.key, kept.get(entry, now))
                for entry, images in refs.items()
                for ref in images
            ]
            db.executemany("INSERT OR IGNORE INTO image_refs VALUES (?, ?, ?, ?, NULL)", new)
            returned = [(feed, e) for e, _, left in rows if left is not None and e in kept]
            db.executemany(
                "UPDATE image_refs SET left_at = NULL WHERE feed = ? AND entry = ?", returned
            )
            gone = {(e, k) for e, k, _ in rows
                    if e not in kept and e not in refs and e != FEED_LEVEL}  # fmt: skip
            if keep_for <= 0:
                db.executemany(
                    "DELETE FROM image_refs WHERE feed = ? AND entry = ? AND key = ?",
                    [(feed, e, k) for e, k in gone],
                )
            else:
                db.executemany(
                    "UPDATE image_refs SET left_at = ? WHERE feed = ? AND entry = ? AND key = ? "
                    "AND left_at IS NULL",
                    [(now, feed, e, k) for e, k in gone],
                )
            fresh = {ref.key: ref for images in refs.values() for ref in images}
            self._add_images(db, fresh, now)
            self._settle(db, sorted(touched | set(fresh)))

    def _add_images(self, db: sqlite3.Connection, fresh: Mapping[str, Ref], now: float) -> None:
        """New rows, pending and due now (archived at once when the cache has the image)."""
        keys = sorted(fresh)
        for chunk in _chunks(keys):
            cached = dict(
                db.execute(
                    f"SELECT key, size FROM image_cache WHERE key IN ({_marks(chunk)})",  # noqa: S608
                    chunk,
                )
            )
            db.executemany(
                "INSERT OR IGNORE INTO image_archive (key, path, url, state, newest, size, due) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        key,
                        fresh[key].path,
                        fresh[key].url,
                        "archived" if key in cached else "pending",
                        now,
                        cached.get(key, 0),
                        None if key in cached else now,
                    )
                    for key in chunk
                ],
            )

    def _settle(self, db: sqlite3.Connection, keys: Sequence[str]) -> None:
        """Each image's newest entry again, and no row for an image nothing points at."""
        for chunk in _chunks(keys):
            marks = _marks(chunk)
            db.execute(
                "UPDATE image_archive SET newest = COALESCE((SELECT MAX(dated) FROM image_refs "  # noqa: S608
                f"r WHERE r.key = image_archive.key), newest) WHERE key IN ({marks})",
                chunk,
            )
            db.execute(
                f"DELETE FROM image_archive WHERE key IN ({marks}) AND NOT EXISTS "  # noqa: S608
                "(SELECT 1 FROM image_refs r WHERE r.key = image_archive.key)",
                chunk,
            )

    def expire(self, now: float, keep_for: float, feeds: Sequence[str] | None = None) -> None:
        """See ``ArchiveIndex.expire``."""
        with self._write() as db:
            if feeds is not None:
                marks = _marks(feeds) or "NULL"
                if keep_for <= 0:
                    db.execute(f"DELETE FROM image_refs WHERE feed NOT IN ({marks})", feeds)  # noqa: S608
                else:
                    db.execute(
                        f"UPDATE image_refs SET left_at = ? WHERE feed NOT IN ({marks}) "  # noqa: S608
                        "AND left_at IS NULL",
                        (now, *feeds),
                    )
                db.execute(f"DELETE FROM image_archive_feeds WHERE feed NOT IN ({marks})", feeds)  # noqa: S608
            db.execute("DELETE FROM image_refs WHERE left_at <= ?", (now - keep_for,))
            db.execute(
                "DELETE FROM image_archive WHERE NOT EXISTS "
                "(SELECT 1 FROM image_refs r WHERE r.key = image_archive.key)"
            )

    # ---- the archiver's work ---------------------------------------------------------------

    def claim(self, now: float, limit: int, hold: float) -> list[Claim]:
        """See ``ArchiveIndex.claim``."""
        with self._write() as db:
            rows = db.execute(
                "SELECT key, path, url, attempts, first_failure FROM image_archive "
                "WHERE state = 'pending' AND due <= ? ORDER BY due, newest DESC LIMIT ?",
                (now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE image_archive SET due = ? WHERE key = ?", [(now + hold, r[0]) for r in rows]
            )
        return [Claim(*row) for row in rows]

    def archived(self, sizes: Mapping[str, int]) -> None:
        """See ``ArchiveIndex.archived``: one transaction."""
        with self._write() as db:
            db.executemany(
                "UPDATE image_archive SET state = 'archived', size = ?, due = NULL, "
                "reason = NULL, error = NULL WHERE key = ?",
                [(size, key) for key, size in sizes.items()],
            )

    def failed(self, key: str, now: float, reason: str, error: str, next_try: float | None) -> None:
        """See ``ArchiveIndex.failed``."""
        with self._write() as db:
            db.execute(
                "UPDATE image_archive SET state = ?, due = ?, attempts = attempts + 1, "
                "first_failure = COALESCE(first_failure, ?), failed_at = ?, reason = ?, "
                "error = ? WHERE key = ?",
                ("failed" if next_try is None else "pending", next_try, now, now, reason, error,
                 key),
            )  # fmt: skip

    def requeue(self, keys: Sequence[str], now: float) -> None:
        """See ``ArchiveIndex.requeue``."""
        with self._write() as db:
            db.executemany(
                "UPDATE image_archive SET state = 'pending', size = 0, due = ? "
                "WHERE key = ? AND state = 'archived' AND pinned = 1",
                [(now, key) for key in keys],
            )

    def fit(self, limit: int | None) -> None:
        """See ``ArchiveIndex.fit``: newest first, the images that fit stay pinned."""
        with self._write() as db:
            if limit is None:
                db.execute("UPDATE image_archive SET pinned = 1 WHERE pinned = 0")
                return
            (total,) = db.execute(
                "SELECT COALESCE(SUM(size), 0) FROM image_archive WHERE state = 'archived'"
            ).fetchone()
            (unpinned,) = db.execute(
                "SELECT COUNT(*) FROM image_archive WHERE pinned = 0"
            ).fetchone()
            if total <= limit and not unpinned:
                return
            rows = db.execute(
                "SELECT a.key, a.size, a.pinned, EXISTS (SELECT 1 FROM image_cache c "
                "WHERE c.key = a.key) FROM image_archive a WHERE a.state = 'archived' "
                "ORDER BY a.newest DESC, a.key"
            ).fetchall()
            running = 0
            pin: list[tuple[str]] = []
            unpin: list[tuple[str]] = []
            gone: list[tuple[str]] = []
            for key, size, pinned, cached in rows:
                running += size
                if running > limit:
                    if pinned:
                        unpin.append((key,))
                elif not pinned:
                    (pin if cached else gone).append((key,))
            db.executemany("UPDATE image_archive SET pinned = 0 WHERE key = ?", unpin)
            db.executemany("UPDATE image_archive SET pinned = 1 WHERE key = ?", pin)
            db.executemany(  # fits again, but the cache let it go meanwhile: fetch it again
                "UPDATE image_archive SET pinned = 1, state = 'pending', size = 0, due = 0 "
                "WHERE key = ?",
                gone,
            )

    def resume(self, now: float) -> None:
        """See ``ArchiveIndex.resume``."""
        with self._write() as db:
            db.execute(
                "UPDATE image_archive SET due = ? WHERE state = 'pending' AND attempts = 0 "
                "AND due > ?",
                (now, now),
            )

    def next_due(self) -> float | None:
        """See ``ArchiveIndex.next_due``."""
        with self._read() as db:
            (due,) = db.execute(
                "SELECT MIN(due) FROM image_archive WHERE state = 'pending'"
            ).fetchone()
        return float(due) if due is not None else None

    # ---- what people see -------------------------------------------------------------------

    def summary(self, feed: str | None = None) -> ArchiveSummary:
        """See ``ArchiveIndex.summary``."""
        where, args = self._of(feed)
        with self._read() as db:
            counts = db.execute(
                f"SELECT {SHOWN} AS shown, COUNT(*), COALESCE(SUM(size), 0) "  # noqa: S608
                f"FROM image_archive {where} GROUP BY shown",
                args,
            ).fetchall()
            reasons = db.execute(
                f"SELECT reason, COUNT(*) FROM image_archive {where} "  # noqa: S608
                f"{'AND' if where else 'WHERE'} reason IS NOT NULL GROUP BY reason",
                args,
            ).fetchall()
        by = {state: (count, size) for state, count, size in counts}
        return ArchiveSummary(
            archived=by.get("archived", (0, 0))[0],
            bytes=by.get("archived", (0, 0))[1],
            pending=by.get("pending", (0, 0))[0],
            retrying=by.get("retrying", (0, 0))[0],
            failed=by.get("failed", (0, 0))[0],
            unpinned=by.get("unpinned", (0, 0))[0],
            reasons=dict(reasons),
        )

    @staticmethod
    def _of(feed: str | None) -> tuple[str, tuple[str, ...]]:
        """The WHERE clause for one feed's images (or all)."""
        if feed is None:
            return "", ()
        return "WHERE key IN (SELECT key FROM image_refs WHERE feed = ?)", (feed,)

    def failures(self, feed: str | None = None, limit: int = 1000) -> list[ImageRow]:
        """See ``ArchiveIndex.failures``."""
        where, args = self._of(feed)
        with self._read() as db:
            rows = db.execute(
                f"SELECT {ROW} FROM image_archive {where} "  # noqa: S608
                f"{'AND' if where else 'WHERE'} reason IS NOT NULL AND state != 'archived' "
                "ORDER BY failed_at DESC, key LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [ImageRow(*row) for row in rows]

    def images(self, feed: str, entries: Sequence[str]) -> dict[str, list[ImageRow]]:
        """See ``ArchiveIndex.images``."""
        found: dict[str, list[ImageRow]] = {entry: [] for entry in entries}
        with self._read() as db:
            for chunk in _chunks(list(entries)):
                rows = db.execute(
                    f"SELECT r.entry, {ROW} FROM image_refs r JOIN image_archive "  # noqa: S608
                    f"USING (key) WHERE r.feed = ? AND r.entry IN ({_marks(chunk)}) "
                    "ORDER BY r.entry, url",
                    (feed, *chunk),
                ).fetchall()
                for entry, *row in rows:
                    found[entry].append(ImageRow(*row))
        return found

    def retry(self, feed: str | None, now: float) -> int:
        """See ``ArchiveIndex.retry``."""
        where, args = self._of(feed)
        with self._write() as db:
            done = db.execute(
                "UPDATE image_archive SET state = 'pending', due = ?, attempts = 0, "  # noqa: S608
                f"first_failure = NULL, reason = NULL, error = NULL {where} "
                f"{'AND' if where else 'WHERE'} reason IS NOT NULL AND state != 'archived'",
                (now, *args),
            )
        return done.rowcount

    def backfilled(self, feed: str) -> bool:
        """See ``ArchiveIndex.backfilled``."""
        with self._read() as db:
            found = db.execute("SELECT 1 FROM image_archive_feeds WHERE feed = ?", (feed,))
            return found.fetchone() is not None

    def mark_backfilled(self, feed: str) -> None:
        """See ``ArchiveIndex.mark_backfilled``."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO image_archive_feeds VALUES (?)", (feed,))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
