"""Fetching an upstream feed over HTTP: conditional, bounded, and explicit about failure.

Every limit is a parameter: connect and total time, body size (counted after decompression,
so a gzip bomb stops at the cap), redirects. A failure raises FetchError with a short reason
that names the URL; it never returns a half-read body.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from feedfix.core.errors import FeedfixError

CHUNK = 64 * 1024
PERMANENT = {301, 308}
REDIRECTS = {301, 302, 303, 307, 308}


class FetchError(FeedfixError):
    """The upstream could not be fetched; ``kind`` sorts failures for metrics and health."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after: str | None = None


@dataclass(frozen=True)
class FetchRequest:
    """One conditional GET and its limits."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_size: int = 10 * 1000 * 1000
    user_agent: str = "feedfix"
    headers: tuple[tuple[str, str], ...] = ()
    max_redirects: int = 5
    allow_private_redirects: bool = False


@dataclass(frozen=True)
class FetchResult:
    """A 200 with its body, or a 304 without one."""

    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    charset: str | None
    content_type: str | None
    cache_control: str | None
    retry_after: str | None
    final_url: str
    permanent_redirect: str | None
    elapsed: float


def _request_headers(request: FetchRequest, redirected_to: str | None = None) -> dict[str, str]:
    headers = {
        "User-Agent": request.user_agent,
        "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, "
        "text/xml;q=0.9, */*;q=0.1",
        "Accept-Encoding": "gzip, deflate, br",
    }
    headers.update(dict(request.headers))
    if redirected_to is not None:
        return headers  # validators belong to the configured URL, not to where it led
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    return headers


async def fetch(session: aiohttp.ClientSession, request: FetchRequest) -> FetchResult:
    """GET the feed; raises FetchError for anything but a usable 200 or a 304.

    Redirects are followed here rather than by aiohttp, so that each hop can be checked: one
    that leaves the configured host for a loopback, private or link-local address is refused
    (unless allowed), because a feed must not become a way to reach the inside of the network.
    """
    started = time.monotonic()
    try:
        async with asyncio.timeout(request.timeout):
            return await _follow(session, request, started)
    except FetchError:
        raise
    except aiohttp.ConnectionTimeoutError as exc:
        raise FetchError(
            "timeout", f"{request.url}: could not connect within {request.connect_timeout:g} s"
        ) from exc
    except TimeoutError as exc:
        raise FetchError(
            "timeout", f"{request.url}: no complete answer within {request.timeout:g} s"
        ) from exc
    except aiohttp.ClientConnectorError as exc:
        err = exc.os_error
        reason = os.strerror(err.errno) if err.errno and err.errno > 0 else str(err or exc)
        raise FetchError("connect", f"{request.url}: cannot connect: {reason}") from exc
    except aiohttp.ClientResponseError as exc:
        raise FetchError("http", f"{request.url}: bad response: {exc.message}") from exc
    except aiohttp.ClientPayloadError as exc:
        raise FetchError("body", f"{request.url}: body cut short or undecodable: {exc}") from exc
    except (aiohttp.ClientError, asyncio.IncompleteReadError, ValueError) as exc:
        raise FetchError("network", f"{request.url}: {type(exc).__name__}: {exc}") from exc


_STAY_OUTSIDE = contextvars.ContextVar("feedfix_stay_outside", default=False)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, but while a redirect hop that must stay outside is connecting, its
    loopback and private answers are dropped.

    The check before such a hop resolves the name once; aiohttp resolves it again to connect,
    and a name can answer differently the second time (DNS rebinding). Use it with
    ``use_dns_cache=False``, so that every connection asks.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self.inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The inner resolver's answers; only outside ones during an outward hop."""
        answers = await self.inner.resolve(host, port, family)
        if not _STAY_OUTSIDE.get():
            return answers
        outside = [a for a in answers if not _internal_address(a["host"])]
        if not outside:
            raise OSError(f"{host} now resolves to a loopback or private address: refused")
        return outside

    async def close(self) -> None:
        """Close the inner resolver."""
        await self.inner.close()


async def _follow(
    session: aiohttp.ClientSession, request: FetchRequest, started: float
) -> FetchResult:
    token = _STAY_OUTSIDE.set(False)  # each hop sets it for the resolver; cleared after
    try:
        return await _hops(session, request, started)
    finally:
        _STAY_OUTSIDE.reset(token)


async def _hops(
    session: aiohttp.ClientSession, request: FetchRequest, started: float
) -> FetchResult:
    timeout = aiohttp.ClientTimeout(
        total=request.timeout, connect=request.connect_timeout, sock_read=request.timeout
    )
    url, permanent = request.url, None
    origin = (urlsplit(request.url).hostname or "").lower()
    for hop in range(request.max_redirects + 1):
        headers = _request_headers(request) if hop == 0 else _request_headers(request, url)
        outward = (urlsplit(url).hostname or "").lower() != origin
        _STAY_OUTSIDE.set(outward and not request.allow_private_redirects)
        async with session.get(
            url, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            location = response.headers.get("Location")
            if response.status in REDIRECTS and location:
                target = await _checked_target(url, location, origin, request)
                if response.status in PERMANENT and (hop == 0 or permanent is not None):
                    permanent = target  # every hop so far permanent: the feed has moved
                url = target
                continue
            if response.status == 304:
                return _result(response, b"", started, permanent)
            if response.status != 200:
                error = FetchError("http", f"{url}: HTTP {response.status}", status=response.status)
                error.retry_after = response.headers.get("Retry-After")
                raise error
            body = await _read_capped(response, request)
            return _result(response, body, started, permanent)
    raise FetchError("redirects", f"{request.url}: more than {request.max_redirects} redirects")


async def _checked_target(url: str, location: str, origin: str, request: FetchRequest) -> str:
    target = urljoin(url, location.strip())
    parts = urlsplit(target)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise FetchError("redirect", f"{url}: refused a redirect to {target!r} (not http/https)")
    host = parts.hostname.lower()
    if host != origin and not request.allow_private_redirects and await is_internal(host):
        raise FetchError(
            "redirect",
            f"{url}: refused a redirect to {target} (a loopback or private address; "
            "set [poll] allow_private_redirects = true to allow)",
        )
    return target


def _internal_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
        or ip.is_multicast or ip.is_unspecified
    )  # fmt: skip


async def is_internal(host: str) -> bool:
    """Whether ``host`` is, or resolves to, an address inside this machine or network."""
    try:
        return _internal_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return False  # the request itself will fail to connect and say so
    return any(_internal_address(str(info[4][0])) for info in infos)


async def _read_capped(response: aiohttp.ClientResponse, request: FetchRequest) -> bytes:
    declared = response.content_length
    if declared is not None and declared > request.max_size:
        raise FetchError(
            "too-large",
            f"{request.url}: body of {declared:,} bytes is over the {request.max_size:,}-byte cap",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > request.max_size:
            raise FetchError(
                "too-large", f"{request.url}: body over the {request.max_size:,}-byte cap"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _result(
    response: aiohttp.ClientResponse, body: bytes, started: float, permanent: str | None
) -> FetchResult:
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
        final_url=str(response.url),
        permanent_redirect=permanent,
        elapsed=time.monotonic() - started,
    )
