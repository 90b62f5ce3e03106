"""Where the service keeps what it must not lose: the last good output, the upstream's
validators, a poll history and the entry archive.

A small ``Store`` interface with two backends: SQLite (the default; WAL, one transaction per
poll, so a kill at any moment leaves the previous good state whole) and memory (for tests and
for running without a disk). A Redis backend for several replicas implements the same calls.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from feedfix.codec import entry_from_json, entry_to_json
from feedfix.errors import FeedfixError
from feedfix.republish import Archived

HISTORY_KEPT = 200  # poll records kept per feed


class StoreError(FeedfixError):
    """The store could not be opened or written (disk full, locked, not a database)."""


@dataclass(frozen=True)
class Published:
    """Bytes as served, with the validators computed once when they were made."""

    body: bytes
    gzip: bytes
    etag: str  # strong, quoted
    last_modified: float  # epoch seconds when these bytes first appeared
    entries: int


@dataclass
class FeedState:
    """What the poller remembers about one feed between polls and across restarts."""

    upstream_etag: str | None = None
    upstream_last_modified: str | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0
    next_poll: float | None = None
    stale_since: float | None = None
    permanent_redirect: str | None = None
    fingerprint: str | None = None  # url and rules the stored output was made with


@dataclass(frozen=True)
class PollRecord:
    """One line of poll history."""

    started: float
    status: str  # "ok", "not-modified", or "error"
    duration: float
    error: str | None = None
    bytes: int = 0
    changed: bool = False
    http_status: int | None = None


@dataclass(frozen=True)
class ArchiveUpdate:
    """A feed's archive after a poll: the ids it keeps, and the entries new or changed since
    the rows last sent (all of them after a write that failed)."""

    kept: frozenset[str]
    changed: Mapping[str, Archived]


@dataclass
class Snapshot:
    """Everything stored for one feed, as loaded at start."""

    state: FeedState = field(default_factory=FeedState)
    published: Published | None = None
    archive: dict[str, Archived] = field(default_factory=dict)


class Store(Protocol):
    """The storage interface the service depends on."""

    def load(self, name: str) -> Snapshot:
        """Everything stored for a feed (empty when nothing is)."""

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
    ) -> None:
        """Record one poll atomically: all of it is stored, or none of it."""

    def history(self, name: str, limit: int = 20) -> list[PollRecord]:
        """The newest poll records of a feed, newest first."""

    def close(self) -> None:
        """Release the backend."""


class MemoryStore:
    """A Store in a dict: nothing survives the process."""

    def __init__(self) -> None:
        self._feeds: dict[str, Snapshot] = {}
        self._history: dict[str, list[PollRecord]] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> Snapshot:
        """A copy of what is kept for ``name``."""
        with self._lock:
            snap = self._feeds.get(name)
            if snap is None:
                return Snapshot()
            return Snapshot(FeedState(**asdict(snap.state)), snap.published, dict(snap.archive))

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
    ) -> None:
        """Replace the feed's stored state in one step."""
        with self._lock:
            snap = self._feeds.setdefault(name, Snapshot())
            snap.state = FeedState(**asdict(state))
            if published is not None:
                snap.published = published
            if archive is not None:
                kept = {k: a for k, a in snap.archive.items() if k in archive.kept}
                snap.archive = {**kept, **archive.changed}
            rows = self._history.setdefault(name, [])
            rows.insert(0, record)
            del rows[HISTORY_KEPT:]

    def history(self, name: str, limit: int = 20) -> list[PollRecord]:
        """Newest first."""
        with self._lock:
            return list(self._history.get(name, [])[:limit])

    def close(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_state (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS published (
    name TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    gzip BLOB NOT NULL,
    etag TEXT NOT NULL,
    last_modified REAL NOT NULL,
    entries INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    name TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    entry TEXT NOT NULL,
    first_seen REAL NOT NULL,
    PRIMARY KEY (name, entry_id)
);
CREATE TABLE IF NOT EXISTS polls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS polls_by_feed ON polls (name, id);
"""
SCHEMA_VERSION = 1


class SqliteStore:
    """A Store in one SQLite file. Calls are serialized; run them off the event loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across process kills
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{path}: made by a newer feedfix (schema {version})")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the database: {exc}") from None
        self._lock = threading.Lock()

    def load(self, name: str) -> Snapshot:
        """Everything stored for ``name``."""
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT state FROM feed_state WHERE name = ?", (name,)
                ).fetchone()
                pub = self._db.execute(
                    "SELECT body, gzip, etag, last_modified, entries FROM published WHERE name = ?",
                    (name,),
                ).fetchone()
                rows = self._db.execute(
                    "SELECT entry_id, source_hash, entry, first_seen FROM entries WHERE name = ?",
                    (name,),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read: {exc}") from None
        state = FeedState(**json.loads(row[0])) if row else FeedState()
        published = Published(bytes(pub[0]), bytes(pub[1]), pub[2], pub[3], pub[4]) if pub else None
        archive = {
            r[0]: Archived(id=r[0], source_hash=r[1], entry=entry_from_json(r[2]), first_seen=r[3])
            for r in rows
        }
        return Snapshot(state, published, archive)

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
    ) -> None:
        """One transaction: state, history, and (on success) output and archive."""
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._write(name, state, record, published, archive)
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back already
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write: {exc}") from None

    def _write(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None,
        archive: ArchiveUpdate | None,
    ) -> None:
        db = self._db
        db.execute(
            "INSERT INTO feed_state (name, state) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET state = excluded.state",
            (name, json.dumps(asdict(state))),
        )
        db.execute(
            "INSERT INTO polls (name, record) VALUES (?, ?)", (name, json.dumps(asdict(record)))
        )
        db.execute(
            "DELETE FROM polls WHERE name = ? AND id <= "
            "(SELECT id FROM polls WHERE name = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (name, name, HISTORY_KEPT),
        )
        if published is not None:
            db.execute(
                "INSERT OR REPLACE INTO published VALUES (?, ?, ?, ?, ?, ?)",
                (
                    name,
                    published.body,
                    published.gzip,
                    published.etag,
                    published.last_modified,
                    published.entries,
                ),
            )
        if archive is not None:
            stored = dict(
                db.execute("SELECT entry_id, source_hash FROM entries WHERE name = ?", (name,))
            )
            gone = [(name, key) for key in stored if key not in archive.kept]
            db.executemany("DELETE FROM entries WHERE name = ? AND entry_id = ?", gone)
            db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)",
                [
                    (name, a.id, a.source_hash, entry_to_json(a.entry), a.first_seen)
                    for a in archive.changed.values()
                    if stored.get(a.id) != a.source_hash  # unchanged rows stay as they are
                ],
            )

    def history(self, name: str, limit: int = 20) -> list[PollRecord]:
        """Newest first."""
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT record FROM polls WHERE name = ? ORDER BY id DESC LIMIT ?",
                    (name, limit),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read: {exc}") from None
        return [PollRecord(**json.loads(r[0])) for r in rows]

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self._db.close()


def open_store(path: str) -> Store:
    """The backend a ``[storage] path`` names: ``:memory:`` for memory, else a SQLite file."""
    return MemoryStore() if path == ":memory:" else SqliteStore(path)
