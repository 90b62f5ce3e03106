"""The fetcher against a real aiohttp server on loopback: limits, redirects, decompression."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from feedfix.service.fetch import (
    AiohttpTransport,
    FetchError,
    FetchRequest,
    FetchResult,
    GuardedResolver,
    fetch,
    is_internal,
)

REBINDING = "rebinding.invalid"  # the check's lookup finds nothing; the connect's finds loopback
FEED = b'<rss version="2.0"><channel><title>t</title></channel></rss>'
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB inflated, ~64 KB sent


def _app() -> web.Application:
    app = web.Application()

    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=FEED, content_type="application/rss+xml")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(location="/feed")

    async def to_localhost(request: web.Request) -> web.Response:
        port = request.url.port
        raise web.HTTPFound(location=f"http://localhost:{port}/feed")

    async def to_rebinding(request: web.Request) -> web.Response:
        raise web.HTTPFound(location=f"http://{REBINDING}:{request.url.port}/feed")

    async def to_file(request: web.Request) -> web.Response:
        raise web.HTTPFound(location="file:///etc/passwd")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(location="/loop")

    async def bomb(request: web.Request) -> web.Response:
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip"})

    app.router.add_get("/feed", feed)
    app.router.add_get("/moved", moved)
    app.router.add_get("/to-localhost", to_localhost)
    app.router.add_get("/to-rebinding", to_rebinding)
    app.router.add_get("/to-file", to_file)
    app.router.add_get("/loop", loop)
    app.router.add_get("/bomb", bomb)
    return app


def _run(check: Callable[[str], Awaitable[None]]) -> None:
    """Start the server on 127.0.0.1, run ``check(base_url)``, stop the server."""

    async def main() -> None:
        runner = web.AppRunner(_app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            await check(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    asyncio.run(main())


async def _get(url: str, **options: object) -> FetchResult:
    transport = AiohttpTransport()
    try:
        return await fetch(transport, FetchRequest(url=url, **options))  # type: ignore[arg-type]
    finally:
        await transport.close()


def test_permanent_redirect_on_the_same_host_is_followed_and_reported() -> None:
    """A 301 within the configured host is followed; the new address is reported."""

    async def check(base: str) -> None:
        result = await _get(f"{base}/moved")
        assert result.body == FEED
        assert result.permanent_redirect == f"{base}/feed"

    _run(check)


def test_redirect_inward_to_another_host_is_refused_unless_allowed() -> None:
    """Leaving the configured host for a loopback name is refused; allowed when configured."""

    async def check(base: str) -> None:
        with pytest.raises(FetchError, match="refused a redirect") as caught:
            await _get(f"{base}/to-localhost")
        assert caught.value.kind == "redirect"
        result = await _get(f"{base}/to-localhost", allow_private_redirects=True)
        assert result.body == FEED

    _run(check)


class _Rebinding(AbstractResolver):
    """A name server that answers the connect-time lookup of REBINDING with loopback."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        assert host == REBINDING
        return [
            {"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET,
             "proto": 0, "flags": 0}
        ]  # fmt: skip

    async def close(self) -> None:
        pass


def test_a_name_that_turns_inward_between_check_and_connect_is_refused() -> None:
    """DNS rebinding: the redirect's host looks outside when checked, then resolves to
    loopback when aiohttp connects. The resolver guard refuses it; allowed, it connects."""

    async def get(url: str, **options: object) -> FetchResult:
        guard = GuardedResolver(_Rebinding())
        connector = aiohttp.TCPConnector(resolver=guard, use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            request = FetchRequest(url=url, **options)  # type: ignore[arg-type]
            return await fetch(AiohttpTransport(session), request)

    async def check(base: str) -> None:
        assert not await is_internal(REBINDING)  # what the check before the hop sees
        with pytest.raises(FetchError, match="loopback or private address: refused"):
            await get(f"{base}/to-rebinding")
        result = await get(f"{base}/to-rebinding", allow_private_redirects=True)
        assert result.body == FEED

    _run(check)


def test_redirect_to_another_scheme_is_refused() -> None:
    """A redirect to file:// (or any non-web scheme) is never followed."""

    async def check(base: str) -> None:
        with pytest.raises(FetchError, match="not http/https"):
            await _get(f"{base}/to-file")

    _run(check)


def test_redirect_loop_stops_at_the_limit() -> None:
    """A redirect loop ends with an error naming the limit."""

    async def check(base: str) -> None:
        with pytest.raises(FetchError, match="more than 3 redirects"):
            await _get(f"{base}/loop", max_redirects=3)

    _run(check)


def test_gzip_bomb_stops_at_the_size_cap() -> None:
    """The cap counts decompressed bytes: 64 KB on the wire that inflate to 64 MiB are refused."""

    async def check(base: str) -> None:
        with pytest.raises(FetchError, match="cap") as caught:
            await _get(f"{base}/bomb", max_size=1_000_000)
        assert caught.value.kind == "too-large"

    _run(check)


@pytest.mark.parametrize(
    ("host", "internal"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.9", True),
        ("169.254.169.254", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("8.8.8.8", False),
        ("93.184.216.34", False),
    ],
)
def test_internal_addresses(host: str, internal: bool) -> None:
    """Loopback, private, link-local (cloud metadata) addresses and names for them are internal."""
    assert asyncio.run(is_internal(host)) is internal


SECRETS = (("Cookie", "session=s3cret"), ("Authorization", "Bearer t0ken"))
PLAIN = (("Referer", "https://www.myzaker.com/"),)


def _recording_app(seen: list[tuple[str, dict[str, str]]], away: str | None) -> web.Application:
    """An upstream that records every request's headers; /away redirects to ``away``, /home
    to its own /feed, /back-home to the URL in its ``to`` query; anything else is the feed."""
    app = web.Application()

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.path, {k.lower(): v for k, v in request.headers.items()}))
        if request.path == "/away" and away is not None:
            raise web.HTTPFound(location=away)
        if request.path == "/home":
            raise web.HTTPFound(location="/feed")
        if request.path == "/back-home":
            raise web.HTTPFound(location=request.query["to"])
        return web.Response(body=FEED, content_type="application/rss+xml")

    app.router.add_get("/{tail:.*}", handle)
    return app


def _two_origins(check: Callable[[str, str, list[Any], list[Any]], Awaitable[None]]) -> None:
    """Two upstreams on 127.0.0.1, on two ports (two origins): A redirects /away to B."""

    async def main() -> None:
        seen_a: list[tuple[str, dict[str, str]]] = []
        seen_b: list[tuple[str, dict[str, str]]] = []
        runner_b = web.AppRunner(_recording_app(seen_b, None))
        await runner_b.setup()
        site_b = web.TCPSite(runner_b, "127.0.0.1", 0)
        await site_b.start()
        base_b = f"http://127.0.0.1:{runner_b.addresses[0][1]}"
        runner_a = web.AppRunner(_recording_app(seen_a, f"{base_b}/feed"))
        await runner_a.setup()
        site_a = web.TCPSite(runner_a, "127.0.0.1", 0)
        await site_a.start()
        base_a = f"http://127.0.0.1:{runner_a.addresses[0][1]}"
        try:
            await check(base_a, base_b, seen_a, seen_b)
        finally:
            await runner_a.cleanup()
            await runner_b.cleanup()

    asyncio.run(main())


def test_credentials_do_not_follow_a_redirect_to_another_origin() -> None:
    """A feed's Cookie and Authorization go to its own origin; a redirect to another port of
    the same host is another origin: the hop there gets neither, only the plain headers."""

    async def check(base_a: str, base_b: str, seen_a: list[Any], seen_b: list[Any]) -> None:
        result = await _get(f"{base_a}/away", headers=SECRETS + PLAIN)
        assert result.body == FEED
        assert [path for path, _ in seen_a] == ["/away"]
        assert seen_a[0][1]["cookie"] == "session=s3cret"
        assert seen_a[0][1]["authorization"] == "Bearer t0ken"
        assert [path for path, _ in seen_b] == ["/feed"]
        hop = seen_b[0][1]
        assert "cookie" not in hop, hop
        assert "authorization" not in hop, hop
        assert hop["referer"] == "https://www.myzaker.com/"

    _two_origins(check)


def test_credentials_follow_a_redirect_within_the_origin() -> None:
    """A redirect to another path of the same scheme, host and port keeps the credentials."""

    async def check(base_a: str, base_b: str, seen_a: list[Any], seen_b: list[Any]) -> None:
        await _get(f"{base_a}/home", headers=SECRETS)
        assert [path for path, _ in seen_a] == ["/home", "/feed"]
        assert seen_a[1][1]["cookie"] == "session=s3cret"
        assert seen_a[1][1]["authorization"] == "Bearer t0ken"

    _two_origins(check)


def test_credentials_stay_off_once_a_redirect_has_left_the_origin() -> None:
    """Sent elsewhere and back (B redirects to A again), the hop home carries no credentials:
    the other origin chose where it leads."""

    async def check(base_a: str, base_b: str, seen_a: list[Any], seen_b: list[Any]) -> None:
        start = f"{base_b}/back-home?to={base_a}/feed"
        result = await _get(start, headers=SECRETS)
        assert result.body == FEED
        assert "cookie" in seen_b[0][1]
        assert [path for path, _ in seen_a] == ["/feed"]
        assert "cookie" not in seen_a[0][1]
        assert "authorization" not in seen_a[0][1]

    _two_origins(check)
