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

from feedfix.service.poll.fetch import (
    AiohttpTransport,
    FetchError,
    FetchRequest,
    FetchResult,
    MockResponse,
    MockTransport,
    fetch,
)
from feedfix.service.poll.fetch_types import (
    ConnectFailed,
    HttpStatusError,
    RedirectRefused,
    TooLarge,
    TooManyRedirects,
)
from name_map import NameMap

REBINDING = "rebinding.invalid"  # a fake name server answers it with loopback, at connect time
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


def test_a_name_that_resolves_inward_when_connecting_is_refused() -> None:
    """The redirect's host is a name only the fake name server knows, answering loopback:
    the guard refuses it at connect time, where aiohttp resolves it (nothing checked before
    could be outrun by DNS rebinding). Allowed, the same hop connects."""

    async def get(url: str, **options: object) -> FetchResult:
        transport = AiohttpTransport(resolver=NameMap({REBINDING: ["127.0.0.1"]}))
        try:
            return await fetch(transport, FetchRequest(url=url, **options))  # type: ignore[arg-type]
        finally:
            await transport.close()

    async def check(base: str) -> None:
        with pytest.raises(FetchError, match="refused a redirect") as caught:
            await get(f"{base}/to-rebinding")
        assert caught.value.kind == "redirect"
        assert "internal address refused" in str(caught.value)
        assert "127.0.0.1)" not in str(caught.value)  # what the name resolved to: never said
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
        ("100.64.0.1", True),  # CGNAT: let through before the stricter rule
        ("192.0.0.8", True),  # IETF protocol assignments: likewise
        ("[::1]", True),
        ("[::ffff:127.0.0.1]", True),
        ("[64:ff9b::7f00:1]", True),
        ("[2002:7f00:1::1]", True),  # 6to4 form of loopback: likewise
        ("8.8.8.8", False),
        ("93.184.216.34", False),
        ("[::ffff:8.8.8.8]", False),
    ],
)
def test_redirects_to_internal_literals_are_refused_before_sending(
    host: str, internal: bool
) -> None:
    """An IP literal skips the resolver, so the fetcher judges it before the hop: internal
    ones (the stricter rule of ``addresses.py``) are refused unsent, public ones are sent."""
    start = "http://rsshub.test/feed"  # the configured host: anything may be behind it
    replies = {start: _moved(f"http://{host}/feed")}
    transport = MockTransport(lambda hop: replies.get(hop.url, MockResponse(200, {}, FEED)))
    request = FetchRequest(url=start)
    if internal:
        with pytest.raises(RedirectRefused, match=r"internal address refused; set \[poll\]"):
            asyncio.run(fetch(transport, request))
        assert [hop.url for hop in transport.hops] == [start]
    else:
        assert asyncio.run(fetch(transport, request)).body == FEED
        assert [hop.url for hop in transport.hops] == [start, f"http://{host}/feed"]


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


def _mock(replies: dict[str, MockResponse]) -> MockTransport:
    """A transport that answers each URL from ``replies`` (404 for any other)."""
    return MockTransport(lambda hop: replies.get(hop.url, MockResponse(404)))


def _moved(to: str, status: int = 302) -> MockResponse:
    return MockResponse(status, {"Location": to})


FOUND = MockResponse(200, {"Content-Type": "application/rss+xml"}, FEED)


@pytest.mark.parametrize(
    ("start", "target", "keeps"),
    [
        ("https://127.0.0.1/feed", "http://127.0.0.1/feed", False),  # a downgrade: another origin
        ("http://127.0.0.1/feed", "http://127.0.0.1:8080/feed", False),  # another port
        ("http://127.0.0.1/feed", "http://127.0.0.1:80/new", True),  # the default port, spelt out
        ("http://127.0.0.1/feed", "HTTP://127.0.0.1/new", True),  # scheme case does not matter
    ],
)
def test_what_counts_as_the_same_origin(start: str, target: str, keeps: bool) -> None:
    """Origin is scheme, host and port, with the scheme's default port filled in."""
    transport = _mock({start: _moved(target), target.replace("HTTP", "http"): FOUND})
    request = FetchRequest(url=start, headers=SECRETS + PLAIN)
    assert asyncio.run(fetch(transport, request)).body == FEED
    last = transport.hops[-1].headers
    assert ("Cookie" in last, "Authorization" in last) == (keeps, keeps)
    assert last["Referer"] == "https://www.myzaker.com/"
    assert transport.hops[0].headers["Cookie"] == "session=s3cret"


def test_validators_go_to_the_configured_url_only() -> None:
    """If-None-Match and If-Modified-Since belong to the configured URL, not to where it led."""
    start, target = "http://127.0.0.1/feed", "http://127.0.0.1/new"
    transport = _mock({start: _moved(target), target: FOUND})
    request = FetchRequest(url=start, etag='"e"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    asyncio.run(fetch(transport, request))
    first, second = (hop.headers for hop in transport.hops)
    assert first["If-None-Match"] == '"e"' and "If-Modified-Since" in first
    assert "If-None-Match" not in second and "If-Modified-Since" not in second


@pytest.mark.parametrize(
    ("replies", "error", "kind"),
    [
        (
            {"http://127.0.0.1/feed": MockResponse(503, {"Retry-After": "120"})},
            HttpStatusError,
            "http",
        ),
        ({"http://127.0.0.1/feed": _moved("http://127.0.0.1/feed")}, TooManyRedirects, "redirects"),
        ({"http://127.0.0.1/feed": _moved("ftp://127.0.0.1/f")}, RedirectRefused, "redirect"),
        ({"http://127.0.0.1/feed": _moved("http://[::1/f")}, RedirectRefused, "redirect"),
        ({"http://127.0.0.1/feed": MockResponse(200, {}, b"x" * 2000)}, TooLarge, "too-large"),
    ],
    ids=["503", "loop", "ftp", "not-a-url", "too-large"],
)
def test_each_failure_has_its_class_and_kind(
    replies: dict[str, MockResponse], error: type[FetchError], kind: str
) -> None:
    """The class says what happened, and sets the kind counted in the metrics."""
    request = FetchRequest(url="http://127.0.0.1/feed", max_size=1000, max_redirects=2)
    with pytest.raises(error) as caught:
        asyncio.run(fetch(_mock(replies), request))
    assert caught.value.kind == kind
    if error is HttpStatusError:
        assert (caught.value.status, caught.value.retry_after) == (503, "120")


def test_a_refused_connection_keeps_its_cause() -> None:
    """The typed error is raised from aiohttp's, so a traceback shows what the OS said."""
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectFailed, match="cannot connect") as caught:
        asyncio.run(_get(f"http://127.0.0.1:{port}/feed"))
    assert caught.value.kind == "connect"
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
