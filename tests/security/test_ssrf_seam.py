"""Issue 18, class 1, through the resolver seam (in-process: NOT black-box).

These tests need addresses outside loopback (10.0.0.1, 169.254.169.254…) and names that
resolve to them, which a ``feedfix serve`` child cannot be given safely: the child has no
loopback guard, and the system's DNS is not ours to change. So they run the fetchers in
this process, where ``tests/conftest.py`` refuses every connection outside loopback (a
guard that fails shows up as a "cannot connect", never as traffic), with names answered by
``tests/name_map.py``'s fake name server.

The seam they use, and which the fix must keep (wherever the modules move):

- the image proxy: ``ImageService.open(settings, metadata, registry, resolver=...)``
  (``tests/image_origin.py``'s ``serving`` helper passes it through), the proxy's outcome
  counted as ``refused`` in its metrics;
- the feed fetcher: ``AiohttpTransport(resolver=...)`` and ``fetch(transport,
  FetchRequest(...))``, a refused hop raising ``RedirectRefused``;
- both wrapping the given resolver in the one address guard, whose check also runs for IP
  literals *as the connector will connect to them* (the host after yarl's normalisation),
  so that a Unicode spelling of 10.0.0.1 is refused as 10.0.0.1 is.

When ``feedfix/service`` is split into ``poll/``, ``http/``, ``images/``, ``store/``, only the
imports below need to follow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from feedfix.service.poll.fetch import FetchRequest, fetch
from feedfix.service.poll.fetch_types import FetchError, RedirectRefused
from feedfix.service.poll.transport import AiohttpTransport
from image_origin import Proxy, serving, settings, sign
from name_map import NameMap

# Internal addresses outside loopback, spelt so that only yarl's normalisation shows them.
NORMALISED_INTERNAL = [
    "１０.０.０.１",  # 10.0.0.1, full-width
    "１６９.２５４.１６９.２５４",  # the cloud metadata address, full-width
    "169。254。169。254",  # ideographic full stops
    "１９２.１６８.１.１",
    "１００.６４.０.１",  # CGNAT
    "①⓪.⓪.⓪.①",  # circled digits: 10.0.0.1
]
# Names that answer internal addresses; the full-width spelling becomes the ASCII name.
HOSTILE_NAMES = {"metadata.test": ["169.254.169.254"], "intranet.test": ["10.1.2.3"]}
HOSTILE_SPELLINGS = [
    "metadata.test",
    "ｍｅｔａｄａｔａ.test",
    "intranet.test",
    "ｉｎｔｒａｎｅｔ.test",
]


def run(check: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one async test body."""
    asyncio.run(check())


async def _get(proxy: Proxy, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(proxy.base + path) as answer:
        return answer.status, await answer.read()


def _outside_loopback(connects: list[Any]) -> list[Any]:
    return [a for a in connects if isinstance(a, tuple) and not str(a[0]).startswith("127.")]


def test_image_literals_normalised_to_internal_addresses_are_refused(
    tmp_path: Path, connects: list[Any]
) -> None:
    """Attack: ``/img/`` for ``http://１６９.２５４.１６９.２５４/latest/meta-data/`` (and the
    other spellings): the guard sees Unicode, yarl connects to the literal. Here the test's
    socket guard stops the connection, so today it shows as "cannot connect" (an origin
    error); in production it is a read of the metadata service.

    Must hold: each is refused by feedfix's own guard (outcome ``refused``, the generic
    text), and no connection is even attempted outside loopback."""

    async def check() -> None:
        config = settings(tmp_path / "cache", allow_private=())
        async with serving(config, None) as proxy:
            answers = {}
            for host in NORMALISED_INTERNAL:
                answers[host] = await _get(proxy, sign(f"http://{host}/latest/meta-data/x.png"))
            refused = proxy.count("refused")
        wrong = {h: a for h, a in answers.items() if b"internal address refused" not in a[1]}
        assert not wrong, wrong
        assert refused == len(NORMALISED_INTERNAL)
        assert _outside_loopback(connects) == [], "connections were attempted outside loopback"

    run(check)


def test_image_names_that_resolve_inside_are_refused_without_echo(
    tmp_path: Path, connects: list[Any]
) -> None:
    """Attack: a name (ASCII or a full-width spelling IDNA maps to it) whose DNS answer is
    internal: refused today, but the 502 says "resolves to an internal address
    (169.254.169.254)", so anyone who can get a URL signed learns the internal DNS.

    Must hold: refused, counted as ``refused``, and the answer names no address."""

    async def check() -> None:
        config = settings(tmp_path / "cache", allow_private=())
        names = NameMap(HOSTILE_NAMES)
        async with serving(config, None, resolver=names) as proxy:
            answers = {h: await _get(proxy, sign(f"http://{h}/x.png")) for h in HOSTILE_SPELLINGS}
            refused = proxy.count("refused")
        for host, (status, body) in answers.items():
            assert status in (403, 502), (host, status)
            assert b"internal address refused" in body, (host, body)
            assert b"169.254" not in body and b"10.1.2.3" not in body, (host, body)
        assert refused == len(HOSTILE_SPELLINGS)
        assert _outside_loopback(connects) == []

    run(check)


class Redirector:
    """A feed upstream on 127.0.0.1 whose ``/feed`` 302s to ``to``."""

    def __init__(self, to: str) -> None:
        self.to = to
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        del request
        return web.Response(status=302, headers={"Location": self.to})

    async def __aenter__(self) -> Redirector:
        app = web.Application()
        app.router.add_get("/feed", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.mark.parametrize("host", NORMALISED_INTERNAL + HOSTILE_SPELLINGS)
def test_feed_redirects_to_normalised_or_resolved_internal_hosts_are_refused(
    host: str, connects: list[Any]
) -> None:
    """Attack: the configured upstream redirects the poll to a Unicode spelling of an
    internal address, or to a name that resolves inward (ASCII or full-width). Today a
    literal spelling passes the fetcher's check and aiohttp connects to it (here the test's
    socket guard turns that into a "cannot connect"); a name is refused but the error
    echoes the address.

    Must hold: ``RedirectRefused`` saying "internal address refused", naming no address the
    name resolved to; no connection attempted outside loopback."""

    async def check() -> None:
        async with Redirector(f"http://{host}/feed.xml") as upstream:
            transport = AiohttpTransport(resolver=NameMap(HOSTILE_NAMES))
            try:
                with pytest.raises(FetchError) as caught:
                    await fetch(
                        transport, FetchRequest(url=f"http://127.0.0.1:{upstream.port}/feed")
                    )
            finally:
                await transport.close()
        error = caught.value
        assert isinstance(error, RedirectRefused), f"{type(error).__name__}: {error}"
        assert "internal address refused" in str(error), str(error)
        if host in HOSTILE_SPELLINGS:  # the URL names no address: the message must not either
            assert "169.254" not in str(error) and "10.1.2.3" not in str(error), str(error)
        assert _outside_loopback(connects) == []

    run(check)
