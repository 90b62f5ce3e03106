"""The poller in one process, without sockets: a MockTransport plays the upstream, the real
cleaning worker (a thread), the memory store, the catalog and the metrics do the rest.

Each test drives ``Poller.poll`` itself, with a clock it moves by hand, so conditional GETs,
304s, backoff, stale marking and storage failures are checked exactly and quickly. The
subprocess suites (test_service.py, test_faults.py) check the same behaviour end to end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

import upstream as up
from feedfix.config import Config, FeedConfig, PollConfig
from feedfix.service.catalog import Catalog
from feedfix.service.logs import LOGGER
from feedfix.service.metrics import Metrics
from feedfix.service.poll.fetch_types import ConnectFailed
from feedfix.service.poll.poller import Poller
from feedfix.service.poll.transport import Hop, MockResponse, MockTransport
from feedfix.service.poll.worker import Worker
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published
from feedfix.service.store import StoreError
from feedfix.service.store.memory import MemoryStore

URL = "http://127.0.0.1:9/feed"  # never connected to: the transport answers
INTERVAL = 600.0
GOOD = up.zaker_rss(range(1, 11))
NEWER = up.zaker_rss(range(3, 13))


@dataclass
class Upstream:
    """What the mock upstream answers now: a body with a strong ETag (and a 304 to a
    matching If-None-Match), an error status, or a FetchError to raise."""

    body: bytes = GOOD
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raises: Exception | None = None
    delay: float = 0.0

    async def __call__(self, hop: Hop) -> MockResponse:
        """Answer one hop."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raises is not None:
            raise self.raises
        if self.status != 200:
            return MockResponse(self.status, {"Content-Type": "text/plain", **self.headers})
        etag = up.strong_etag(self.body)
        if hop.headers.get("If-None-Match") == etag:
            return MockResponse(304, {"ETag": etag})
        headers = {
            "Content-Type": up.RSS_TYPE,
            "ETag": etag,
            "Last-Modified": up.UPSTREAM_LAST_MODIFIED,
            **self.headers,
        }
        return MockResponse(200, headers, self.body)


class Clock:
    """Wall-clock time that moves only when told (it starts now: the fixture items are
    dated relative to the real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        """The time."""
        return self.now


@dataclass
class Rig:
    """A poller wired to a scripted upstream, a store, a catalog and metrics."""

    poller: Poller
    upstream: Upstream
    transport: MockTransport
    store: MemoryStore
    catalog: Catalog
    metrics: Metrics
    clock: Clock

    async def poll(self) -> float:
        """One poll of the feed; the clock then moves to when the next one is due."""
        delay = await self.poller.poll(self.poller.feeds["z"])
        self.clock.now += delay
        return delay

    def served(self) -> bytes:
        """The bytes served now."""
        return self.catalog.served["z"].published.identity()

    def stored(self) -> bytes | None:
        """The output bytes in the store, if any."""
        published = self.store.load("z").published
        return published.identity() if published is not None else None

    def sample(self, name: str, **labels: str) -> float:
        """A metric's value (0 when never counted)."""
        value = self.metrics.registry.get_sample_value(name, {"feed": "z", **labels})
        return value or 0.0


def _config(**feed: Any) -> Config:
    settings = {"interval": INTERVAL, "timeout": 5.0, **feed}
    return Config(poll=PollConfig(jitter=0.1), feeds=(FeedConfig(name="z", url=URL, **settings),))


@asynccontextmanager
async def _rig(store: MemoryStore | None = None, **feed: Any) -> AsyncIterator[Rig]:
    clock, script, worker = Clock(), Upstream(), Worker()
    transport, store = MockTransport(script), store or MemoryStore()
    catalog, metrics = Catalog(), Metrics()
    poller = Poller(
        _config(**feed),
        store,
        catalog,
        metrics,
        worker,
        clock=clock,
        draw=lambda: 0.5,  # no jitter: delays are exact
        transport=transport,
    )
    await poller.load()
    try:
        yield Rig(poller, script, transport, store, catalog, metrics, clock)
    finally:
        await poller.stop()
        worker.close()


def _run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


@contextmanager
def _events() -> Iterator[list[logging.LogRecord]]:
    """The feedfix log records emitted inside the block."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, level = Keep(), LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)


def _named(records: list[logging.LogRecord], event: str) -> list[logging.LogRecord]:
    return [r for r in records if r.getMessage() == event]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = getattr(record, "fields", {})
    return fields


def test_a_304_keeps_the_output_without_cleaning_again() -> None:
    """The first poll serves and stores the cleaned feed; the next sends its validators,
    gets a 304, and serves the very same reply; the history and metrics say so."""

    async def test() -> None:
        async with _rig() as rig:
            assert await rig.poll() == INTERVAL
            first = rig.catalog.served["z"]
            assert b"cors.zfour.workers.dev" not in first.published.identity()
            assert rig.store.load("z").published == first.published
            assert await rig.poll() == INTERVAL
            hops = rig.transport.hops
            assert "If-None-Match" not in hops[0].headers
            assert hops[1].headers["If-None-Match"] == up.strong_etag(GOOD)
            assert hops[1].headers["If-Modified-Since"] == up.UPSTREAM_LAST_MODIFIED
            assert rig.catalog.served["z"] is first  # not even rebuilt
            assert [r.status for r in rig.store.history("z")] == ["not_modified", "ok"]
            assert rig.sample("feedfix_polls_total", outcome="ok") == 1
            assert rig.sample("feedfix_polls_total", outcome="not_modified") == 1
            assert rig.sample("feedfix_upstream_bytes_total") == len(GOOD)

    _run(test)


def test_new_upstream_bytes_replace_the_output() -> None:
    """A changed upstream window makes new output, served and stored at once."""

    async def test() -> None:
        async with _rig() as rig:
            await rig.poll()
            before = rig.served()
            rig.upstream.body = NEWER
            await rig.poll()
            assert rig.served() != before
            assert up.titles([12])[0].encode() in rig.served()
            assert rig.stored() == rig.served()
            assert rig.store.history("z")[0].changed is True

    _run(test)


def test_errors_back_off_mark_stale_and_recover() -> None:
    """Failures: the same bytes served, stale since the first failure, delays doubling,
    errors counted by kind; the next good poll clears the stale mark."""

    async def test() -> None:
        async with _rig() as rig:
            await rig.poll()
            good = rig.served()
            broke = rig.clock.now
            rig.upstream.status, rig.upstream.headers = 503, {}
            with _events() as records:
                delays = [await rig.poll() for _ in range(3)]
            assert delays == [INTERVAL, 2 * INTERVAL, 4 * INTERVAL]
            assert rig.served() == good
            assert rig.catalog.served["z"].stale_since == broke
            assert rig.catalog.status["z"].state.stale_since == broke
            assert rig.sample("feedfix_poll_errors_total", kind="http") == 3
            assert rig.metrics.registry.get_sample_value("feedfix_stale_feeds") == 1
            polls = _named(records, "poll")
            assert [r.levelno for r in polls] == [logging.WARNING] * 3
            assert [_fields(r)["http"] for r in polls] == [503] * 3
            rig.upstream.status = 200
            await rig.poll()
            assert rig.catalog.status["z"].state.stale_since is None
            assert rig.catalog.served["z"].stale_since is None
            assert rig.store.load("z").state.failures == 0

    _run(test)


def test_retry_after_is_waited_for() -> None:
    """A 429's Retry-After sets the next poll, past the plain backoff."""

    async def test() -> None:
        async with _rig() as rig:
            await rig.poll()
            rig.upstream.status, rig.upstream.headers = 429, {"Retry-After": "1800"}
            assert await rig.poll() == 1800.0
            assert rig.store.history("z")[0].http_status == 429

    _run(test)


@pytest.mark.parametrize(
    ("script", "kind", "message"),
    [
        ({"body": up.RSSHUB_ERROR_PAGE}, "bad-feed", "HTML"),
        ({"body": GOOD[: len(GOOD) // 2]}, "bad-feed", "well-formed"),
        ({"body": b"x" * 300_000}, "too-large", "cap"),
        (
            {"raises": ConnectFailed(f"{URL}: cannot connect: Connection refused")},
            "connect",
            "refused",
        ),
        ({"delay": 1.0}, "timeout", "within 0.3 s"),
    ],
    ids=["html-page-200", "truncated-xml", "over-the-cap", "refused", "timeout"],
)
def test_nothing_bad_replaces_good_output(script: dict[str, Any], kind: str, message: str) -> None:
    """Whatever goes wrong, the last good output stays served and stored, and the failure
    is counted under its kind and named in the history."""

    async def test() -> None:
        async with _rig(max_size=200_000, timeout=0.3) as rig:
            await rig.poll()
            good = rig.store.load("z").published
            assert good is not None
            for key, value in script.items():
                setattr(rig.upstream, key, value)
            await rig.poll()
            assert rig.served() == good.identity()
            assert rig.store.load("z").published == good
            record = rig.store.history("z")[0]
            assert record.status == "error"
            assert message in (record.error or ""), record.error
            assert rig.sample("feedfix_poll_errors_total", kind=kind) == 1

    _run(test)


class FailingStore(MemoryStore):
    """A memory store whose writes fail with ``failure`` while it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: Exception | None = None

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
        *,
        fence: str | None = None,
    ) -> None:
        """Fail, or store."""
        if self.failure is not None:
            raise self.failure
        super().save(name, state, record, published, archive, fence=fence)


def test_an_unstored_output_is_stored_with_the_next_poll() -> None:
    """A write that fails (StoreError) leaves the new output served, logged as "storage
    failed" without a traceback; the next poll, a full GET, stores it."""

    async def test() -> None:
        store = FailingStore()
        async with _rig(store) as rig:
            store.failure = StoreError("database is locked")
            with _events() as records:
                await rig.poll()
            served = rig.served()
            assert rig.stored() is None
            assert rig.catalog.status["z"].state.last_error == "storage: database is locked"
            (failed,) = _named(records, "storage failed")
            assert "traceback" not in _fields(failed)
            assert not _named(records, "storage crashed")
            store.failure = None
            await rig.poll()
            assert "If-None-Match" not in rig.transport.hops[-1].headers  # validators forgotten
            assert rig.stored() == served

    _run(test)


def test_a_store_bug_is_logged_with_its_traceback() -> None:
    """An exception from the store that is not a StoreError is a bug: logged as "storage
    crashed" with the whole traceback, and the output is still served and stored later."""

    async def test() -> None:
        store = FailingStore()
        async with _rig(store) as rig:
            store.failure = TypeError("save() got an unexpected keyword argument")
            with _events() as records:
                await rig.poll()
            (crashed,) = _named(records, "storage crashed")
            trace = _fields(crashed)["traceback"]
            assert "Traceback (most recent call last)" in trace
            assert "in save" in trace and "TypeError" in trace
            assert not _named(records, "storage failed")
            assert b"<feed" in rig.served()
            store.failure = None
            await rig.poll()
            assert rig.stored() == rig.served()

    _run(test)


def test_a_crashing_poll_is_logged_with_its_traceback_and_the_schedule_goes_on() -> None:
    """An unexpected exception inside a poll (here from the transport) does not end the
    feed's task: "poll crashed" carries the traceback, and the feed is polled again."""

    async def test() -> None:
        async with _rig(interval=1.0) as rig:
            rig.upstream.raises = RuntimeError("a bug in the transport")
            with _events() as records:
                await rig.poller.start()
                for _ in range(400):
                    if len(_named(records, "poll crashed")) >= 2:
                        break
                    await asyncio.sleep(0.01)
            crashes = _named(records, "poll crashed")
            assert len(crashes) >= 2, "the schedule stopped after a crash"
            trace = _fields(crashes[0])["traceback"]
            assert "RuntimeError: a bug in the transport" in trace
            assert "in __call__" in trace  # the frame that raised, not only repr(exc)

    _run(test)


class ForgetfulStore(MemoryStore):
    """A memory store that can lose everything, as Redis restarted without persistence."""

    def forget_everything(self) -> None:
        """Every feed's state and copy gone."""
        self._feeds.clear()


def test_a_copy_the_store_lost_and_a_poll_put_back_is_counted_as_restored() -> None:
    """Redis came back empty and a replica's next poll (a 304) wrote its held copy before the
    replicas' check of the store could restore it: that copy is back all the same, and
    ``feedfix_restored_copies_total`` counts it once (it stayed 0 when the poll won)."""

    def restored(rig: Rig) -> float:
        return rig.metrics.registry.get_sample_value("feedfix_restored_copies_total") or 0.0

    async def test() -> None:
        store = ForgetfulStore()
        async with _rig(store) as rig:
            await rig.poll()
            served = rig.served()
            store.forget_everything()
            await rig.poller.adopt("z")  # what a replica does before it polls
            assert rig.served() == served and rig.stored() is None
            with _events() as records:
                await rig.poll()
            assert rig.transport.hops[-1].headers.get("If-None-Match")  # a 304 poll
            assert rig.stored() == served
            assert restored(rig) == 1
            (line,) = _named(records, "restored into an empty store")
            assert _fields(line)["by"] == "poll"
            await rig.poll()
            assert restored(rig) == 1  # counted once, not at every later write

    _run(test)
