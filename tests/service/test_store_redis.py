"""What the Redis store adds to the shared store suite: fencing, compression, repair, outages.

Against the session's real redis-server, each test under a key prefix of its own.
"""

from __future__ import annotations

import asyncio

import pytest

from feedfix.service.replicas.leases import RedisCoordinator
from feedfix.service.state import FeedState, PollRecord, Published
from feedfix.service.store import Fenced, StoreError, redacted
from feedfix.service.store.redis import RedisStore
from redis_helpers import RedisServer, unique_prefix

BODY = b"<feed>" + b"<entry>same words again and again</entry>" * 2000 + b"</feed>"
PUBLISHED = Published.of(BODY, '"e1"', 1_700_000_000.0, 2000)
RECORD = PollRecord(started=1.0, status="ok", duration=0.1)


def test_a_write_under_a_superseded_lease_is_refused(redis_server: RedisServer) -> None:
    """Once another replica takes the feed's lease, the first one's token is refused and
    the newer write stands."""
    prefix = unique_prefix()
    store = RedisStore(redis_server.url, prefix)

    async def leases() -> tuple[str | None, str | None]:
        first = RedisCoordinator(redis_server.url, prefix, lease=0.2)
        second = RedisCoordinator(redis_server.url, prefix, lease=5)
        old, _ = await first.acquire("z")
        await asyncio.sleep(0.4)  # the first lease runs out
        new, _ = await second.acquire("z")
        await first.close()
        await second.close()
        assert old is not None and new is not None
        return old.token, new.token

    old, new = asyncio.run(leases())
    store.save("z", FeedState(upstream_etag='"new"'), RECORD, PUBLISHED, fence=new)
    with pytest.raises(Fenced):
        store.save("z", FeedState(upstream_etag='"old"'), RECORD, None, fence=old)
    assert store.load("z").state.upstream_etag == '"new"'


def test_a_lease_is_held_by_one_replica_at_a_time(redis_server: RedisServer) -> None:
    """A second replica gets no lease while the first holds it, and is told how long to wait."""
    prefix = unique_prefix()

    async def run() -> None:
        one = RedisCoordinator(redis_server.url, prefix, lease=5)
        two = RedisCoordinator(redis_server.url, prefix, lease=5)
        lease, _ = await one.acquire("z")
        assert lease is not None
        refused, wait = await two.acquire("z")
        assert refused is None and 0 < wait <= 5
        await one.release(lease)
        granted, _ = await two.acquire("z")
        assert granted is not None
        await one.close()
        await two.close()

    asyncio.run(run())


def test_output_is_stored_as_its_gzip_only(redis_server: RedisServer) -> None:
    """A big output costs Redis its gzip, not its body, and loads back byte for byte."""
    store = RedisStore(redis_server.url, unique_prefix())
    store.save("z", FeedState(), RECORD, PUBLISHED)
    stored: dict[bytes, bytes] = redis_server.client().hgetall(store.key("z", "pub"))  # type: ignore[assignment]
    assert b"body" not in stored and len(stored[b"gzip"]) < len(BODY) / 10
    assert store.load("z").published == PUBLISHED


def test_restore_fills_only_an_empty_store(redis_server: RedisServer) -> None:
    """A served copy goes back only where the store has none: never over a newer write."""
    store = RedisStore(redis_server.url, unique_prefix())
    assert store.restore("z", FeedState(upstream_etag='"mine"'), PUBLISHED)
    newer = Published.of(b"x", '"e2"', 2.0, 1)
    store.save("z", FeedState(), RECORD, newer)
    assert not store.restore("z", FeedState(), PUBLISHED)
    assert store.load("z").published == newer


def test_an_unreachable_redis_is_a_store_error_without_the_password() -> None:
    """Nothing listening: a StoreError naming the URL, its password left out."""
    store = RedisStore("redis://:s3cret@127.0.0.1:1/0")
    with pytest.raises(StoreError) as caught:
        store.load("z")
    assert "127.0.0.1:1" in str(caught.value) and "s3cret" not in str(caught.value)
    assert redacted("rediss://user:pw@h:6380/2") == "rediss://user:***@h:6380/2"
