"""A scripted upstream for the service tests, and ZAKER-shaped fixture feeds made in code.

`Upstream` is an aiohttp server on 127.0.0.1 (a free port) that runs in a background thread
with its own event loop, so a test can point a `feedfix serve` subprocess at it. What it does
for each path is a `Reply`, set (and changed between polls) with `Upstream.script`; the helpers
below build the replies the tests need: a feed with a strong ETag that answers 304 to a
matching If-None-Match, 5xx, 429 with Retry-After, a slow or hanging answer, RSSHub's HTML
error page sent as a 200, truncated XML, an oversize body, a gzip-encoded body, a redirect;
and for the fault tests a body that drips a byte at a time, a transfer cut short of its
Content-Length, a gzip bomb, a redirect to an absolute URL, XML that is not a feed.
Every request is recorded (method, path, headers, time), so tests can assert on conditional
headers, the User-Agent, configured extra headers and the number of polls.

`zaker_rss` builds an RSS 2.0 channel shaped like RSSHub's ZAKER output (see
tests/data/zaker-classic.rss.xml): lazy images wrapped in `https://cors.zfour.workers.dev/?…`,
bare `onclick`, empty trailer divs. Items are numbered; higher numbers are newer, so a test
rotates the upstream's window by serving a different range.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gzip
import hashlib
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from xml.sax.saxutils import escape

from aiohttp import web

RSS_TYPE = "application/rss+xml; charset=utf-8"
WRAPPER = "https://cors.zfour.workers.dev/?"
# Item n is dated ANCHOR + n * 10 min: recent enough for the default keep_days, fixed per run.
ANCHOR = (int(time.time()) // 3600 - 72) * 3600
UPSTREAM_LAST_MODIFIED = formatdate(ANCHOR, usegmt=True)

# ---- replies --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the upstream does for one path (build these with the functions below)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None  # sent, and a matching If-None-Match gets a 304
    last_modified: str | None = None  # sent; used for If-Modified-Since when there is no INM
    delay: float = 0.0  # seconds to wait before sending the status line and headers
    hang: float = 0.0  # after the headers and the body, keep the connection open this long
    chunked: bool = False  # no Content-Length: the body goes out in chunks
    redirect: str | None = None  # a path of this upstream (or an absolute URL), as Location
    drip: float = 0.0  # seconds between the body's bytes, sent one at a time
    cut: int | None = None  # send this many body bytes of a full Content-Length, then close


def strong_etag(body: bytes) -> str:
    """A strong ETag derived from the bytes, as a real upstream would send."""
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def feed(
    body: bytes,
    *,
    etag: bool = True,
    last_modified: str | None = UPSTREAM_LAST_MODIFIED,
    content_type: str = RSS_TYPE,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A good feed with validators (a content ETag and a Last-Modified date)."""
    return Reply(
        body=body,
        headers={"Content-Type": content_type, **(headers or {})},
        etag=strong_etag(body) if etag else None,
        last_modified=last_modified,
    )


def error(status: int = 500, headers: Mapping[str, str] | None = None) -> Reply:
    """An HTTP error (500, 502, 503, 504…) with a short text body."""
    return Reply(
        status=status,
        body=f"upstream error {status}\n".encode(),
        headers={"Content-Type": "text/plain; charset=utf-8", **(headers or {})},
    )


def too_many_requests(retry_after: str = "3") -> Reply:
    """429 Too Many Requests with a Retry-After header (seconds or an HTTP date)."""
    return error(429, {"Retry-After": retry_after})


RSSHUB_ERROR_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Error | RSSHub</title></head>
<body><div class="container"><h1>Looks like something went wrong in RSSHub!</h1>
<p class="message">Error message: <code>FetchError: [GET] "https://www.myzaker.com/channel/13":
503 Service Unavailable</code></p><p>Route: /zaker/channel/13</p></div></body></html>
"""


# RSSHub's answer when a route produced no items ("this route is empty"), as sent with a 404.
RSSHUB_EMPTY_ROUTE_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Error | RSSHub</title></head>
<body><div class="container"><h1>Looks like something went wrong in RSSHub!</h1>
<p class="message">Error message: <code>this route is empty, please check the original site
or create an issue</code></p><p>Route: /zaker/channel/13</p></div></body></html>
"""


def html_error_page(status: int = 200, page: bytes = RSSHUB_ERROR_PAGE) -> Reply:
    """RSSHub's error page, by default with status 200 (the failure that looks like a success);
    ``status=404, page=RSSHUB_EMPTY_ROUTE_PAGE`` is its "this route is empty" answer."""
    return Reply(status=status, body=page, headers={"Content-Type": "text/html; charset=utf-8"})


def not_a_feed() -> Reply:
    """Well-formed XML served as a feed that is not one (a ``<note>`` document)."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<note><to>Tove</to><from>Jani</from><body>Not a feed.</body></note>\n"
    )
    return Reply(body=body, headers={"Content-Type": RSS_TYPE}, etag=strong_etag(body))


def truncated(body: bytes, keep: float = 0.6) -> Reply:
    """A feed cut off part-way (complete HTTP response, broken XML), with its own ETag."""
    cut = body[: int(len(body) * keep)]
    return Reply(body=cut, headers={"Content-Type": RSS_TYPE}, etag=strong_etag(cut))


def oversize(size: int, *, chunked: bool = False) -> Reply:
    """A body of ``size`` bytes: declared in Content-Length, or streamed without one."""
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><!-- '
    body = head + b"x" * max(0, size - len(head))
    return Reply(body=body, headers={"Content-Type": RSS_TYPE}, chunked=chunked)


def gzipped(body: bytes) -> Reply:
    """A feed sent with ``Content-Encoding: gzip``."""
    return Reply(
        body=gzip.compress(body, mtime=0),
        headers={"Content-Type": RSS_TYPE, "Content-Encoding": "gzip"},
        etag=strong_etag(body),
    )


def redirect(to_path: str, status: int = 301) -> Reply:
    """A redirect to another path of this upstream, or to an absolute ``http://…`` URL."""
    return Reply(status=status, redirect=to_path)


def drip(reply: Reply, per_byte: float = 1.0) -> Reply:
    """``reply`` with its body sent one byte every ``per_byte`` seconds (a slow drip)."""
    return dataclasses.replace(reply, drip=per_byte, chunked=True)


def cut_short(body: bytes, keep: float = 0.5) -> Reply:
    """A response that declares ``len(body)`` in Content-Length, sends part of it and closes
    the connection (a transfer cut short, unlike `truncated`, whose HTTP is complete)."""
    return Reply(body=body, headers={"Content-Type": RSS_TYPE}, cut=int(len(body) * keep))


def gzip_bomb(expanded: int = 32 * 1000 * 1000) -> Reply:
    """A gzip body that is small on the wire and ``expanded`` bytes once decompressed: the start
    of an RSS document and then one long comment of spaces."""
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><!-- '
    return Reply(
        body=_bomb(head, expanded),
        headers={"Content-Type": RSS_TYPE, "Content-Encoding": "gzip"},
    )


@functools.cache
def _bomb(head: bytes, expanded: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    parts = [packer.compress(head)]
    block = b" " * (1024 * 1024)
    for _ in range(max(0, expanded - len(head)) // len(block)):
        parts.append(packer.compress(block))
    parts.append(packer.flush())
    return b"".join(parts)


def slow(reply: Reply, seconds: float) -> Reply:
    """``reply``, after waiting ``seconds`` before the status line and headers."""
    return dataclasses.replace(reply, delay=seconds)


def hang(seconds: float = 60.0) -> Reply:
    """A 200 that sends its headers and the start of a feed, then stalls."""
    start = b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>'
    return Reply(body=start, headers={"Content-Type": RSS_TYPE}, hang=seconds, chunked=True)


# ---- the server -----------------------------------------------------------------------------


@dataclass
class Recorded:
    """One request the upstream received."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names lower-cased
    at: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival
    status: int | None = None  # what the upstream answered (None while in flight)

    def header(self, name: str) -> str | None:
        """A request header, by case-insensitive name."""
        return self.headers.get(name.lower())


class Upstream:
    """A scripted HTTP upstream in a thread of its own; use as a context manager."""

    def __init__(self, port: int = 0) -> None:
        self.port = port  # 0: a free port, chosen at start (a stopped one's port to restart it)
        self.requests: list[Recorded] = []
        self._routes: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None

    # -- life cycle

    def start(self) -> Upstream:
        """Listen on a free port of 127.0.0.1; returns once requests can be served."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"the upstream did not start: {failure}")
        return self

    async def _start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        """Stop listening (connections are then refused) and end the thread."""
        loop, runner = self._loop, self._runner
        if loop is None or runner is None or loop.is_closed():
            return
        if self._closing is not None:
            loop.call_soon_threadsafe(self._closing.set)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._runner = None

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection

    def url(self, path: str) -> str:
        """The absolute URL of a path of this upstream."""
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, reply: Reply | None) -> None:
        """What ``path`` answers from now on (None: 404)."""
        with self._lock:
            if reply is None:
                self._routes.pop(path, None)
            else:
                self._routes[path] = reply

    def requests_for(self, path: str) -> list[Recorded]:
        """The requests received for ``path`` (query string ignored), oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def wait_for_requests(
        self,
        path: str,
        count: int,
        timeout: float = 10.0,
        *,
        answered: bool = True,
        where: Callable[[Recorded], bool] | None = None,
    ) -> list[Recorded]:
        """Wait until ``path`` got ``count`` requests (answered ones, matching ``where``)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                r
                for r in self.requests_for(path)
                if (not answered or r.status is not None) and (where is None or where(r))
            ]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"upstream {path}: expected {count} requests within {timeout:g} s, "
                    f"got {len(found)}: {[(r.method, r.status) for r in found]}"
                )
            time.sleep(0.02)

    # -- serving

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the upstream stops."""
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        record = Recorded(
            method=request.method,
            path=request.path_qs,
            headers={k.lower(): v for k, v in request.headers.items()},
            at=time.monotonic(),
            wall=time.time(),
        )
        with self._lock:
            self.requests.append(record)
            reply = self._routes.get(request.path)
        if reply is None:
            record.status = 404
            return web.Response(status=404, text="no such path\n")
        if reply.delay:
            await self._sleep(reply.delay)
        headers = dict(reply.headers)
        if reply.redirect is not None:
            target = reply.redirect
            headers["Location"] = target if "://" in target else self.url(target)
        if reply.etag:
            headers["ETag"] = reply.etag
        if reply.last_modified:
            headers["Last-Modified"] = reply.last_modified
        if reply.status == 200 and _not_modified(request, reply):
            record.status = 304
            kept = {k: v for k, v in headers.items() if k in {"ETag", "Last-Modified"}}
            return web.Response(status=304, headers=kept)
        record.status = reply.status
        if reply.cut is not None:
            return await self._cut(request, reply, headers)
        if not (reply.chunked or reply.hang):
            return web.Response(status=reply.status, body=reply.body, headers=headers)
        response = web.StreamResponse(status=reply.status, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            step = 1 if reply.drip else 16 * 1024
            for start in range(0, len(reply.body), step):
                await response.write(reply.body[start : start + step])
                if reply.drip:
                    await self._sleep(reply.drip)
            if reply.hang:
                await self._sleep(reply.hang)
            await response.write_eof()
        except ConnectionError:  # the client gave up (a timeout): nothing more to send
            pass
        return response

    async def _cut(
        self, request: web.Request, reply: Reply, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Promise the whole body in Content-Length, send ``reply.cut`` bytes, then close."""
        response = web.StreamResponse(status=reply.status, headers=headers)
        response.content_length = len(reply.body)
        await response.prepare(request)
        await response.write(reply.body[: reply.cut])
        await asyncio.sleep(0.05)  # let the partial body leave before the connection closes
        if request.transport is not None:
            request.transport.close()
        return response


def _not_modified(request: web.Request, reply: Reply) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        return reply.etag is not None and reply.etag in {t.strip() for t in inm.split(",")}
    ims = request.headers.get("If-Modified-Since")
    if ims and reply.last_modified:
        try:
            since = parsedate_to_datetime(ims)
            modified = parsedate_to_datetime(reply.last_modified)
        except (TypeError, ValueError):
            return False
        return modified <= since
    return False


# ---- ZAKER-shaped fixture feeds -------------------------------------------------------------


@dataclass(frozen=True)
class ZakerItem:
    """Item number ``n`` of the generated channel (a higher number is a newer item)."""

    n: int

    @property
    def key(self) -> str:
        """A 24-hex-digit article id, as ZAKER's."""
        return f"6410{self.n:04x}b15ec0aa1111{self.n:04x}"

    @property
    def title(self) -> str:
        """The item's title."""
        return f"第 {self.n} 条：开源数据库发布 {self.n}.0 版本"

    @property
    def link(self) -> str:
        """The article URL (also the guid)."""
        return f"http://www.myzaker.com/article/{self.key}"

    @property
    def images(self) -> tuple[str, str]:
        """The origin URLs of the item's two images (what a clean feed must show)."""
        return (
            f"http://zkres1.myzaker.com/202303/{self.key}_1024.jpg",
            f"http://zkres2.myzaker.com/202303/{self.key}_640.jpg?v={self.n}",
        )

    @property
    def published(self) -> float:
        """Epoch seconds of the item's pubDate."""
        return float(ANCHOR + self.n * 600)

    def description(self) -> str:
        """The item's HTML as RSSHub's ZAKER route makes it: wrapped lazy images and junk."""
        boxes = []
        for index, origin in enumerate(self.images):
            boxes.append(
                f'<p></p><div class="img_box" id="id_imagebox_{index}" onclick>'
                '<div class="content_img_div perview_img_div">'
                f'<img class="lazy opacity_0 " id="img_{index}" data-original="{origin}" '
                f'data-height="480" data-width="800" src="{WRAPPER}{origin}" '
                'referrerpolicy="no-referrer"></div></div>'
                f"（第 {self.n} 条的第 {index + 1} 张图）<p></p>"
            )
        return (
            f"<p><strong>第 {self.n} 条新闻的导语。</strong>新版本重写了查询规划器。</p>"
            f"{boxes[0]}<p>第 {self.n} 条新闻的正文段落，讲述升级的细节。</p>"
            f"{boxes[1]}<p>第 {self.n} 条新闻的结尾。</p>"
            '<div id="recommend_bottom"></div><div id="article_bottom"></div>'
        )

    def xml(self) -> str:
        """The ``<item>`` element."""
        return (
            "<item>\n"
            f"<title><![CDATA[{self.title}]]></title>\n"
            f"<description><![CDATA[{self.description()}]]></description>\n"
            f"<pubDate>{formatdate(self.published, usegmt=True)}</pubDate>\n"
            f'<guid isPermaLink="false">{self.link}</guid>\n'
            f"<link>{self.link}</link>\n"
            "</item>\n"
        )


def zaker_items(numbers: Iterable[int]) -> list[ZakerItem]:
    """Items by number, newest (highest) first, as RSSHub lists them."""
    return [ZakerItem(n) for n in sorted(set(numbers), reverse=True)]


def titles(numbers: Iterable[int]) -> list[str]:
    """The titles of items ``numbers``, newest first, as a served feed lists them."""
    return [item.title for item in zaker_items(numbers)]


def zaker_rss(
    numbers: Iterable[int],
    *,
    title: str = "ZAKER 测试频道",
    channel: int = 99,
    ttl: int | None = None,
    build_date: float | None = None,
) -> bytes:
    """An RSSHub-style ZAKER channel with items ``numbers`` (no ``<ttl>`` unless given)."""
    items = zaker_items(numbers)
    built = build_date if build_date is not None else max((i.published for i in items), default=0)
    ttl_line = f"<ttl>{ttl}</ttl>\n" if ttl is not None else ""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">\n<channel>\n'
        f"<title><![CDATA[{title}]]></title>\n"
        f"<link>http://www.myzaker.com/channel/{channel}</link>\n"
        f'<atom:link href="http://rsshub.example/zaker/channel/{channel}" rel="self" '
        'type="application/rss+xml" />\n'
        f"<description>{escape(title)} - Made with love by RSSHub"
        "(https://github.com/DIYgod/RSSHub)</description>\n"
        "<generator>RSSHub</generator>\n<language>zh-cn</language>\n"
        f"<lastBuildDate>{formatdate(built, usegmt=True)}</lastBuildDate>\n"
        f"{ttl_line}"
        f"{''.join(item.xml() for item in items)}"
        "</channel>\n</rss>\n"
    )
    return text.encode("utf-8")
