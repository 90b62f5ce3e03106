"""``GET``/``HEAD /img/…``: verify, look up or fetch once, and answer like a static server.

The signature is checked before anything else, so a forged URL costs one HMAC and never a
fetch. Cached bodies go out with ``sendfile`` (no copy through Python); conditional and
range requests are answered from the index row alone. Every answer, errors included, carries
``nosniff`` and a CSP that forbids everything (SVG, when allowed, can't run scripts).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from feedfix.core.imagesign import BadSignature, ImageURLError, verify
from feedfix.service.images.cache import ImageCache, Lookup
from feedfix.service.images.fetch import ImageFetchError
from feedfix.service.images.meta import CacheEntry
from feedfix.service.images.metrics import ImageMetrics

IMMUTABLE = "public, max-age=31536000, immutable"  # the signed URL names the content
CSP = "default-src 'none'"
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


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


class ImageHandler:
    """The aiohttp handler; ``keys``: the signing key first, then old ones still accepted."""

    def __init__(self, cache: ImageCache, keys: Sequence[bytes], metrics: ImageMetrics) -> None:
        self.cache = cache
        self.keys = tuple(keys)
        self.metrics = metrics

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one image request (route this bound method: aiohttp wants a coroutine)."""
        if request.method not in ("GET", "HEAD"):
            response = _error(405, "method not allowed")
            response.headers["Allow"] = "GET, HEAD"
            return response
        try:
            verified = verify(request.path, self.keys)
        except BadSignature:
            self.metrics.count("bad_signature")
            return _error(403, "bad signature")
        except ImageURLError as exc:
            self.metrics.count("malformed")
            return _error(400, str(exc))
        try:
            lookup = await self.cache.get(verified)
            try:
                return await self._send(request, lookup)
            except FileNotFoundError:
                self.cache.forget(lookup.entry.key)  # the file went away: fetch it again
                return await self._send(request, await self.cache.get(verified))
        except ImageFetchError as exc:
            self.metrics.count(exc.outcome)
            return _error(exc.status, str(exc))

    async def _send(self, request: web.Request, lookup: Lookup) -> web.StreamResponse:
        entry = lookup.entry
        headers = self._headers(entry)
        inm = request.headers.get("If-None-Match")
        if inm is not None and _etag_listed(inm, entry.etag):
            self.metrics.count(lookup.outcome, fetched=lookup.fetched)
            return web.Response(status=304, headers=headers)
        if_range = request.headers.get("If-Range")
        wanted = None if if_range not in (None, entry.etag) else request.headers.get("Range")
        span = byte_range(wanted, entry.size)
        if span is False:
            self.metrics.count(lookup.outcome, fetched=lookup.fetched)
            refusal = _error(416, "range not satisfiable")
            refusal.headers["Content-Range"] = f"bytes */{entry.size}"
            return refusal
        start, count = span if isinstance(span, tuple) else (0, entry.size)
        status = 206 if isinstance(span, tuple) else 200
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{start + count - 1}/{entry.size}"
        served = 0 if request.method == "HEAD" else count
        if lookup.body is not None:  # just fetched: from memory while it is being written
            sent: web.StreamResponse = web.Response(
                status=status, body=lookup.body[start : start + count], headers=headers
            )
        else:
            sent = await _send_file(
                request, lookup.path, start=start, count=count, status=status, headers=headers
            )
        self.metrics.count(lookup.outcome, served=served, fetched=lookup.fetched)
        return sent

    @staticmethod
    def _headers(entry: CacheEntry) -> dict[str, str]:
        return _security(entry.media_type == "image/svg+xml") | {
            "Content-Type": entry.media_type,
            "ETag": entry.etag,
            "Cache-Control": IMMUTABLE,
            "Accept-Ranges": "bytes",
        }


async def _send_file(
    request: web.Request, path: Path, *, start: int, count: int, status: int,
    headers: dict[str, str],
) -> web.StreamResponse:  # fmt: skip
    """Send ``count`` bytes of ``path`` from ``start`` with the kernel's sendfile.

    The file is opened before anything is sent, so a missing file raises FileNotFoundError
    while the handler can still fetch the image again.
    """
    with path.open("rb") as body:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = count
        try:
            await response.prepare(request)
            transport = request.transport
            if request.method != "HEAD" and count and transport is not None:
                try:
                    await asyncio.get_running_loop().sendfile(transport, body, start, count)
                except NotImplementedError:  # a transport without sendfile (TLS)
                    body.seek(start)
                    await response.write(body.read(count))
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the reader hung up mid-image (asyncio says "Transport is closing")
    return response
