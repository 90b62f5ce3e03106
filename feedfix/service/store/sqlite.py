"""A Store in one SQLite file: WAL, one transaction per poll, so a kill at any moment leaves
the previous good state whole.

Only an outage is a ``StoreError`` (locked past the busy timeout, disk full, I/O error, a
damaged file: the service reports "storage failed" and keeps serving what it has). A
programming error (``ProgrammingError``, ``InterfaceError``, a query SQLite calls wrong:
``SQLITE_ERROR``, ``SQLITE_MISUSE``, a constraint) is a bug and propagates as itself, so
it is logged as one, with its traceback, instead of as an outage on every poll.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from feedfix.core.archive import Archived
from feedfix.core.model import Entry
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published, Snapshot
from feedfix.service.store import HISTORY_KEPT, SOURCES_KEPT, StoreError, bounded_sources
from feedfix.service.store.codec import entry_from_json, entry_to_json

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
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entry_sources (
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (name, position)
);
"""
T = TypeVar("T")
SCHEMA_VERSION = 1
BUSY_TIMEOUT = 5.0  # seconds to wait for another connection's lock before giving up
# The primary result codes of an outage, not of a wrong query (sqlite.org/rescode.html).
_OUTAGES = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_SCHEMA,
        sqlite3.SQLITE_TOOBIG,
        sqlite3.SQLITE_NOLFS,
        sqlite3.SQLITE_NOTADB,
    }
)


def _outage(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed for a reason outside the code (the disk, a lock, the file)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(
        exc, sqlite3.ProgrammingError | sqlite3.IntegrityError | sqlite3.NotSupportedError
    ):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _OUTAGES


def _create_private(path: str) -> None:
    """Create the store's file for its owner alone (it holds the image proxy's signing key
    and the poll records), unless it exists; SQLite gives its -wal and -shm files the same
    mode. An OSError here is sqlite3's to report, as it opens the file next."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


class SqliteStore:
    """A Store in one SQLite file. Calls are serialized; run them off the event loop."""

    def __init__(self, path: str, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        """Open (or create) the file. Any failure here is a ``StoreError`` naming it: the SQL
        is the fixed schema, so what fails is the file (not a database, unreadable, a
        table of another shape)."""
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                _create_private(path)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across process kills
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{path}: made by a newer feedfix (schema {version})")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the database: {exc}") from exc
        self._lock = threading.Lock()

    def load(self, name: str, *, archive: bool = True) -> Snapshot:
        """Everything stored for ``name`` (the archive's entries only when ``archive``)."""
        with self._reading():
            row = self._db.execute(
                "SELECT state FROM feed_state WHERE name = ?", (name,)
            ).fetchone()
            pub = self._db.execute(
                "SELECT gzip, etag, last_modified, entries FROM published WHERE name = ?", (name,)
            ).fetchone()
        state = FeedState(**json.loads(row[0])) if row else FeedState()
        published = Published(bytes(pub[0]), pub[1], pub[2], pub[3]) if pub else None
        return Snapshot(state, published, self.load_archive(name) if archive else {})

    def load_archive(self, name: str) -> dict[str, Archived]:
        """The feed's archived entries."""
        with self._reading():
            rows = self._db.execute(
                "SELECT entry_id, source_hash, entry, first_seen FROM entries WHERE name = ?",
                (name,),
            ).fetchall()
        return {
            r[0]: Archived(id=r[0], source_hash=r[1], entry=entry_from_json(r[2]), first_seen=r[3])
            for r in rows
        }

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
        *,
        fence: str | None = None,  # one process owns the file: nobody else can take the feed
    ) -> None:
        """One transaction: state, history, and (on success) output and archive."""
        self._transaction("write", lambda: self._write(name, state, record, published, archive))

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads under the lock; an outage (locked, I/O error) is a StoreError, a bug is
        itself, traceback and all."""
        try:
            with self._lock:
                yield
        except sqlite3.Error as exc:
            if not _outage(exc):
                raise
            raise StoreError(f"{self.path}: cannot read: {exc}") from exc

    def _transaction(self, what: str, work: Callable[[], T]) -> T:
        """``work`` in one ``BEGIN IMMEDIATE`` transaction, all of it or none; an outage is a
        StoreError saying what could not be done, a bug propagates as itself."""
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work()
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back already
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if not _outage(exc):
                raise  # a bug: as itself, traceback and all
            raise StoreError(f"{self.path}: cannot {what}: {exc}") from exc
        return result

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
                    published.identity(),  # kept for readers of the file; served from gzip
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
        with self._reading():
            rows = self._db.execute(
                "SELECT record FROM polls WHERE name = ? ORDER BY id DESC LIMIT ?", (name, limit)
            ).fetchall()
        return [PollRecord(**json.loads(r[0])) for r in rows]

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """Insert ``make()`` unless a value is there, then read what is: one transaction,
        so of two replicas starting at once the first to write wins and both read it."""

        def keep() -> str:
            self._db.execute(
                "INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, make())
            )
            row = self._db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            return str(row[0])

        return self._transaction(f"keep {name}", keep)

    def save_sources(self, name: str, sources: Sequence[Entry]) -> None:
        """Replace the feed's last sources (bounded), in one transaction."""
        rows = [(name, i, entry_to_json(e)) for i, e in enumerate(bounded_sources(sources))]

        def replace_rows() -> None:
            self._db.execute("DELETE FROM entry_sources WHERE name = ?", (name,))
            self._db.executemany("INSERT INTO entry_sources VALUES (?, ?, ?)", rows)

        self._transaction("write", replace_rows)

    def sources(self, name: str, limit: int = SOURCES_KEPT) -> list[Entry]:
        """In the upstream's order."""
        with self._reading():
            rows = self._db.execute(
                "SELECT entry FROM entry_sources WHERE name = ? ORDER BY position LIMIT ?",
                (name, limit),
            ).fetchall()
        return [entry_from_json(r[0]) for r in rows]

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self._db.close()
