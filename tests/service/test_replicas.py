"""Several `feedfix serve` replicas on one real Redis and one scripted upstream.

Each replica is a real subprocess started as a user starts it, its storage set from the
environment (``FEEDFIX_STORAGE__BACKEND=redis``, ``FEEDFIX_STORAGE__URL``…) with a short
lease and sync period so that the suite runs in seconds. Each replica sends its own
User-Agent, so the upstream's request log says which replica polled. Checked:

- over many intervals each feed's upstream requests are those of one replica (within one poll);
- every replica serves the same bytes and ETag, and honours another's ETag with a 304;
- kill -9 of the replica polling a feed: another takes over within lease + interval, and
  a change reaches every remaining replica;
- a replica frozen (SIGSTOP) in the middle of a slow poll loses its lease; its late result
  is refused by the fence, and no replica serves it;
- Redis killed and restarted empty: 200s throughout, the store reported down, and the
  replicas put their copies back;
- a failing upstream: both replicas serve the last good copy, stale, then the recovery
  (the fault campaign's other scenarios run on Redis in ``test_faults.py``).

The upstream faults on Redis are test_faults.py's campaign, parametrised over the backend.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import upstream as up
from redis_helpers import RedisServer, redis_executable, unique_prefix
from service_helpers import TEST_POLL, Service, wait_for
from upstream import titles

INTERVAL = 1.0
LEASE = 1.5
FEEDS = ("alpha", "beta")


def _agent(index: int) -> str:
    return f"feedfix-replica-{index}"


def start_replicas(
    tmp: Path, upstream: up.Upstream, url: str, count: int = 3, **poll: Any
) -> list[Service]:
    """``count`` replicas on Redis at ``url`` (a fresh prefix), each with its User-Agent."""
    prefix = unique_prefix()
    feeds = [{"name": n, "url": upstream.url(f"/{n}")} for n in FEEDS]
    env = {
        "FEEDFIX_STORAGE__BACKEND": "redis",
        "FEEDFIX_STORAGE__URL": url,
        "FEEDFIX_STORAGE__PREFIX": prefix,
        "FEEDFIX_STORAGE__LEASE": f"{LEASE:g}s",
        "FEEDFIX_STORAGE__SYNC_EVERY": "2s",
    }
    replicas = []
    for index in range(count):
        settings = {**TEST_POLL, "interval": INTERVAL, "user_agent": _agent(index), **poll}
        replicas.append(Service(tmp / f"r{index}", feeds, poll=settings, env=env).start())
    return replicas


@contextlib.contextmanager
def running(replicas: list[Service]) -> Iterator[list[Service]]:
    """Stop every replica still running at the end (asserting a clean exit)."""
    try:
        yield replicas
    finally:
        for replica in replicas:
            if replica.running:
                replica.stop()
            replica.close()


def poller_of(upstream: up.Upstream, path: str, since: int = 0) -> int:
    """Which replica sent the latest request for ``path`` (after the first ``since``)."""
    requests = upstream.requests_for(path)[since:]
    assert requests, f"no request for {path}"
    agent = requests[-1].header("User-Agent") or ""
    return int(agent.rsplit("-", 1)[1])


def serves(replica: Service, name: str, numbers: range) -> bool:
    """The replica serves exactly items ``numbers`` of feed ``name``."""
    answer = replica.feed(name)
    return answer.status == 200 and up.titles(numbers)[0] in answer.text()


def store_up(replica: Service) -> bool:
    """/healthz says the shared store answers."""
    return bool(replica.health()["store"]["ok"])


def store_down(replica: Service) -> bool:
    """/healthz says the shared store does not answer."""
    return not store_up(replica)


def metric(replica: Service, sample: str) -> float:
    """One sample of the replica's /metrics (0 when absent), e.g. ``feedfix_store_up``."""
    for line in replica.get("/metrics").text().splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


@pytest.fixture
def upstream() -> Iterator[up.Upstream]:
    """The scripted upstream, every feed at items 1-3."""
    with up.Upstream() as server:
        for name in FEEDS:
            server.script(f"/{name}", up.feed(up.zaker_rss(range(1, 4))))
        yield server


def test_each_feed_is_polled_once_per_interval_and_served_alike(
    tmp_path: Path, upstream: up.Upstream, redis_server: RedisServer
) -> None:
    """Three replicas send the upstream what one would (within one poll), and serve the same
    bytes and ETag: a reader's conditional GET gets a 304 whichever replica answers."""
    with running(start_replicas(tmp_path, upstream, redis_server.url)) as replicas:
        for replica in replicas:
            wait_for(partial(serves, replica, "alpha", range(1, 4)), 15, "every replica")
        counted = {n: len(upstream.requests_for(f"/{n}")) for n in FEEDS}
        started = time.monotonic()
        time.sleep(8 * INTERVAL)
        elapsed = time.monotonic() - started
        for name in FEEDS:
            polls = len(upstream.requests_for(f"/{name}")) - counted[name]
            one_replica = elapsed / INTERVAL
            # never three replicas' worth; at least half of one's on a busy machine (a poll's
            # time comes on top of the interval)
            assert one_replica / 2 <= polls <= one_replica + 1, (name, polls, one_replica)
        answers = [r.feed("alpha") for r in replicas]
        assert len({a.body for a in answers}) == 1, "replicas serve different bytes"
        etags = {a.header("ETag") for a in answers}
        assert len(etags) == 1, etags
        etag = etags.pop()
        assert etag is not None
        for replica in replicas:
            assert replica.feed("alpha", {"If-None-Match": etag}).status == 304
        assert all(r.health()["store"]["ok"] for r in replicas)


def test_kill_9_of_the_polling_replica_fails_over(
    tmp_path: Path, upstream: up.Upstream, redis_server: RedisServer
) -> None:
    """kill -9 of the replica in the middle of a poll: another polls within lease + one
    interval, and the upstream's change reaches every remaining replica."""
    with running(start_replicas(tmp_path, upstream, redis_server.url)) as replicas:
        for replica in replicas:
            wait_for(partial(serves, replica, "alpha", range(1, 4)), 15, "every replica")
        upstream.script("/alpha", up.slow(up.feed(up.zaker_rss(range(1, 5))), 30))
        seen = len(upstream.requests_for("/alpha"))
        upstream.wait_for_requests("/alpha", seen + 1, timeout=10, answered=False)
        holder = poller_of(upstream, "/alpha", seen)
        replicas[holder].kill()
        killed = time.monotonic()
        upstream.script("/alpha", up.feed(up.zaker_rss(range(1, 5))))
        after = len(upstream.requests_for("/alpha"))
        upstream.wait_for_requests("/alpha", after + 1, timeout=LEASE + INTERVAL + 3,
                                   answered=False)  # fmt: skip
        took_over = upstream.requests_for("/alpha")[after].at - killed
        assert took_over <= LEASE + INTERVAL + 1.0, took_over
        assert poller_of(upstream, "/alpha", after) != holder
        for index, replica in enumerate(replicas):
            if index != holder:
                wait_for(partial(serves, replica, "alpha", range(1, 5)), 10, "the change")
        alive = [r for i, r in enumerate(replicas) if i != holder]
        taker = replicas[poller_of(upstream, "/alpha", after)]
        assert metric(taker, 'feedfix_leases_total{outcome="taken"}') > 0  # it counted it
        assert sum(metric(r, 'feedfix_leases_total{outcome="busy"}') for r in alive) > 0
        assert sum(metric(r, "feedfix_adopted_copies_total") for r in alive) > 0


def test_a_late_publish_is_refused_by_the_fence(
    tmp_path: Path, upstream: up.Upstream, redis_server: RedisServer
) -> None:
    """A replica frozen during a slow poll loses its lease; another publishes the newer
    feed; the frozen one, thawed, gets its old answer and its write is refused: every
    replica keeps serving the newer feed."""
    poll = {"timeout": "20s"}
    with running(start_replicas(tmp_path, upstream, redis_server.url, count=2, **poll)) as rs:
        for replica in rs:
            wait_for(partial(serves, replica, "alpha", range(1, 4)), 15, "every replica")
        upstream.script("/alpha", up.slow(up.feed(up.zaker_rss(range(1, 5))), 6))  # older
        seen = len(upstream.requests_for("/alpha"))
        upstream.wait_for_requests("/alpha", seen + 1, timeout=10, answered=False)
        holder = poller_of(upstream, "/alpha", seen)
        frozen, other = rs[holder], rs[1 - holder]
        frozen.signal(signal.SIGSTOP)
        try:
            upstream.script("/alpha", up.feed(up.zaker_rss(range(1, 6))))  # newer
            wait_for(lambda: serves(other, "alpha", range(1, 6)), 10, "the newer feed")
        finally:
            frozen.signal(signal.SIGCONT)
        wait_for(lambda: frozen.events("publish refused"), 15, "the fence to refuse")
        assert metric(frozen, "feedfix_fenced_publishes_total") >= 1
        assert metric(other, "feedfix_fenced_publishes_total") == 0
        for replica in rs:
            wait_for(partial(serves, replica, "alpha", range(1, 6)), 10, "the newer feed")
        time.sleep(2 * INTERVAL)
        for replica in rs:
            assert serves(replica, "alpha", range(1, 6)), "an older result replaced a newer"
        late = [p for p in frozen.polls("alpha") if p.get("changed") and p["entries"] == 4]
        assert not late, f"the late result was published: {late}"


def test_redis_restarted_empty_is_repopulated_without_an_empty_feed(
    tmp_path: Path, upstream: up.Upstream
) -> None:
    """Redis killed, then back with nothing: every replica answers 200 with its copy all
    along, says the store is down, then puts its copies back into Redis."""
    folder = tmp_path / "redis"
    folder.mkdir()
    redis = RedisServer(redis_executable(), folder).start()
    try:
        with running(start_replicas(tmp_path, upstream, redis.url, count=2)) as replicas:
            for replica in replicas:
                wait_for(partial(serves, replica, "alpha", range(1, 4)), 15, "every replica")
            served = replicas[0].feed("alpha").body
            redis.kill()
            for replica in replicas:
                wait_for(partial(store_down, replica), 20, "store down")
                assert metric(replica, "feedfix_store_up") == 0
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                for replica in replicas:
                    answer = replica.feed("alpha")
                    assert answer.status == 200 and answer.body == served
                    assert answer.header("X-Feedfix-Stale")
            assert replicas[0].health_row("alpha")["stale"]
            index = replicas[0].get("/").text()
            assert "Shared store unreachable" in index and "start Redis again" in index
            redis.start()
            client = redis.client()
            for replica in replicas:
                wait_for(partial(store_up, replica), 20, "store back")
            prefix = replicas[0].env["FEEDFIX_STORAGE__PREFIX"]
            wait_for(lambda: client.hlen(f"{prefix}versions") == len(FEEDS), 20, "repopulated")
            assert client.exists(f"{prefix}feed:alpha:pub")
            assert all(metric(r, "feedfix_store_up") == 1 for r in replicas)
            assert sum(metric(r, "feedfix_restored_copies_total") for r in replicas) >= 1
            for replica in replicas:
                answer = replica.feed("alpha")
                assert answer.status == 200 and answer.body == served
            upstream.script("/alpha", up.feed(up.zaker_rss(range(1, 5))))
            for replica in replicas:
                wait_for(partial(serves, replica, "alpha", range(1, 5)), 20, "polling again")
            assert titles(range(1, 5))[0] in replicas[1].feed("alpha").text()
    finally:
        redis.stop()


def test_a_failing_upstream_is_served_stale_by_every_replica_then_recovers(
    tmp_path: Path, upstream: up.Upstream, redis_server: RedisServer
) -> None:
    """The fault campaign runs one replica on Redis; here two: whichever polls the failing
    upstream, both serve the last good copy marked stale and report the error, and the
    recovery reaches both."""

    def stale(replica: Service) -> bool:
        return bool(replica.feed("alpha").header("X-Feedfix-Stale"))

    def fresh(replica: Service) -> bool:
        return not stale(replica)

    with running(start_replicas(tmp_path, upstream, redis_server.url, count=2)) as replicas:
        for replica in replicas:
            wait_for(partial(serves, replica, "alpha", range(1, 4)), 15, "every replica")
        good = replicas[0].feed("alpha").body
        upstream.script("/alpha", up.error(503))
        for replica in replicas:
            wait_for(partial(stale, replica), 10, "stale on every replica")
            answer = replica.feed("alpha")
            assert answer.status == 200 and answer.body == good
            row = replica.health_row("alpha")
            assert row["stale"] and not row["ok"] and "503" in (row["last_error"] or "")
        upstream.script("/alpha", up.feed(up.zaker_rss(range(1, 5))))
        for replica in replicas:
            wait_for(partial(serves, replica, "alpha", range(1, 5)), 15, "the recovery")
            wait_for(partial(fresh, replica), 10, "fresh again")


def test_a_replica_starts_while_redis_is_down_and_serves_once_it_is_up(
    tmp_path: Path, upstream: up.Upstream
) -> None:
    """With Redis not answering (connections refused), a replica of many feeds starts, says
    the store is unreachable and answers 503 for a feed it has no copy of; once Redis is up
    it polls and serves."""
    folder = tmp_path / "redis"
    folder.mkdir()
    redis = RedisServer(redis_executable(), folder)  # not started yet
    feeds = [{"name": f"f{i}", "url": upstream.url("/alpha")} for i in range(30)]
    env = {
        "FEEDFIX_STORAGE__BACKEND": "redis",
        "FEEDFIX_STORAGE__URL": redis.url,
        "FEEDFIX_STORAGE__PREFIX": unique_prefix(),
        "FEEDFIX_STORAGE__LEASE": "1.5s",
    }
    replica = Service(tmp_path / "r", feeds, poll={**TEST_POLL, "interval": INTERVAL}, env=env)
    try:
        replica.start(timeout=15)
        wait_for(lambda: not replica.health()["store"]["ok"], 10, "the store reported down")
        assert replica.feed("f0").status == 503
        redis.start()
        wait_for(lambda: serves(replica, "f0", range(1, 4)), 20, "served once Redis is up")
        # a poll may land before the next check of the store (one a second) says it is up
        wait_for(lambda: replica.health()["store"]["ok"], 5, "the store reported up")
        replica.stop()
    finally:
        replica.close()
        redis.stop()
