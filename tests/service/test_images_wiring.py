"""The image proxy end to end: ``feedfix serve`` started as a user starts it, its feed's images
on a real origin that checks the Referer, every image loaded back through ``/img/``.

The upstream feed is shaped like RSSHub's ZAKER output (a wrapped image, a lazy one, a
srcset, an image enclosure); the images live on ``tests/image_origin.py``'s origin at
127.0.0.1, allowed with ``allow_private``, and a host rule sends the Referer its ``/weibo/``
paths demand. Chromium then renders the entries in a page of a foreign site.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
from collections.abc import Iterator
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from browser import CHROMIUM_FLAGS, find_chromium
from image_origin import IMAGES, WEIBO, ImageOrigin, origin_thread
from image_service import ATOM, ProxyService, image_urls, metric, origin_path
from service_helpers import wait_for
from upstream import WRAPPER, Upstream, feed

PROTECTED = ("/weibo/a.png", "/weibo/b.jpg", "/weibo/big.jpg")  # 403 without weibo's Referer
PLAIN = ("/plain/c.gif", "/plain/d.webp")
ALL_PATHS = (*PROTECTED, *PLAIN)


def pictures_rss(origin: ImageOrigin) -> bytes:
    """Three ZAKER-shaped items whose five images are on the origin: a wrapped one, a lazy
    one with a srcset, an image enclosure, and plain ones."""
    a, b, big, c, d = (origin.url(p) for p in ("/weibo/a.png", "/weibo/b.jpg", "/weibo/big.jpg",
                                               "/plain/c.gif", "/plain/d.webp"))  # fmt: skip
    items = [
        f'<p>一</p><div class="img_box" onclick><img src="{WRAPPER}{a}"></div>'
        '<div id="recommend_bottom"></div>',
        f'<p>二</p><img class="lazy opacity_0" data-original="{b}" src="{WRAPPER}{b}">'
        f'<img src="{c}" srcset="{c} 1x, {d} 2x">',
        f'<p>三</p><img src="{d}"><a href="{origin.url("/plain/page.html")}">link</a>',
    ]
    xml = "".join(
        f"<item><title>第 {n} 条</title><link>http://www.myzaker.com/article/{n}</link>"
        f"<guid>http://www.myzaker.com/article/{n}</guid>"
        f"<pubDate>Tue, 01 Dec 2026 0{n}:00:00 GMT</pubDate>"
        f"<description><![CDATA[{html}]]></description>"
        + (f'<enclosure url="{big}" type="image/jpeg" length="1"/>' if n == 3 else "")
        + "</item>"
        for n, html in enumerate(items, 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>ZAKER 图片</title><link>http://www.myzaker.com/channel/9</link>"
        f"<description>RSSHub</description>{xml}</channel></rss>"
    ).encode()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[ImageOrigin, Upstream]]:
    """The image origin and the upstream serving the pictures feed."""
    with origin_thread() as (origin, _loop), Upstream() as upstream:
        upstream.script("/pics.xml", feed(pictures_rss(origin)))
        yield origin, upstream


def _service(tmp: Path, upstream: Upstream, proxy: str, interval: float = 600) -> ProxyService:
    images = {"proxy": proxy, "allow_private": ["127.0.0.1"]}
    pics = {"name": "pics", "url": upstream.url("/pics.xml"), "interval": interval}
    return ProxyService(tmp, [pics], images)


def test_every_image_loads_through_the_proxy_once_and_survives_a_restart(
    tmp_path: Path, world: tuple[ImageOrigin, Upstream]
) -> None:
    """Proxy on: each of the five images is a signed /img/ URL that answers the origin's exact
    bytes (the protected ones with weibo's Referer); ten requests ask the origin once; a
    restart keeps the key (same feed bytes and ETag, same URLs) and the cache."""
    origin, upstream = world
    service = _service(tmp_path, upstream, "all")
    with service:
        served = service.wait_served("pics")
        urls = image_urls(served.body)
        assert len(urls) == 7  # five images; c and d also in a srcset
        assert all(u.startswith(f"{service.base_url}/img/v1/") for u in urls), urls
        assert sorted({origin_path(u) for u in urls}) == sorted(ALL_PATHS)
        assert "/plain/page.html" in served.text()  # a link is left alone
        for _round in range(10):
            for url in urls:
                answer = service.get(url.removeprefix(service.base_url))
                assert answer.status == 200, (url, answer.status, answer.body[:200])
                assert answer.body == IMAGES[origin_path(url).rsplit("/", 1)[1]][0]
        assert {p: origin.hits[p] for p in ALL_PATHS} == dict.fromkeys(ALL_PATHS, 1)
        assert origin.headers["/weibo/a.png"].get("Referer") == WEIBO
        page = service.get("/metrics").text()
        assert metric(page, "feedfix_image_requests_total", '{outcome="miss"}') == 5
        served_again = sum(
            metric(page, "feedfix_image_requests_total", f'{{outcome="{o}"}}')
            for o in ("hit", "coalesced")  # coalesced: while its file was still being written
        )
        assert served_again == 65

        def all_on_disk() -> str | None:
            """The metrics once the five images are written and indexed: that happens in
            the background after each first answer (fsync can take a while on a busy disk)."""
            text = service.get("/metrics").text()
            return text if metric(text, "feedfix_image_cache_entries") == 5 else None

        page = wait_for(all_on_disk, 20, "the five images to be on disk and indexed")
        assert metric(page, "feedfix_rule_changes_total", '{rule="proxy-images"}') == 6
        cache = service.get("/?format=json").json()["image_cache"]
        assert (cache["entries"], cache["requests"]) == (5, 70)
        assert cache["hits"] + 5 <= 70 and cache["hit_rate"] == cache["hits"] / 70
        kb = f"{cache['bytes'] / 1000:.1f} kB"
        rate = f"{cache['hits'] / 70:.0%}"
        line = f"Image cache: 5 images, {kb}; hit rate {rate} of 70 requests."
        assert line in unescape(service.get("/").text())
        etag = served.header("ETag")
    service.stop()
    key = sqlite3.connect(service.db).execute("SELECT value FROM secrets").fetchall()
    assert len(key) == 1 and len(key[0][0]) >= 32  # made at first start, kept in the store
    with service.start():
        again = service.wait_served("pics")
        assert again.body == served.body and again.header("ETag") == etag
        for url in urls:
            assert service.get(url.removeprefix(service.base_url)).status == 200
        assert origin.total == 5  # still the cache's: nothing asked again
    service.stop()


def _tamper(path: str, part: int, new: str) -> str:
    pieces = path.split("/")  # "", "img", "v1", sig, policy, origin
    pieces[part] = new
    return "/".join(pieces)


def test_a_tampered_signature_policy_or_url_is_refused_without_a_fetch(
    tmp_path: Path, world: tuple[ImageOrigin, Upstream]
) -> None:
    """403 for a changed signature, a changed Referer policy and a changed URL, and the origin
    is never asked; the refusals are counted on /metrics."""
    origin, upstream = world
    with _service(tmp_path, upstream, "http") as service:
        urls = image_urls(service.wait_served("pics").body)
        path = next(u for u in urls if "/weibo/" in origin_path(u)).removeprefix(service.base_url)
        sig = path.split("/")[3]
        other = base64.urlsafe_b64encode(origin.url("/plain/c.gif").encode()).rstrip(b"=")
        forged = [
            _tamper(path, 3, ("A" if sig[0] != "A" else "B") + sig[1:]),
            _tamper(path, 4, "n"),  # no Referer instead of weibo's
            _tamper(path, 4, "o"),
            _tamper(path, 5, other.decode()),
        ]
        for bad in forged:
            answer = service.get(bad)
            assert answer.status == 403, (bad, answer.status)
            assert answer.header("X-Content-Type-Options") == "nosniff"
        assert origin.total == 0
        page = service.get("/metrics").text()
        assert metric(page, "feedfix_image_requests_total", '{outcome="bad_signature"}') == 4


def test_proxy_off_leaves_the_output_as_it_was(
    tmp_path: Path, world: tuple[ImageOrigin, Upstream]
) -> None:
    """The default: origin URLs in the feed, no /img/ route, no key made."""
    origin, upstream = world
    with _service(tmp_path, upstream, "off") as service:
        urls = image_urls(service.wait_served("pics").body)
        assert sorted(set(urls)) == sorted({origin.url(p) for p in ALL_PATHS})
        assert service.get("/img/v1/x/n/eA").status == 404
    service.stop()
    assert sqlite3.connect(service.db).execute("SELECT COUNT(*) FROM secrets").fetchone()[0] == 0


# ---- a real browser on a foreign page -------------------------------------------------------


class _Page(BaseHTTPRequestHandler):
    """Serves the one page the test sets (any path)."""

    body = b""

    def do_GET(self) -> None:
        """The page."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def _entries_page(atom: bytes) -> bytes:
    """The served entries as one HTML page: their content and their image enclosures."""
    root = etree.fromstring(atom)
    parts = []
    for entry in root.iter(f"{ATOM}entry"):
        parts += [c.text or "" for c in entry.iter(f"{ATOM}content")]
        parts += [
            f'<img src="{link.get("href")}">'
            for link in entry.iter(f"{ATOM}link")
            if link.get("rel") == "enclosure"
        ]
    return f"<!doctype html><html><body>{''.join(parts)}</body></html>".encode()


def _render(executable: str, page: bytes) -> list[tuple[str, int]]:
    """Load ``page`` from a loopback site of its own (so every image request carries that
    foreign Referer); each image's URL and naturalWidth once the page has loaded."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    handler = type("Handler", (_Page,), {"body": page})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                tab = browser.new_page(viewport={"width": 1200, "height": 4000})
                tab.goto(f"http://127.0.0.1:{server.server_address[1]}/reader", wait_until="load")
                found: list[list[Any]] = tab.evaluate(
                    "Array.from(document.images, i => [i.currentSrc || i.src, i.naturalWidth])"
                )
            finally:
                browser.close()
    finally:
        server.shutdown()
    return [(str(src), int(width)) for src, width in found]


def test_chromium_on_a_foreign_page_loads_every_image_only_through_the_proxy(
    tmp_path: Path, world: tuple[ImageOrigin, Upstream]
) -> None:
    """Proxy off: the Referer-protected images fail in Chromium (naturalWidth 0) while the
    plain ones load; proxy on (the same service restarted): all of them load, from /img/.
    The mode is part of the rules' fingerprint: the next poll (a short interval here)
    fetches in full and re-renders every entry."""
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium or Playwright is not installed")
    origin, upstream = world
    service = _service(tmp_path, upstream, "off", interval=1)
    with service:
        off = _render(executable, _entries_page(service.wait_served("pics").body))
    service.stop()
    assert len(off) == 5  # five <img>: a srcset is one image
    broken = [src for src, width in off if width == 0]
    assert sorted(broken) == sorted(origin.url(p) for p in PROTECTED)
    assert origin.hits["/weibo/a.png"] >= 1  # asked, and refused: the origin's check is real
    service.images["proxy"] = "all"
    with service.start():
        body = wait_for(
            lambda: (
                r.body
                if (r := service.feed("pics")).status == 200 and b"/img/v1/" in r.body
                else None
            ),
            15,
            "the feed re-rendered with the proxy on",
        )
        on = _render(executable, _entries_page(body))
    service.stop()
    assert len(on) == 5
    assert all(src.startswith(f"{service.base_url}/img/") for src, _ in on), on
    assert [src for src, width in on if width == 0] == []


@pytest.mark.parametrize("fast", ["1", "0"])
def test_cached_images_answer_alike_from_the_fast_path_and_from_aiohttp(
    tmp_path: Path, world: tuple[ImageOrigin, Upstream], fast: str
) -> None:
    """A cached image through the fast path (FEEDFIX_FASTPATH=1: no aiohttp ``Server``
    header) and through aiohttp: 200, 304 for its ETag, 206 for a range, 416 past its end,
    HEAD with the length and no body, two answers on one kept-alive connection."""
    import http.client  # noqa: PLC0415

    origin, upstream = world
    service = _service(tmp_path, upstream, "http")
    service.env["FEEDFIX_FASTPATH"] = fast
    with service:
        url = image_urls(service.wait_served("pics").body)[0]
        path, body = url.removeprefix(service.base_url), IMAGES[origin_path(url).rsplit("/")[-1]][0]
        assert service.get(path).status == 200  # the miss, fetched (always aiohttp's)
        wait_for(
            lambda: metric(service.get("/metrics").text(), "feedfix_image_cache_entries") == 1,
            10,
            "the image on disk",
        )
        hit = service.get(path)
        assert hit.status == 200 and hit.body == body
        assert (hit.header("Server") is None) == (fast == "1")
        etag = hit.header("ETag")
        assert etag and hit.header("X-Content-Type-Options") == "nosniff"
        assert hit.header("Cache-Control") == "public, max-age=31536000, immutable"
        not_modified = service.get(path, {"If-None-Match": etag})
        assert (not_modified.status, not_modified.body) == (304, b"")
        part = service.get(path, {"Range": "bytes=0-9"})
        assert (part.status, part.body) == (206, body[:10])
        assert part.header("Content-Range") == f"bytes 0-9/{len(body)}"
        assert service.get(path, {"Range": f"bytes={len(body)}-"}).status == 416
        head = service.get(path, method="HEAD")
        assert head.status == 200 and head.body == b""
        assert head.header("Content-Length") == str(len(body))
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        try:
            for _ in range(2):
                conn.request("GET", path)
                answer = conn.getresponse()
                assert (answer.status, answer.read()) == (200, body)
        finally:
            conn.close()
        assert origin.total == 1
    service.stop()


def test_the_proxy_step_travels_to_a_cleaning_process(
    tmp_path: Path, world: tuple[ImageOrigin, Upstream]
) -> None:
    """``[poll] cleaner = "process"``: the settings go to the worker process inside each job's
    rule spec (pickled), and the feed it renders has signed URLs that load."""
    _origin, upstream = world
    service = _service(tmp_path, upstream, "http")
    service.poll["cleaner"] = "process"
    with service:
        urls = image_urls(service.wait_served("pics").body)
        assert len(urls) == 7 and all("/img/v1/" in u for u in urls)
        answer = service.get(urls[0].removeprefix(service.base_url))
        assert (
            answer.status == 200 and answer.body == IMAGES[origin_path(urls[0]).split("/")[-1]][0]
        )
    service.stop()


def test_a_reload_keeps_the_running_proxy(
    tmp_path: Path, world: tuple[ImageOrigin, Upstream]
) -> None:
    """SIGHUP with [images] proxy switched off: the log says it needs a restart, and the
    next poll still renders the running proxy's URLs, signed with its key."""
    _origin, upstream = world
    service = _service(tmp_path, upstream, "all", interval=1)
    with service:
        before = service.wait_served("pics").body
        service.images["proxy"] = "off"
        service.write_config()
        service.reload()
        wait_for(lambda: service.events("reloaded"), 10, "the reload")
        warned = [r for r in service.logs() if "[images]" in str(r.get("event"))]
        assert warned and warned[0]["level"] == "warning"
        polls = len(service.polls("pics"))
        service.wait_for_poll("pics", after=polls)
        assert service.feed("pics").body == before
    service.stop()
