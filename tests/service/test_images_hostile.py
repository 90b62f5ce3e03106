"""The image proxy under attack, over real sockets on 127.0.0.1: every internal address,
redirects inward, DNS rebinding, bodies too big or endless or slow, and non-images dressed
as images. Each is refused and counted, nothing of it reaches the reader, and the proxy
keeps serving. No request ever leaves loopback: refused addresses are never connected to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from image_origin import (
    HTML_PAGE,
    IMAGES,
    SVG_WITH_SCRIPT,
    ImageOrigin,
    Proxy,
    serving,
    settings,
    sign,
)
from name_map import NameMap

pytest.importorskip("PIL")

# One address of each refused kind, as IP literals in signed URLs (brackets for IPv6).
INTERNAL_LITERALS = [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "100.127.255.254", "198.18.0.1", "198.19.255.255", "0.0.0.0", "0.1.2.3",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "[::1]", "[::]", "[fe80::1]", "[fc00::1]", "[fd12:3456::1]", "[ff02::1]",
    "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]",
    "[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[2002:7f00:1::1]", "[::127.0.0.1]",
]  # fmt: skip


def run(check: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one async test body."""
    asyncio.run(check())


async def get(proxy: Proxy, path: str) -> tuple[int, CIMultiDict[str], bytes]:
    """One GET to the proxy: status, headers, body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.base + path) as response,
    ):
        return response.status, CIMultiDict(response.headers), await response.read()


async def still_serving(proxy: Proxy, origin: ImageOrigin) -> None:
    """A good image still comes through, byte for byte."""
    status, _, body = await get(proxy, sign(origin.url("/plain/c.gif")))
    assert (status, body) == (200, IMAGES["c.gif"][0])


def assert_refusal(status: int, headers: CIMultiDict[str], body: bytes) -> None:
    """A 502 with a one-line plain-text reason, the security headers, nothing cacheable."""
    assert status == 502
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert body.count(b"\n") == 1 and len(body) < 200


def test_every_internal_literal_is_refused_before_connecting(tmp_path: Path) -> None:
    """With allow_private empty, each internal IP literal is refused (502, counted as
    refused), the loopback origin, listening on its port, is never reached."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        config = settings(tmp_path / "c", allow_private=())
        async with serving(config, None) as proxy:
            for host in INTERNAL_LITERALS:
                status, headers, body = await get(
                    proxy, sign(f"http://{host}:{origin.port}/plain/a.png")
                )
                assert_refusal(status, headers, body)
                assert b"internal address refused" in body, host
            assert origin.total == 0
            assert proxy.count("refused") == len(INTERNAL_LITERALS)
        await origin.stop()

    run(check)


def test_names_that_resolve_inside_are_refused(tmp_path: Path) -> None:
    """A name whose answers are all internal is refused at connect time; so are the
    numeric spellings of 127.0.0.1 that the system resolver turns into loopback."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        names = NameMap({"inside.test": ["127.0.0.1"], "inside6.test": ["::ffff:127.0.0.1"]})
        config = settings(tmp_path / "c", allow_private=())
        async with serving(config, None, resolver=names) as proxy:
            for host in ("inside.test", "inside6.test"):
                status, headers, body = await get(
                    proxy, sign(f"http://{host}:{origin.port}/plain/a.png")
                )
                assert_refusal(status, headers, body)
                assert body == b"internal address refused\n"  # what it resolved to: unsaid
        async with serving(config, None) as proxy:  # the system resolver: numeric forms only
            for host in ("2130706433", "0x7f000001", "127.1"):
                status, headers, body = await get(
                    proxy, sign(f"http://{host}:{origin.port}/plain/a.png")
                )
                assert_refusal(status, headers, body)
            assert proxy.count("refused") == 3
        assert origin.total == 0
        await origin.stop()

    run(check)


def test_allow_private_lets_named_hosts_and_networks_through(tmp_path: Path) -> None:
    """allow_private by network (127.0.0.0/8) or by host name reaches the loopback origin."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        names = NameMap({"cdn.img.test": ["127.0.0.1"]})
        for allowed, host in ((("127.0.0.0/8",), "127.0.0.1"), (("cdn.img.test",), "cdn.img.test")):
            config = settings(tmp_path / host, allow_private=allowed)
            async with serving(config, None, resolver=names) as proxy:
                status, _, body = await get(proxy, sign(origin.url("/plain/a.png", host=host)))
                assert (status, body) == (200, IMAGES["a.png"][0])
        await origin.stop()

    run(check)


def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    """The allowed origin redirects to loopback addresses allow_private does not name, to
    the metadata address, and to file://: each is refused, none is fetched."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        config = settings(tmp_path / "c", allow_private=("127.0.0.1",))
        targets = [
            f"http://127.0.0.2:{origin.port}/plain/a.png",
            f"http://[::1]:{origin.port}/plain/a.png",
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
        ]
        async with serving(config, None) as proxy:
            for target in targets:
                status, headers, body = await get(proxy, sign(origin.url(f"/redirect?to={target}")))
                assert_refusal(status, headers, body)
            assert origin.hits["/plain/a.png"] == 0
            assert origin.hits["/redirect"] == len(targets)
            assert proxy.count("refused") == len(targets)
            await still_serving(proxy, origin)
        await origin.stop()

    run(check)


def test_a_name_that_turns_inward_is_refused_at_connect_time(tmp_path: Path) -> None:
    """DNS rebinding: ``flip.test`` first resolves to the allowed address (standing in for
    the outside world here, so that nothing leaves loopback), then to an internal one. The
    resolver is asked at every connection, so the second fetch is refused."""

    async def check() -> None:
        origin = await ImageOrigin(force_close=True).start()
        names = NameMap({"flip.test": ["127.0.0.1", "127.0.0.2"]})
        config = settings(tmp_path / "c", allow_private=("127.0.0.1",))
        async with serving(config, None, resolver=names) as proxy:
            first = sign(origin.url("/plain/a.png", host="flip.test"))
            status, _, body = await get(proxy, first)
            assert (status, body) == (200, IMAGES["a.png"][0])
            second = sign(origin.url("/plain/b.jpg", host="flip.test"))
            status, headers, body = await get(proxy, second)
            assert_refusal(status, headers, body)
            assert body == b"internal address refused\n"
            assert names.lookups["flip.test"] == 2
            assert origin.hits["/plain/b.jpg"] == 0
        await origin.stop()

    run(check)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/declared-2gb", b"declared 2000000000 bytes"),
        ("/endless", b"over the 1000000 byte limit"),
        ("/html-as-png", b"body is not image/png"),
        ("/svg-as-png", b"body is not image/png"),
        ("/svg", b"SVG is not served"),
        ("/status/200", b"not an image type: text/html"),
    ],
)
def test_bodies_that_are_not_images_or_too_big_are_refused(
    tmp_path: Path, path: str, reason: bytes
) -> None:
    """Each is answered 502 with a short reason and never passed through: nothing of the
    origin's body (HTML, script) reaches the reader; nothing is cached; the proxy goes on."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            started = time.monotonic()
            status, headers, body = await get(proxy, sign(origin.url(path)))
            assert time.monotonic() - started < 1.5  # refused at once, not at the timeout
            assert_refusal(status, headers, body)
            assert reason in body
            assert b"<script" not in body and HTML_PAGE not in body
            assert SVG_WITH_SCRIPT not in body
            assert proxy.count("refused") == 1
            assert proxy.service.stats().entries == 0
            await still_serving(proxy, origin)
        await origin.stop()

    run(check)


def test_a_slow_drip_hits_the_total_timeout(tmp_path: Path) -> None:
    """A PNG sent one byte every 0.2 s is cut off at the 1.5 s total timeout: 504, counted
    as an origin error, and the proxy serves other images meanwhile."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), None) as proxy:
            started = time.monotonic()
            drip = asyncio.ensure_future(get(proxy, sign(origin.url("/drip"))))
            await asyncio.sleep(0.2)
            await still_serving(proxy, origin)
            status, headers, body = await drip
            assert 1.4 < time.monotonic() - started < 3.0
            assert status == 504
            assert body == b"no complete answer within 1.5 s\n"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert proxy.count("origin_error") == 1
        await origin.stop()

    run(check)


def test_svg_when_allowed_is_served_with_a_csp_that_forbids_scripts(tmp_path: Path) -> None:
    """With svg on, an SVG is served as image/svg+xml under a sandboxing CSP with no
    script source; an SVG sent as image/png is still refused."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c", svg=True), None) as proxy:
            status, headers, body = await get(proxy, sign(origin.url("/svg")))
            assert (status, body) == (200, SVG_WITH_SCRIPT)
            assert headers["Content-Type"] == "image/svg+xml"
            csp = headers["Content-Security-Policy"]
            assert csp.startswith("default-src 'none'") and "sandbox" in csp
            assert "script-src" not in csp
            await proxy.service.cache.settle()  # from the file, the same headers
            status, headers, body = await get(proxy, sign(origin.url("/svg")))
            assert (status, body) == (200, SVG_WITH_SCRIPT)
            assert headers["Content-Security-Policy"] == csp
            status, _, _ = await get(proxy, sign(origin.url("/svg-as-png")))
            assert status == 502
        await origin.stop()

    run(check)


def test_an_origin_that_is_down_is_an_origin_error(tmp_path: Path) -> None:
    """Connection refused (nothing listens on the port any more): 502, origin_error, in the
    words every failure to connect gets (a closed port must not read unlike a filtered one)."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        url = origin.url("/plain/a.png")
        await origin.stop()
        async with serving(settings(tmp_path / "c"), None) as proxy:
            status, headers, body = await get(proxy, sign(url))
            assert_refusal(status, headers, body)
            assert body == b"origin unreachable\n"
            assert proxy.count("origin_error") == 1

    run(check)


def test_per_host_concurrency_is_bounded(tmp_path: Path) -> None:
    """With per_host = 2, six different slow images of one host are fetched two at a time
    (about three rounds of 0.3 s), not all at once."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c", per_host=2), None) as proxy:
            paths = [sign(origin.url(f"/slow/a.png?s=0.3&v={i}")) for i in range(6)]
            started = time.monotonic()
            answers = await asyncio.gather(*(get(proxy, p) for p in paths))
            elapsed = time.monotonic() - started
            assert {a[0] for a in answers} == {200}
            assert elapsed >= 0.85
            assert len(proxy.service.cache.fetcher.slots) == 0  # idle hosts forgotten
        await origin.stop()

    run(check)
