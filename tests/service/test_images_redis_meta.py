"""The image cache's index in Redis when Redis stops answering: the event loop waits at most
one timeout in every ``REST`` seconds, not one per image request.

A silent Redis is a real loopback socket that accepts connections and never says a word (a
host whose packets are dropped looks the same to a client); the recovery is a real
redis-server. The clock the index rests by is the test's.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedfix.service.images import redis_meta
from feedfix.service.images.meta import CacheEntry, MetaError, MetaResting
from redis_helpers import RedisServer, redis_executable, unique_prefix


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


@pytest.fixture(name="silent_url")
def silent_redis() -> Iterator[str]:
    """A ``redis://`` URL whose server accepts and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()
    for conn in held:
        conn.close()


def test_a_silent_redis_costs_one_timeout_then_the_index_rests(silent_url: str) -> None:
    """The first call waits for the timeout and fails; the next twenty fail at once (resting,
    said once); once ``REST`` has passed, the index is asked again (another timeout)."""
    clock = Clock()
    meta = redis_meta.RedisMeta(redis_meta.client(silent_url), "p:", clock=clock)
    started = time.monotonic()
    with pytest.raises(MetaError) as first:
        meta.get("k")
    assert not isinstance(first.value, MetaResting)
    assert time.monotonic() - started >= redis_meta.META_TIMEOUT * 0.9
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(MetaResting):
            meta.get("k")
    assert meta.stats().entries == 0  # the last known totals, at once
    assert time.monotonic() - started < redis_meta.META_TIMEOUT  # not 20 timeouts
    clock.at += redis_meta.REST
    started = time.monotonic()
    with pytest.raises(MetaError) as again:
        meta.get("k")
    assert not isinstance(again.value, MetaResting)
    assert time.monotonic() - started >= redis_meta.META_TIMEOUT * 0.9


def test_the_index_answers_again_once_it_has_rested(tmp_path: Path) -> None:
    """Redis down: a failure, then rest; Redis back: after ``REST`` the index reads and
    writes again (no restart of feedfix). A redis-server of its own: it is killed."""
    server = RedisServer(redis_executable(), tmp_path).start()
    try:
        clock = Clock()
        meta = redis_meta.RedisMeta(redis_meta.client(server.url), unique_prefix(), clock=clock)
        entry = CacheEntry("k", "image/png", 10, '"e"', "https://o.example/a.png", 1.0, 1.0)
        meta.put(entry)
        server.kill()
        with pytest.raises(MetaError):
            meta.get("k")
        with pytest.raises(MetaResting):
            meta.get("k")
        server.start()
        with pytest.raises(MetaResting):  # back, but the index has not rested yet
            meta.get("k")
        clock.at += redis_meta.REST
        meta.put(entry)  # the restarted server is empty
        assert meta.get("k") == entry
    finally:
        server.stop()
