"""An image origin on 127.0.0.1 for the image-proxy tests, a fake name server, and a runner
that serves the proxy handler in a real aiohttp app.

``ImageOrigin`` serves real images made with Pillow (PNG, JPEG, GIF, WebP, AVIF) and counts
every request by path. Paths:

- ``/plain/{name}``: any Referer; ``/weibo/{name}``: 403 unless ``Referer:
  https://weibo.com/``; ``/own/{name}``: 403 unless the Referer is this origin's own;
- ``/chunked/{name}``: the image without Content-Length; ``/slow/{name}?s=S``: after S s;
- ``/status/{code}``: that status with an HTML body; ``/redirect?to=URL``: a 302 to URL;
- ``/declared-2gb``: ``Content-Length: 2000000000`` then a PNG's first bytes, then hangs;
- ``/endless``: a chunked PNG that never ends; ``/drip``: a PNG one byte every 0.2 s;
- ``/html-as-png``, ``/svg-as-png``: HTML / an SVG with a script, sent as ``image/png``;
- ``/svg``: that SVG as ``image/svg+xml``; ``/cookie/{name}``: the image with a Set-Cookie.

``force_close`` makes every answer close its connection (so each fetch resolves the name).
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractResolver
from PIL import Image
from prometheus_client import CollectorRegistry

from feedfix.config import ImagesConfig
from feedfix.core.imagesign import NO_REFERER, Referer, proxied
from feedfix.service.images import ImageService, ImageSettings

KEY = b"test-key-for-the-image-proxy"
WEIBO = "https://weibo.com/"
SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>fetch('/steal?'+document.cookie)</script><rect width='10' height='10'/></svg>"
)
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>403 Forbidden</h1><script>x()</script></body></html>"


def make_image(fmt: str, size: tuple[int, int] = (32, 24), noise: bool = False) -> bytes:
    """A real image file in ``fmt`` (a Pillow format name); ``noise`` makes it big."""
    image = Image.new("RGB", size, (200, 40, 90))
    if noise:
        image = Image.frombytes("RGB", size, _noise(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def _noise(n: int) -> bytes:
    state, out = 12345, bytearray()
    while len(out) < n:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out += state.to_bytes(4, "little")
    return bytes(out[:n])


IMAGES: dict[str, tuple[bytes, str]] = {
    "a.png": (make_image("PNG"), "image/png"),
    "b.jpg": (make_image("JPEG"), "image/jpeg"),
    "c.gif": (make_image("GIF"), "image/gif"),
    "d.webp": (make_image("WEBP"), "image/webp"),
    "e.avif": (make_image("AVIF"), "image/avif"),
    "big.jpg": (make_image("JPEG", (300, 300), noise=True), "image/jpeg"),
}


class ImageOrigin:
    """The scripted origin; ``hits`` counts requests by path, ``headers`` keeps the last
    request's headers per path."""

    def __init__(self, force_close: bool = False) -> None:
        self.force_close = force_close
        self.hits: Counter[str] = Counter()
        self.headers: dict[str, Mapping[str, str]] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def total(self) -> int:
        """Requests received, all paths together."""
        return sum(self.hits.values())

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """An absolute URL of this origin."""
        return f"http://{host}:{self.port}{path}"

    async def start(self, port: int = 0) -> ImageOrigin:
        """Listen on 127.0.0.1 (a free port unless one is given)."""
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop listening (the origin is down)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        self.headers[request.path] = dict(request.headers)
        response = await self._route(request)
        if self.force_close:
            response.force_close()
        return response

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        head, name = parts[0], parts[-1]
        referer = request.headers.get("Referer")
        if head in ("plain", "weibo", "own", "chunked", "slow", "cookie") and name in IMAGES:
            want = {"weibo": WEIBO, "own": f"http://{request.host}/"}.get(head)
            if want is not None and referer != want:
                return web.Response(status=403, body=HTML_PAGE, content_type="text/html")
            body, media_type = IMAGES[name]
            if head == "slow":
                await asyncio.sleep(float(request.query.get("s", "1")))
            if head == "chunked":
                return await _stream(request, media_type, [body[:100], body[100:]])
            plain = web.Response(body=body, content_type=media_type)
            if head == "cookie":
                plain.set_cookie("session", "origin-secret")
            return plain
        if head == "status":
            return web.Response(status=int(name), body=HTML_PAGE, content_type="text/html")
        if head == "redirect":
            raise web.HTTPFound(request.query["to"])
        if head == "declared-2gb":
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            response.content_length = 2_000_000_000
            await response.prepare(request)
            await response.write(IMAGES["a.png"][0][:64])
            await asyncio.sleep(30)
            return response
        if head == "endless":
            return await _stream(request, "image/png", _forever(IMAGES["a.png"][0][:64]))
        if head == "drip":
            return await _drip(request)
        if head == "html-as-png":
            return web.Response(body=HTML_PAGE, headers={"Content-Type": "image/png"})
        if head == "svg-as-png":
            return web.Response(body=SVG_WITH_SCRIPT, headers={"Content-Type": "image/png"})
        if head == "svg":
            return web.Response(body=SVG_WITH_SCRIPT, headers={"Content-Type": "image/svg+xml"})
        return web.Response(status=404, body=HTML_PAGE, content_type="text/html")


def _forever(first: bytes) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        yield first
        while True:
            yield b"\0" * 65536
            await asyncio.sleep(0)

    return chunks()


async def _stream(
    request: web.Request, media_type: str, chunks: Sequence[bytes] | AsyncIterator[bytes]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": media_type})
    response.enable_chunked_encoding()
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        if isinstance(chunks, Sequence):
            for chunk in chunks:
                await response.write(chunk)
        else:
            async for chunk in chunks:
                await response.write(chunk)
        await response.write_eof()
    return response


async def _drip(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        for byte in IMAGES["a.png"][0] * 100:
            await response.write(bytes([byte]))
            await asyncio.sleep(0.2)
    return response


def settings(cache_dir: Path, **overrides: object) -> ImageSettings:
    """Test settings: small limits and short timeouts, loopback allowed unless overridden
    (``overrides`` are ``[images]`` keys)."""
    values: dict[str, object] = {
        "max_size": 1_000_000,
        "connect_timeout": 1.0,
        "timeout": 1.5,
        "remember_failures": 60.0,
        "allow_private": ("127.0.0.1",),
    }
    values.update(overrides)
    return ImageSettings((KEY,), cache_dir, ImagesConfig(**values))  # type: ignore[arg-type]


def sign(url: str, referer: Referer = NO_REFERER, key: bytes = KEY) -> str:
    """The proxy path (``/img/v1/…``) for ``url``."""
    return proxied("", key, url, referer)


@dataclass
class Proxy:
    """A running proxy app: its base URL, its parts, and its metrics registry."""

    base: str
    service: ImageService
    registry: CollectorRegistry

    def count(self, outcome: str) -> float:
        """Requests with ``outcome`` so far."""
        return self.service.metrics.value(outcome)


@contextlib.asynccontextmanager
async def serving(
    config: ImageSettings,
    metadata: Path | None,
    resolver: AbstractResolver | None = None,
    cancel_on_disconnect: bool = False,
) -> AsyncIterator[Proxy]:
    """The image handler in a real aiohttp app on 127.0.0.1, as the service will wire it
    (``cancel_on_disconnect``: aiohttp cancels a handler whose reader hangs up)."""
    registry = CollectorRegistry()
    service = ImageService.open(config, metadata, registry, resolver=resolver)
    app = web.Application()
    app.router.add_route("*", "/img/{rest:.*}", service.handler)
    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=0.1, handler_cancellation=cancel_on_disconnect
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Proxy(f"http://127.0.0.1:{port}", service, registry)
    finally:
        await runner.cleanup()
        await service.close()


@contextlib.contextmanager
def origin_thread() -> Iterator[tuple[ImageOrigin, asyncio.AbstractEventLoop]]:
    """The image origin in a thread with its own event loop (the service is a subprocess)."""
    loop = asyncio.new_event_loop()
    origin = ImageOrigin()
    thread = threading.Thread(target=loop.run_forever, name="image-origin", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(origin.start(), loop).result(10)
    try:
        yield origin, loop
    finally:
        asyncio.run_coroutine_threadsafe(origin.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
