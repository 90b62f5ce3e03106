"""The SQLite store tells an outage from a bug: a locked, full or damaged database is a
``StoreError`` ("storage failed", the service keeps serving what it has); a programming
error (a closed connection, a value SQLite cannot bind, a bad query) propagates as itself,
so it is logged as the bug it is and not as a storage outage on every poll."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedfix.service.state import FeedState, PollRecord, Published
from feedfix.service.store import StoreError
from feedfix.service.store.sqlite import SqliteStore

RECORD = PollRecord(started=1.0, status="ok", duration=0.1)


def _published(size: int = 100) -> Published:
    body = bytes(range(256)) * (size // 256 + 1)
    return Published.of(body[:size], '"e"', 1.0, 1)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store's file, with one feed saved in it."""
    path = tmp_path / "feedfix.db"
    store = SqliteStore(str(path))
    store.save("a", FeedState(), RECORD, _published(200_000))
    store.close()
    return path


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    """The store, opened on that file, with a short wait for a lock."""
    opened = SqliteStore(str(db), busy_timeout=0.1)
    yield opened
    opened.close()


# ---- outages: StoreError -----------------------------------------------------------------


def test_a_locked_database_is_a_store_error(db: Path, store: SqliteStore) -> None:
    """Another process holds the write lock past the busy timeout: 'database is locked',
    reported as a storage failure naming the file, after waiting about the timeout."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"feedfix\.db: cannot write: database is locked"):
            store.save("a", FeedState(), RECORD)
        assert 0.05 < time.monotonic() - started < 3
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.history("a")[0] == RECORD  # the lock gone, the store works again


def test_a_full_disk_is_a_store_error(db: Path) -> None:
    """The database can grow no more ('database or disk is full': here SQLite's own page
    limit, which fails a write just as a full disk does): a storage failure, and the
    previous good state stays whole."""
    store = SqliteStore(str(db))
    store._db.execute("PRAGMA max_page_count = 60")  # about what the file holds already
    try:
        with pytest.raises(StoreError, match="cannot write: database or disk is full"):
            store.save("a", FeedState(failures=1), RECORD, _published(400_000))
        snapshot = store.load("a")
    finally:
        store.close()
    assert snapshot.published == _published(200_000) and snapshot.state.failures == 0


def test_a_damaged_file_is_a_store_error(db: Path) -> None:
    """Pages overwritten on disk (a failing disk): 'database disk image is malformed' is a
    storage failure naming the file, not a crash."""
    with db.open("r+b") as raw:
        raw.seek(4096 * 2)  # past the header and schema pages: the database still opens
        raw.write(b"\xff" * 4096 * 40)
    store = SqliteStore(str(db))
    try:
        with pytest.raises(StoreError, match=r"feedfix\.db: cannot read: .*malformed"):
            store.load("a")
    finally:
        store.close()


def test_a_file_that_is_no_database_is_a_store_error(tmp_path: Path) -> None:
    """At open: a file that is no SQLite database says so, naming the file."""
    path = tmp_path / "feedfix.db"
    path.write_bytes(b"this is not a database, just text that is long enough" * 100)
    with pytest.raises(StoreError, match=r"feedfix\.db: cannot open the database"):
        SqliteStore(str(path))


# ---- bugs: propagate as themselves ---------------------------------------------------------


def test_using_a_closed_store_is_a_programming_error(db: Path) -> None:
    """A store used after ``close`` is a bug in the caller: ``ProgrammingError``."""
    store = SqliteStore(str(db))
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        store.load("a")
    with pytest.raises(sqlite3.ProgrammingError):
        store.save("a", FeedState(), RECORD)
    with pytest.raises(sqlite3.ProgrammingError):
        store.history("a")


def test_a_value_sqlite_cannot_store_is_a_programming_error(store: SqliteStore) -> None:
    """A Published whose ETag is not text (a caller's bug) is not a 'storage failed'; the
    transaction is rolled back and the store goes on working."""
    bad = Published.of(b"body", object(), 1.0, 1)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.ProgrammingError, match="binding parameter"):
        store.save("a", FeedState(failures=7), RECORD, bad)
    assert store.load("a").state.failures == 0
    store.save("a", FeedState(failures=1), RECORD)
    assert store.load("a").state.failures == 1


def test_a_bad_query_is_not_a_store_error(db: Path, store: SqliteStore) -> None:
    """A query that does not fit the tables ('no such column': the SQL is wrong, or the file
    has someone else's tables) is an ``OperationalError`` of the generic kind: a bug, not
    an outage."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("ALTER TABLE polls RENAME COLUMN record TO what")
    other.close()
    with pytest.raises(sqlite3.OperationalError, match="no such column") as caught:
        store.history("a")
    assert not isinstance(caught.value, StoreError)
