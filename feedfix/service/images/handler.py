"""``GET``/``HEAD /img/…``: verify, look up or fetch once, and answer like a static server.

The signature is checked before anything else, so a forged URL costs one HMAC and never a
fetch. Cached bodies go out with ``sendfile`` (no copy through Python); conditional and
range requests are answered from the index row alone. Every answer, errors included, carries
``nosniff`` and a CSP that forbids everything (SVG, when allowed, can't run scripts).

``ImageHandler.cached`` answers a request for a cached image without aiohttp and without
awaiting anything: it is the seam for a fast path in front of aiohttp (``http/fastpath.py``),
which then sends ``CachedReply.path`` itself; anything else (a miss, an error) it leaves
to ``handle``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from aiohttp import web

from feedfix.core.imagesign import BadSignature, ImageURLError, Verified, verify
from feedfix.service.images.cache import ImageCache
from feedfix.service.images.fetch import ImageFetchError
from feedfix.service.images.meta import CacheEntry
from feedfix.service.images.metrics import ImageMetrics

IMMUTABLE = "public, max-age=31536000, immutable"  # the signed URL names the content
CSP = "default-src 'none'"
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
VERIFIED = 1024  # recently verified paths remembered (each at most VERIFIED_PATH characters)
VERIFIED_PATH = 1024
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")  # longer: ignored, as malformed


def _security(svg: bool = False) -> dict[str, str]:
    return {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SVG_CSP if svg else CSP,
        "Cross-Origin-Resource-Policy": "cross-origin",
    }


def _error(status: int, text: str) -> web.Response:
    """A short plain-text refusal; not cacheable by readers (unlike the images)."""
    headers = _security() | {"Cache-Control": "no-store"}
    return web.Response(status=status, text=text + "\n", headers=headers)


def _etag_listed(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, as RFC 9110 asks)."""
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def byte_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """``(start, count)`` for a single satisfiable range; None to ignore the header (absent,
    malformed or several ranges: the whole body is sent); False when unsatisfiable (416)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), min(suffix, size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        return False
    return start, end - start + 1


@dataclass(frozen=True)
class CachedReply:
    """An answer for an image in the cache: status and headers, then ``count`` bytes of the
    body from ``start`` (none for 304, 416 and HEAD)."""

    key: str
    status: int
    headers: dict[str, str]
    path: str
    start: int = 0
    count: int = 0


def reply_for(entry: CacheEntry, path: str, method: str, headers: Mapping[str, str]) -> CachedReply:
    """The answer to a GET/HEAD for ``entry``: 200, 206, 304 or 416, from the row alone."""
    base = _security(entry.media_type == "image/svg+xml") | {
        "ETag": entry.etag,
        "Cache-Control": IMMUTABLE,
    }
    inm = headers.get("If-None-Match")
    if inm is not None and _etag_listed(inm, entry.etag):
        return CachedReply(entry.key, 304, base, path)
    if_range = headers.get("If-Range")
    wanted = None if if_range not in (None, entry.etag) else headers.get("Range")
    span = byte_range(wanted, entry.size)
    if span is False:
        base |= {"Content-Range": f"bytes */{entry.size}", "Cache-Control": "no-store"}
        return CachedReply(entry.key, 416, base, path)
    start, count = span if isinstance(span, tuple) else (0, entry.size)
    base |= {
        "Content-Type": entry.media_type,
        "Accept-Ranges": "bytes",
        "Content-Length": str(count),
    }
    if isinstance(span, tuple):
        base["Content-Range"] = f"bytes {start}-{start + count - 1}/{entry.size}"
    status = 206 if isinstance(span, tuple) else 200
    return CachedReply(entry.key, status, base, path, start, 0 if method == "HEAD" else count)


class ImageHandler:
    """The aiohttp handler; ``keys``: the signing key first, then old ones still accepted."""

    def __init__(self, cache: ImageCache, keys: Sequence[bytes], metrics: ImageMetrics) -> None:
        self.cache = cache
        self.keys = tuple(keys)
        self.metrics = metrics
        self._verified = lru_cache(maxsize=VERIFIED)(self._verify)

    def _verify(self, path: str) -> Verified:
        return verify(path, self.keys)

    def verified(self, path: str) -> Verified:
        """``verify`` with the keys, remembered for recent paths: the same path under the
        same keys always verifies the same way, and hot images are asked for again and
        again. Failures are not remembered (they raise); long paths are not kept."""
        return self._verified(path) if len(path) <= VERIFIED_PATH else self._verify(path)

    def cached(self, method: str, path: str, headers: Mapping[str, str]) -> CachedReply | None:
        """The answer for a cached image (counted as a hit), or None for anything else."""
        if method not in ("GET", "HEAD"):
            return None
        try:
            lookup = self.cache.peek(self.verified(path))
        except ImageURLError:
            return None
        if lookup is None:
            return None
        reply = reply_for(lookup.entry, lookup.path, method, headers)
        self.metrics.count("hit", served=reply.count)
        return reply

    def hit(self, key: str, served: int) -> None:
        """Count a hit answered from a remembered reply (``http/image_front.py``), and
        record the use."""
        self.cache.used(key)
        self.metrics.count("hit", served=served)

    def listen(self, forget: Callable[[str], None]) -> None:
        """Call ``forget(key)`` whenever the cache evicts or forgets an image (the fast
        path's remembered answers must not outlive their entry)."""
        self.cache.listeners.append(forget)

    def missing(self, key: str) -> None:
        """Tell the cache that an image's file has gone (a fast path calls this, then hands
        the request to ``handle``, which fetches the image again)."""
        self.cache.forget(key)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one image request (route this bound method: aiohttp wants a coroutine)."""
        if request.method not in ("GET", "HEAD"):
            response = _error(405, "method not allowed")
            response.headers["Allow"] = "GET, HEAD"
            return response
        reply = self.cached(request.method, request.path, request.headers)
        if reply is not None:
            try:
                return await _send(request, reply)
            except FileNotFoundError:
                self.missing(reply.key)
        try:
            verified = self.verified(request.path)
        except BadSignature:
            self.metrics.count("bad_signature")
            return _error(403, "bad signature")
        except ImageURLError as exc:
            self.metrics.count("malformed")
            return _error(400, str(exc))
        try:
            lookup = await self.cache.get(verified)
        except ImageFetchError as exc:
            self.metrics.count(exc.outcome)
            return _error(exc.status, str(exc))
        reply = reply_for(lookup.entry, lookup.path, request.method, request.headers)
        self.metrics.count(lookup.outcome, served=reply.count, fetched=lookup.fetched)
        if lookup.body is None:
            return await _send(request, reply)
        body = lookup.body[reply.start : reply.start + reply.count] if reply.count else None
        return _memory(reply, body)  # just fetched: from memory while it is being written


def _memory(reply: CachedReply, body: bytes | None) -> web.Response:
    headers = dict(reply.headers)
    length = headers.pop("Content-Length", None)
    response = web.Response(status=reply.status, body=body, headers=headers)
    if length is not None and body is None:  # HEAD: the length of what GET would send
        response.headers["Content-Length"] = length
    return response


async def _send(request: web.Request, reply: CachedReply) -> web.StreamResponse:
    """Send a reply, its body with the kernel's sendfile.

    The file is opened before anything is sent, so a missing file raises FileNotFoundError
    while the handler can still fetch the image again.
    """
    if reply.status in (304, 416):
        return web.Response(status=reply.status, headers=reply.headers)
    with open(reply.path, "rb") as body:  # noqa: PTH123 (a str path: no Path per request)
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        try:
            await response.prepare(request)
            transport = request.transport
            if reply.count and transport is not None:
                await _sendfile(response, transport, body, reply.start, reply.count)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the reader hung up mid-image (asyncio says "Transport is closing")
    return response


async def _sendfile(
    response: web.StreamResponse,
    transport: asyncio.Transport,
    body: BinaryIO,
    start: int,
    count: int,
) -> None:
    """What the socket takes at once goes straight from the page cache (one ``sendfile``
    call, no event-loop round: most images fit in a loopback or LAN send buffer); the rest,
    if any, through asyncio's sendfile, which waits for the socket."""
    sent = _send_now(transport, body.fileno(), start, count)
    if sent == count:
        return
    try:
        await asyncio.get_running_loop().sendfile(transport, body, start + sent, count - sent)
    except NotImplementedError:  # a transport without sendfile
        body.seek(start + sent)
        await response.write(body.read(count - sent))


def _send_now(transport: asyncio.Transport, fd: int, start: int, count: int) -> int:
    """Bytes sent right now; 0 unless the transport is a plain socket with nothing queued
    (anything queued must go first; a TLS transport must encrypt)."""
    sock = transport.get_extra_info("socket")
    if sock is None or transport.get_extra_info("sslcontext") is not None:
        return 0
    if transport.get_write_buffer_size() or transport.is_closing():
        return 0
    try:
        return os.sendfile(sock.fileno(), fd, start, count)
    except (BlockingIOError, InterruptedError):
        return 0
