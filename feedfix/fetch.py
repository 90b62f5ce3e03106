"""Fetching an upstream feed over HTTP: conditional, bounded, and explicit about failure.

Every limit is a parameter: connect and total time, body size (counted after decompression,
so a gzip bomb stops at the cap), redirects. A failure raises FetchError with a short reason
that names the URL; it never returns a half-read body.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from feedfix.errors import FeedfixError

CHUNK = 64 * 1024
PERMANENT = {301, 308}


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


def _request_headers(request: FetchRequest) -> dict[str, str]:
    headers = {
        "User-Agent": request.user_agent,
        "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, "
        "text/xml;q=0.9, */*;q=0.1",
        "Accept-Encoding": "gzip, deflate, br",
    }
    headers.update(dict(request.headers))
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    return headers


async def fetch(session: aiohttp.ClientSession, request: FetchRequest) -> FetchResult:
    """GET the feed; raises FetchError for anything but a usable 200 or a 304."""
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(
        total=request.timeout, connect=request.connect_timeout, sock_read=request.timeout
    )
    try:
        async with session.get(
            request.url,
            headers=_request_headers(request),
            timeout=timeout,
            allow_redirects=True,
            max_redirects=request.max_redirects,
        ) as response:
            permanent = _permanent_redirect(response)
            if response.status == 304:
                return _result(response, b"", started, permanent)
            if response.status != 200:
                error = FetchError(
                    "http", f"{request.url}: HTTP {response.status}", status=response.status
                )
                error.retry_after = response.headers.get("Retry-After")
                raise error
            body = await _read_capped(response, request)
            return _result(response, body, started, permanent)
    except FetchError:
        raise
    except aiohttp.TooManyRedirects:
        raise FetchError(
            "redirects", f"{request.url}: more than {request.max_redirects} redirects"
        ) from None
    except TimeoutError:
        raise FetchError(
            "timeout", f"{request.url}: no complete answer within {request.timeout:g} s"
        ) from None
    except aiohttp.ClientConnectorError as exc:
        raise FetchError(
            "connect", f"{request.url}: cannot connect: {exc.os_error or exc}"
        ) from None
    except aiohttp.ClientResponseError as exc:
        raise FetchError("http", f"{request.url}: bad response: {exc.message}") from None
    except aiohttp.ClientPayloadError as exc:
        raise FetchError("body", f"{request.url}: body cut short or undecodable: {exc}") from None
    except (aiohttp.ClientError, asyncio.IncompleteReadError, ValueError) as exc:
        raise FetchError("network", f"{request.url}: {type(exc).__name__}: {exc}") from None


def _permanent_redirect(response: aiohttp.ClientResponse) -> str | None:
    for step in response.history:
        if step.status in PERMANENT:
            return str(response.url)
    return None


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
