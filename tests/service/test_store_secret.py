"""``Store.secret``: made once, kept, and the same for every replica that asks at once."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from pathlib import Path

from feedfix.service.store import Store
from feedfix.service.store.memory import MemoryStore
from feedfix.service.store.redis import RedisStore
from feedfix.service.store.sqlite import SqliteStore
from redis_helpers import RedisServer, unique_prefix


def test_sqlite_keeps_the_first_value_across_reopening(tmp_path: Path) -> None:
    """The value made the first time is the one read back later, by a new connection too;
    ``make`` is not asked to matter once a value is kept."""
    path = str(tmp_path / "f.db")
    store = SqliteStore(path)
    assert store.secret("images.key", lambda: "first") == "first"
    assert store.secret("images.key", lambda: "second") == "first"
    store.close()
    again = SqliteStore(path)
    assert again.secret("images.key", lambda: "third") == "first"
    assert again.secret("other", lambda: "own") == "own"  # names are apart
    again.close()


def _race(stores: Sequence[Store]) -> list[str]:
    """Every store asks for ``images.key`` at the same moment, each offering its own value;
    what each got back."""
    counter = itertools.count()
    start = threading.Barrier(len(stores))
    got: list[str] = []

    def ask(store: Store) -> None:
        start.wait()
        got.append(store.secret("images.key", lambda: f"value-{next(counter)}"))

    threads = [threading.Thread(target=ask, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return got


def test_replicas_starting_at_once_agree_on_one_value(tmp_path: Path) -> None:
    """Eight stores on one file (eight replicas), each offering its own value at the same
    moment: every one of them gets the same value back."""
    path = str(tmp_path / "f.db")
    stores = [SqliteStore(path) for _ in range(8)]
    got = _race(stores)
    assert len(got) == 8 and len(set(got)) == 1
    for store in stores:
        store.close()


def test_memory_keeps_it_for_the_process() -> None:
    """The memory store: made once, then the same value."""
    store = MemoryStore()
    assert store.secret("k", lambda: "a") == "a"
    assert store.secret("k", lambda: "b") == "a"


def test_redis_replicas_starting_at_once_agree_on_one_value(redis_server: RedisServer) -> None:
    """Eight Redis stores under one prefix, each offering its own value at once: one value
    for all, and a new connection reads the same later."""
    prefix = unique_prefix()
    stores = [RedisStore(redis_server.url, prefix=prefix) for _ in range(8)]
    got = _race(stores)
    assert len(got) == 8 and len(set(got)) == 1
    later = RedisStore(redis_server.url, prefix=prefix)
    assert later.secret("images.key", lambda: "late") == got[0]
    for store in [*stores, later]:
        store.close()
