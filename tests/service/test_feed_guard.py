"""The feed fetcher under the image proxy's address rule: a poll whose upstream (on
127.0.0.1, allowed because it is the configured URL) redirects to an internal address is
refused, however the address is spelt, and nothing is sent there.

Names resolve through a fake name server (``name_map.NameMap``), so hostile answers cost no
DNS traffic; every connection the process makes is recorded, and only the loopback upstream
may appear. The conftest socket guard would also stop a connection anywhere else, but it
would do so as a "connect" failure: these tests ask for the guard's own refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

import upstream as up
from feedfix.config import Config, FeedConfig, PollConfig
from feedfix.service.catalog import Catalog
from feedfix.service.metrics import Metrics
from feedfix.service.poll.fetch import FetchRequest, fetch
from feedfix.service.poll.fetch_types import RedirectRefused
from feedfix.service.poll.poller import Poller
from feedfix.service.poll.transport import AiohttpTransport
from feedfix.service.poll.worker import Worker
from feedfix.service.store.memory import MemoryStore
from name_map import NameMap

GOOD = up.zaker_rss(range(1, 6))

# Names the fake name server answers with an internal address, in the spellings that the
# feed side's old rule (``ipaddress`` flags) let through and in those it already refused.
HOSTILE_NAMES = {
    "cgnat.test": "100.64.0.1",  # let through before
    "six-to-four.test": "2002:7f00:1::1",  # 6to4 form of 127.0.0.1: let through before
    "ietf.test": "192.0.0.8",  # let through before
    "benchmark.test": "198.18.0.1",
    "mapped.test": "::ffff:127.0.0.1",
    "nat64.test": "64:ff9b::7f00:1",
    "metadata.test": "169.254.169.254",
}
HOSTILE_LITERALS = ["100.64.0.1", "[2002:7f00:1::1]", "[::ffff:127.0.0.1]", "[64:ff9b::7f00:1]"]


class Upstream:
    """A feed on 127.0.0.1: ``/feed`` serves GOOD until ``redirect_to`` is set, then 302s
    there. It counts its requests."""

    def __init__(self) -> None:
        self.redirect_to: str | None = None
        self.requests = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _feed(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.redirect_to is not None:
            raise web.HTTPFound(location=self.redirect_to)
        return web.Response(body=GOOD, content_type="application/rss+xml")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Upstream]:
        """Serve on a free loopback port for the block."""
        app = web.Application()
        app.router.add_get("/feed", self._feed)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        try:
            yield self
        finally:
            await self._runner.cleanup()


def _run(test: Callable[[], Any]) -> None:
    asyncio.run(test())


def _only_loopback_upstream(connects: list[Any], port: int) -> None:
    assert connects, "the upstream was never connected to"
    assert all(address[:2] == ("127.0.0.1", port) for address in connects), connects


def _target(host: str, port: int) -> str:
    return f"http://{host}:{port}/feed"


@pytest.mark.parametrize(
    "host", [*HOSTILE_NAMES, *HOSTILE_LITERALS], ids=[*HOSTILE_NAMES, *HOSTILE_LITERALS]
)
def test_a_poll_redirected_inward_fails_and_sends_nothing_there(
    host: str, connects: list[Any]
) -> None:
    """The first poll of the loopback upstream serves the feed (the configured URL may be
    private); then the upstream redirects to an internal address. That poll fails with a
    "redirect" error naming the target (not the address it resolved to), the good feed stays
    served, and the only connections ever made were to the upstream."""

    async def test() -> None:
        async with Upstream().running() as upstream:
            names = NameMap({name: [address] for name, address in HOSTILE_NAMES.items()})
            config = Config(
                poll=PollConfig(jitter=0.0),
                feeds=(FeedConfig(name="z", url=_target("127.0.0.1", upstream.port)),),
            )
            store, catalog, metrics, worker = MemoryStore(), Catalog(), Metrics(), Worker()
            transport = AiohttpTransport(resolver=names)
            poller = Poller(config, store, catalog, metrics, worker, transport=transport)
            await poller.load()
            try:
                await poller.poll(poller.feeds["z"])
                served = catalog.served["z"].published.identity()
                assert b"<item>" in served or b"<entry>" in served

                upstream.redirect_to = _target(host, upstream.port)
                await poller.poll(poller.feeds["z"])
                record = store.history("z")[0]
                assert record.status == "error"
                error = record.error or ""
                sent = str(URL(upstream.redirect_to))  # as aiohttp's server spells the Location
                assert f"127.0.0.1:{upstream.port}/feed: refused a redirect to {sent} (" in error
                assert "(internal address refused; " in error
                if host in HOSTILE_NAMES:  # what the name resolved to is never said
                    assert HOSTILE_NAMES[host] not in error
                assert "allow_private_redirects" in error, error
                errors = metrics.registry.get_sample_value(
                    "feedfix_poll_errors_total", {"feed": "z", "kind": "redirect"}
                )
                assert errors == 1
                assert catalog.served["z"].published.identity() == served
                assert upstream.requests == 2
                if host in HOSTILE_NAMES:
                    assert names.lookups[host] == 1  # asked once, at connect time, refused
            finally:
                await poller.stop()
                worker.close()
            _only_loopback_upstream(connects, upstream.port)

    _run(test)


def test_a_configured_host_that_resolves_inside_is_polled(connects: list[Any]) -> None:
    """A configured URL whose name resolves to loopback (an RSSHub sidecar on a LAN name)
    is fetched as today: the guard is for redirects that leave that host, not for it."""

    async def test() -> None:
        async with Upstream().running() as upstream:
            transport = AiohttpTransport(resolver=NameMap({"rsshub.test": ["127.0.0.1"]}))
            try:
                result = await fetch(
                    transport, FetchRequest(url=_target("rsshub.test", upstream.port))
                )
            finally:
                await transport.close()
            assert result.body == GOOD
            _only_loopback_upstream(connects, upstream.port)

    _run(test)


def test_a_redirect_cannot_ride_a_pooled_connection_inward(connects: list[Any]) -> None:
    """Feed A is configured on ``rsshub.test`` (loopback): its keep-alive connection stays
    pooled. Feed B, on 127.0.0.1, redirects to A's host, with the same transport. The hop
    that left B's host must not reuse A's unchecked connection: it is resolved through the
    guard and refused."""

    async def test() -> None:
        async with Upstream().running() as upstream:
            names = NameMap({"rsshub.test": ["127.0.0.1"]})
            transport = AiohttpTransport(resolver=names)
            try:
                feed_a = _target("rsshub.test", upstream.port)
                assert (await fetch(transport, FetchRequest(url=feed_a))).body == GOOD
                upstream.redirect_to = feed_a
                feed_b = _target("127.0.0.1", upstream.port)
                with pytest.raises(RedirectRefused, match=r"rsshub\.test:\d+/feed \(internal add"):
                    await fetch(transport, FetchRequest(url=feed_b))
            finally:
                await transport.close()
            assert names.lookups["rsshub.test"] == 2  # A's connection, then the guard's
            assert upstream.requests == 2  # A's feed and B's redirect: nothing more

    _run(test)
