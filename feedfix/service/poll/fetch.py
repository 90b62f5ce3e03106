"""Fetching an upstream feed over HTTP: conditional, bounded, and explicit about failure.

Every limit is a parameter: connect and total time, body size (counted after decompression,
so a gzip bomb stops at the cap), redirects. A failure raises one of the ``FetchError``
classes (``fetch_types.py``) with a short reason that names the URL; it never returns a
half-read body. The network is reached only through a ``Transport`` (``transport.py``).
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

from feedfix.service.addresses import AddressGuard, RefusedAddress
from feedfix.service.poll.fetch_types import (
    FetchError,
    FetchRequest,
    FetchResult,
    FetchTimeout,
    HttpStatusError,
    RedirectRefused,
    TooLarge,
    TooManyRedirects,
)
from feedfix.service.poll.transport import (
    AiohttpTransport,
    Hop,
    MockResponse,
    MockTransport,
    Response,
    Transport,
    refused_inward,
)

__all__ = [
    "AiohttpTransport",
    "FetchError",
    "FetchRequest",
    "FetchResult",
    "MockResponse",
    "MockTransport",
    "Transport",
    "fetch",
]

CHUNK = 64 * 1024
PERMANENT = {301, 308}
REDIRECTS = {301, 302, 303, 307, 308}
# Configured headers that prove who is asking: they go to the feed's own origin only.
CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_OUTSIDE_ONLY = AddressGuard()  # a redirect off the feed's host: nothing internal


class Origin(NamedTuple):
    """Scheme, host and port: what decides whether credentials may go along."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of ``url``, with the scheme's default port made explicit."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:  # a port out of range: no origin can equal it
            port = -1
        return cls(scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme))


def _request_headers(request: FetchRequest, *, first: bool, own_origin: bool) -> dict[str, str]:
    """The headers of one hop. Validators go with the configured URL only; credentials and
    cookies only while every hop so far stayed on the configured origin, as browsers do."""
    headers = {
        "User-Agent": request.user_agent,
        "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, "
        "text/xml;q=0.9, */*;q=0.1",
        "Accept-Encoding": "gzip, deflate, br",
    }
    for name, value in request.headers:
        if own_origin or name.lower() not in CREDENTIALS:
            headers[name] = value
    if first and request.etag:
        headers["If-None-Match"] = request.etag
    if first and request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    return headers


async def fetch(transport: Transport, request: FetchRequest) -> FetchResult:
    """GET the feed; raises a FetchError for anything but a usable 200 or a 304.

    Redirects are followed here rather than by the transport, so that each hop can be
    checked: one that leaves the configured host for an internal address (the rule of
    ``addresses.py``) is refused unless ``allow_private_redirects``, because a feed must not
    become a way to reach the inside of the network; and one that leaves the configured
    origin loses the credentials. An IP literal is refused here; a name is checked by the
    transport's guard when it connects (``Hop.stay_outside``), so it is looked up only once.
    """
    started = time.monotonic()
    try:
        async with asyncio.timeout(request.timeout):
            return await _hops(transport, request, started)
    except TimeoutError as exc:
        raise FetchTimeout(
            f"{request.url}: no complete answer within {request.timeout:g} s"
        ) from exc


async def _hops(transport: Transport, request: FetchRequest, started: float) -> FetchResult:
    url, permanent, came_from = request.url, None, ""
    origin = Origin.of(request.url)
    own_origin = True  # every hop so far stayed on the configured origin
    for hop in range(request.max_redirects + 1):
        own_origin = own_origin and Origin.of(url) == origin
        outward = Origin.of(url).host != origin.host
        sent = Hop(
            url=url,
            headers=_request_headers(request, first=hop == 0, own_origin=own_origin),
            timeout=request.timeout,
            connect_timeout=request.connect_timeout,
            stay_outside=outward and not request.allow_private_redirects,
            came_from=came_from,
        )
        async with transport.send(sent) as response:
            location = response.headers.get("Location")
            if response.status in REDIRECTS and location:
                target = _checked_target(url, location, origin.host, request)
                if response.status in PERMANENT and (hop == 0 or permanent is not None):
                    permanent = target  # every hop so far permanent: the feed has moved
                url, came_from = target, url
                continue
            if response.status == 304:
                return _result(response, b"", started, permanent)
            if response.status != 200:
                raise HttpStatusError(
                    f"{url}: HTTP {response.status}",
                    status=response.status,
                    retry_after=response.headers.get("Retry-After"),
                )
            body = await _read_capped(response, request)
            return _result(response, body, started, permanent)
    raise TooManyRedirects(f"{request.url}: more than {request.max_redirects} redirects")


def _checked_target(url: str, location: str, origin: str, request: FetchRequest) -> str:
    try:
        target = urljoin(url, location.strip())
        parts = urlsplit(target)
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 host
        raise RedirectRefused(f"{url}: refused a redirect to {location!r} (not a URL)") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise RedirectRefused(f"{url}: refused a redirect to {target!r} (not http/https)")
    host = parts.hostname.lower()
    if host != origin and not request.allow_private_redirects:
        try:  # a literal skips the resolver guard: judged as aiohttp will read it
            _OUTSIDE_ONLY.check_url(target)
        except RefusedAddress as exc:
            raise RedirectRefused(refused_inward(url, target)) from exc
        except ValueError as exc:  # a host yarl refuses (an empty IDNA label…)
            raise RedirectRefused(f"{url}: refused a redirect to {target!r} (not a URL)") from exc
    return target


async def _read_capped(response: Response, request: FetchRequest) -> bytes:
    declared = response.content_length
    if declared is not None and declared > request.max_size:
        raise TooLarge(
            f"{request.url}: body of {declared:,} bytes is over the {request.max_size:,}-byte cap"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.chunks(CHUNK):
        size += len(chunk)
        if size > request.max_size:
            raise TooLarge(f"{request.url}: body over the {request.max_size:,}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _result(response: Response, body: bytes, started: float, permanent: str | None) -> FetchResult:
    headers = response.headers
    return FetchResult(
        status=response.status,
        body=body,
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        charset=response.charset,
        content_type=response.content_type,
        cache_control=headers.get("Cache-Control"),
        retry_after=headers.get("Retry-After"),
        final_url=response.url,
        permanent_redirect=permanent,
        elapsed=time.monotonic() - started,
    )
