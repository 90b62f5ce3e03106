"""The fetcher's only I/O seam: a transport sends one HTTP request (a hop) and streams its answer.

``fetch`` follows redirects, caps the body and decides what each hop may carry; the transport
only talks to the network. ``AiohttpTransport`` is the real one. ``MockTransport`` answers
from a function, in the style of httpx's, so that the fetcher and the poller can be tested in
one process, without sockets. A transport reports failure with the ``FetchError`` classes,
never with its library's exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy

from feedfix.service.addresses import REFUSED, AddressGuard, RefusedAddress
from feedfix.service.poll.fetch_types import (
    BadResponse,
    BodyError,
    ConnectFailed,
    FetchTimeout,
    NetworkError,
    RedirectRefused,
)


@dataclass(frozen=True)
class Hop:
    """One GET the fetcher sends: the configured URL, or a redirect's target."""

    url: str
    headers: Mapping[str, str]
    timeout: float  # the whole fetch, and the longest wait for a read
    connect_timeout: float
    stay_outside: bool = False  # it left the feed's host: it must not connect inward
    came_from: str = ""  # the URL whose redirect led here (for the error when refused)


class Response(Protocol):
    """An answer whose headers have arrived and whose body is still to be read."""

    @property
    def status(self) -> int:
        """The HTTP status code."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The headers, looked up case-insensitively."""

    @property
    def url(self) -> str:
        """The URL that answered."""

    @property
    def charset(self) -> str | None:
        """The ``charset`` of the Content-Type, if any."""

    @property
    def content_type(self) -> str | None:
        """The media type of the Content-Type."""

    @property
    def content_length(self) -> int | None:
        """The declared Content-Length, if any."""

    def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body, decompressed, in pieces of at most ``size`` bytes."""


class Transport(Protocol):
    """Sends one hop; the answer is valid inside the ``async with``."""

    def send(self, hop: Hop) -> AbstractAsyncContextManager[Response]:
        """Send ``hop`` and give its answer (raises a ``FetchError`` when there is none)."""

    async def close(self) -> None:
        """Release connections."""


# ---- the real transport: aiohttp ----------------------------------------------------------


def refused_inward(came_from: str, target: str) -> str:
    """The error of a redirect hop refused for leading inward (before or while connecting):
    the same words whatever the host resolved to (shown on the open ``/healthz``)."""
    return (
        f"{came_from}: refused a redirect to {target} ({REFUSED}; "
        "set [poll] allow_private_redirects = true to allow)"
    )


def plain_session(
    limit: int = 100, resolver: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """A client session for hops on the feed's own host, which may be loopback or private."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, resolver=resolver, use_dns_cache=False),
        auto_decompress=True,
    )


def guarded_session(
    limit: int = 100, resolver: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """A client session for hops that must stay outside: every connection resolves through
    the address guard (no DNS cache, so a name turning inward is caught at each one).

    The guard allows nothing internal (``[poll] allow_private_redirects`` is all or nothing:
    when it is on, no hop must stay outside). Its connector is its own, so it never reuses a
    connection that was made unchecked. ``resolver`` is the DNS seam (tests give a fake one).
    """
    return aiohttp.ClientSession(
        connector=AddressGuard().connector(resolver, limit), auto_decompress=True
    )


class _AiohttpResponse:
    """An aiohttp response seen through ``Response``."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self.url = str(response.url)
        self.charset = response.charset
        self.content_type: str | None = response.content_type
        self.content_length = response.content_length

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """aiohttp's decompressed body stream."""
        async for chunk in self._response.content.iter_chunked(size):
            yield chunk


class AiohttpTransport:
    """Sends hops with aiohttp, redirects off (the fetcher follows them, checking each).

    Two sessions: ``session`` for hops on the feed's host (given, or made here), and a
    guarded one, made at the first hop that must stay outside, for those. ``resolver`` is
    the DNS seam of both (tests give a fake one).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        limit: int = 100,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._own = session is None
        self._limit = limit
        self._resolver = resolver
        self.session = session if session is not None else plain_session(limit, resolver)
        self._outside: aiohttp.ClientSession | None = None

    def _session_for(self, hop: Hop) -> aiohttp.ClientSession:
        if not hop.stay_outside:
            return self.session
        if self._outside is None:
            self._outside = guarded_session(self._limit, self._resolver)
        return self._outside

    @contextlib.asynccontextmanager
    async def send(self, hop: Hop) -> AsyncIterator[Response]:
        """GET ``hop.url``; aiohttp's failures become ``FetchError`` classes naming the URL."""
        timeout = aiohttp.ClientTimeout(
            total=hop.timeout, connect=hop.connect_timeout, sock_read=hop.timeout
        )
        try:
            async with self._session_for(hop).get(
                hop.url, headers=dict(hop.headers), timeout=timeout, allow_redirects=False
            ) as response:
                yield _AiohttpResponse(response)
        except aiohttp.ConnectionTimeoutError as exc:
            raise FetchTimeout(
                f"{hop.url}: could not connect within {hop.connect_timeout:g} s"
            ) from exc
        except TimeoutError as exc:  # aiohttp's read timeout
            raise FetchTimeout(f"{hop.url}: no complete answer within {hop.timeout:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            err = exc.os_error
            if isinstance(err, RefusedAddress):  # the guard, during a hop that stays outside
                raise RedirectRefused(refused_inward(hop.came_from, hop.url)) from exc
            reason = os.strerror(err.errno) if err.errno and err.errno > 0 else str(err or exc)
            raise ConnectFailed(f"{hop.url}: cannot connect: {reason}") from exc
        except aiohttp.ClientResponseError as exc:
            raise BadResponse(f"{hop.url}: bad response: {exc.message}") from exc
        except aiohttp.ClientPayloadError as exc:
            raise BodyError(f"{hop.url}: body cut short or undecodable: {exc}") from exc
        except (aiohttp.ClientError, asyncio.IncompleteReadError, ValueError) as exc:
            raise NetworkError(f"{hop.url}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the sessions this transport made."""
        if self._own:
            await self.session.close()
        if self._outside is not None:
            await self._outside.close()
            self._outside = None


# ---- the test seam ------------------------------------------------------------------------

_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.I)


@dataclass(frozen=True)
class MockResponse:
    """A scripted answer: status, headers and the whole (already decompressed) body."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    url: str = ""  # filled in with the hop's URL when left empty


class _MockAnswer:
    def __init__(self, reply: MockResponse, hop: Hop) -> None:
        self.status = reply.status
        self.headers: Mapping[str, str] = CIMultiDictProxy(CIMultiDict(reply.headers))
        self.url = reply.url or hop.url
        content_type = self.headers.get("Content-Type", "application/octet-stream")
        self.content_type: str | None = content_type.split(";", 1)[0].strip().lower()
        match = _CHARSET.search(content_type)
        self.charset = match.group(1) if match else None
        self.content_length = len(reply.body)
        self._body = reply.body

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(self._body), size):
            yield self._body[start : start + size]


Handler = Callable[[Hop], MockResponse | Awaitable[MockResponse]]


class MockTransport:
    """Answers every hop with ``handler(hop)`` (a function or a coroutine function).

    The handler may raise a ``FetchError`` to stand for a network failure, or sleep to stand
    for a slow upstream. Every hop sent is kept in ``hops``, so a test can check the headers.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.hops: list[Hop] = []

    @contextlib.asynccontextmanager
    async def send(self, hop: Hop) -> AsyncIterator[Response]:
        """The handler's answer to ``hop``."""
        self.hops.append(hop)
        reply = self.handler(hop)
        if inspect.isawaitable(reply):
            reply = await reply
        yield _MockAnswer(reply, hop)

    async def close(self) -> None:
        """Nothing to release."""
