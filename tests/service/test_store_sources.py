"""The last sources of each feed's entries (for the inspector), in both store backends:
replaced per poll, kept in order, bounded, read no further than asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from feedfix.core.model import Entry
from feedfix.service.store import SOURCE_MAX_CHARS, SOURCES_KEPT, Store
from feedfix.service.store.memory import MemoryStore
from feedfix.service.store.redis import RedisStore
from feedfix.service.store.sqlite import SqliteStore
from redis_helpers import unique_prefix


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each backend (Redis: the session's real server, a prefix of the test's own)."""
    backend: Store
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        backend = RedisStore(server.url, prefix=unique_prefix())
    elif request.param == "memory":
        backend = MemoryStore()
    else:
        backend = SqliteStore(str(tmp_path / "s.db"))
    yield backend
    backend.close()


def _entries(count: int, size: int = 10) -> list[Entry]:
    return [Entry(id=f"urn:e{i}", title=f"t{i}", content="x" * size) for i in range(count)]


def test_sources_are_replaced_and_kept_in_order(store: Store) -> None:
    """A save replaces the feed's sources; another feed's stay; a limit reads fewer."""
    store.save_sources("a", _entries(3))
    store.save_sources("b", _entries(1))
    store.save_sources("a", _entries(2))
    assert [e.id for e in store.sources("a")] == ["urn:e0", "urn:e1"]
    assert [e.id for e in store.sources("a", 1)] == ["urn:e0"]
    assert len(store.sources("b")) == 1 and store.sources("c") == []
    assert store.sources("a")[0] == _entries(1)[0]


def test_sources_are_bounded(store: Store) -> None:
    """At most SOURCES_KEPT entries, none over SOURCE_MAX_CHARS of HTML."""
    huge = Entry(id="urn:huge", content="y" * (SOURCE_MAX_CHARS + 1))
    store.save_sources("a", [huge, *_entries(SOURCES_KEPT + 5)])
    kept = store.sources("a", SOURCES_KEPT * 2)
    assert len(kept) == SOURCES_KEPT and all(e.id != "urn:huge" for e in kept)


def test_sources_survive_a_reopen(tmp_path: Path) -> None:
    """SQLite keeps them across a restart."""
    path = str(tmp_path / "s.db")
    first = SqliteStore(path)
    first.save_sources("a", _entries(2))
    first.close()
    assert len(SqliteStore(path).sources("a")) == 2
