"""What the poller gives the web pages, in one process with a MockTransport: "poll now",
the last sources of each entry (for the inspector) and per-feed activity (304 share, rule
changes last poll and since start)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import upstream as up
from feedfix.config import Config, FeedConfig, PollConfig
from feedfix.service.catalog import Catalog
from feedfix.service.metrics import Metrics
from feedfix.service.poll.poller import Poller
from feedfix.service.poll.transport import Hop, MockResponse, MockTransport
from feedfix.service.poll.worker import Worker
from feedfix.service.store.memory import MemoryStore

URL = "https://rsshub.example/zaker/channel/99"


class Script:
    """The upstream: this body with a strong ETag, a 304 to a matching If-None-Match."""

    def __init__(self) -> None:
        self.body = up.zaker_rss(range(1, 11))
        self.validators = True

    async def __call__(self, hop: Hop) -> MockResponse:
        """Answer one hop."""
        etag = up.strong_etag(self.body)
        if not self.validators:
            return MockResponse(200, {"Content-Type": up.RSS_TYPE}, self.body)
        if hop.headers.get("If-None-Match") == etag:
            return MockResponse(304, {"ETag": etag})
        return MockResponse(200, {"Content-Type": up.RSS_TYPE, "ETag": etag}, self.body)


@asynccontextmanager
async def _poller(
    store: MemoryStore | None = None,
) -> AsyncIterator[tuple[Poller, Script, MemoryStore, Catalog]]:
    script, catalog, worker = Script(), Catalog(), Worker()
    store = store or MemoryStore()
    config = Config(poll=PollConfig(jitter=0.0),
                    feeds=(FeedConfig(name="z", url=URL, interval=600.0),))  # fmt: skip
    poller = Poller(config, store, catalog, Metrics(), worker, transport=MockTransport(script))
    await poller.load()
    try:
        yield poller, script, store, catalog
    finally:
        await poller.stop()
        worker.close()


async def _wait(condition: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_poll_now_wakes_the_feed_at_once() -> None:
    """With a ten-minute interval, each poll_now brings a poll within moments; an unknown
    name is refused."""

    async def test() -> None:
        async with _poller() as (poller, _, store, _catalog):
            await poller.start()
            assert poller.poll_now("nope") is False
            assert poller.poll_now("z") is True
            await _wait(lambda: len(store.history("z")) == 1, "the first poll")
            await asyncio.sleep(0.1)
            assert poller.poll_now("z") is True
            await _wait(lambda: len(store.history("z")) == 2, "the poll asked for")
            assert [r.status for r in store.history("z")] == ["not_modified", "ok"]

    asyncio.run(test())


def test_sources_and_activity_follow_the_polls() -> None:
    """A 200 stores the window as received (wrapped images and all) and the rules' counts;
    a 304 keeps both; new items replace the sources and add to the totals."""

    async def test() -> None:
        async with _poller() as (poller, script, store, catalog):
            runtime = poller.feeds["z"]
            await poller.poll(runtime)
            sources = store.sources("z")
            assert len(sources) == 10 and "cors.zfour.workers.dev" in (sources[0].content or "")
            activity = catalog.activity["z"]
            assert activity.rule_changes_last["unwrap-proxies"] == 20  # two images, ten items
            await poller.poll(runtime)
            assert store.sources("z") == sources
            assert activity.outcomes == {"ok": 1, "not_modified": 1}
            assert activity.not_modified_share == 0.5
            script.body = up.zaker_rss(range(3, 13))
            await poller.poll(runtime)
            assert [e.title for e in store.sources("z")] == up.titles(range(3, 13))
            assert activity.rule_changes_last["unwrap-proxies"] == 4  # the two new items only
            assert activity.rule_changes_total["unwrap-proxies"] == 24

    asyncio.run(test())


def test_a_store_without_sources_gets_them_from_the_next_200() -> None:
    """After an upgrade the archive is there but no sources: the next 200 sends the window's
    sources even though no entry needs cleaning again."""

    async def test() -> None:
        store = MemoryStore()
        async with _poller(store) as (poller, script, _, _catalog):
            script.validators = False
            await poller.poll(poller.feeds["z"])
        store.save_sources("z", [])  # as a store written before sources were kept
        async with _poller(store) as (poller, script, _, catalog):
            script.validators = False
            await poller.poll(poller.feeds["z"])
            assert catalog.activity["z"].rule_changes_last == {}  # nothing cleaned again
            assert len(store.sources("z")) == 10

    asyncio.run(test())
