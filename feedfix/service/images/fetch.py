"""Fetching one image from its origin: guarded, bounded, and only ever an image.

The request is built here from the signed policy alone: the Referer the policy names, one
configured User-Agent, no cookies (a dummy jar), nothing of the reader's request. Redirects
are followed by hand so that each hop is checked again (its scheme; an IP literal as aiohttp
will read it; the resolver guard covers names, the connector's socket check every address).
The body is counted while it streams, whatever ``Content-Length`` says, and its first bytes
must match the declared image type before more is read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from feedfix.core.errors import FeedfixError
from feedfix.core.imagesign import Verified
from feedfix.core.schedule import retry_after_seconds
from feedfix.service.addresses import REFUSED, AddressGuard, RefusedAddress, connect_host
from feedfix.service.images.media import SNIFF_BYTES, MediaRefused, allowed_type, matches
from feedfix.service.images.settings import ImageSettings

CHUNK = 64 * 1024
REDIRECTS = {301, 302, 303, 307, 308}
ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
UNREACHABLE = "origin unreachable"  # however the connection failed: no port scan through it
NOT_FETCHED = "not a URL the proxy fetches"


class ImageFetchError(FeedfixError):
    """The image can't be served. ``outcome`` (``refused`` or ``origin_error``) is for the
    metrics, ``status`` for the answer (502, or 504 for a timeout); the message is short.
    ``reason`` says it in a word for the archive (``404``, ``timeout``, ``not an image``…);
    when the origin answered with an error, ``origin_status`` is its status and
    ``retry_after`` the seconds it asked to wait (``Retry-After``), if it did (the archive
    and ``fix-posts --save-images`` retry on them)."""

    def __init__(
        self,
        outcome: str,
        status: int,
        message: str,
        reason: str = "error",
        retry_after: float | None = None,
        *,
        origin_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.reason = reason
        self.origin_status = origin_status
        self.retry_after = retry_after


def refused(message: str, reason: str = "refused") -> ImageFetchError:
    """Something the proxy will not fetch or pass on (an address, a type, a size)."""
    return ImageFetchError("refused", 502, message, reason)


def origin_error(
    message: str,
    status: int = 502,
    reason: str = "error",
    retry_after: float | None = None,
    origin_status: int | None = None,
) -> ImageFetchError:
    """The origin failed: an error status, a broken connection, a timeout (504)."""
    return ImageFetchError(
        "origin_error", status, message, reason, retry_after, origin_status=origin_status
    )


@dataclass(frozen=True)
class FetchedImage:
    """A verified image body and its canonical type."""

    body: bytes
    media_type: str
    final_url: str
    elapsed: float


class HostSlots:
    """At most ``limit`` fetches at a time per origin host; idle hosts are forgotten, so
    the table holds only hosts being fetched right now."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        """Wait for a slot for ``host`` and keep it for the block."""
        semaphore, users = self._slots.get(host, (asyncio.Semaphore(self.limit), 0))
        self._slots[host] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._slots[host]
            if users == 1:
                del self._slots[host]
            else:
                self._slots[host] = (semaphore, users - 1)

    def __len__(self) -> int:
        return len(self._slots)


class ImageFetcher:
    """GETs images for the proxy; one session, made on first use inside the running loop.

    ``resolver`` is the DNS seam (tests give a fake one); it is always wrapped in the guard.
    """

    def __init__(self, settings: ImageSettings, resolver: AbstractResolver | None = None) -> None:
        self.settings = settings
        self.guard = AddressGuard(settings.limits.allow_private)
        self.slots = HostSlots(settings.limits.per_host)
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=self.guard.connector(self._resolver),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        """Close the session (its connections)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, verified: Verified) -> FetchedImage:
        """The image at ``verified.url``; ImageFetchError for anything else.

        An internal target is refused before anything is sent, with the same text whatever
        the spelling, the name's answers or the port; a failure to connect to an allowed
        origin is one text too, whatever the port's state (refused, reset, filtered)."""
        try:
            host = connect_host(verified.url)
        except ValueError as exc:
            raise refused(NOT_FETCHED, "bad url") from exc
        s = self.settings
        async with self.slots.hold(host):
            started = time.monotonic()
            try:
                async with asyncio.timeout(s.limits.timeout):
                    return await self._follow(verified, started)
            except ImageFetchError:
                raise
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, RefusedAddress):
                    raise refused(REFUSED, "address") from exc
                raise origin_error(UNREACHABLE, reason="connection") from exc
            except aiohttp.ConnectionTimeoutError as exc:
                raise origin_error(UNREACHABLE, reason="connection") from exc
            except TimeoutError as exc:
                raise origin_error(
                    f"no complete answer within {s.limits.timeout:g} s", 504, "timeout"
                ) from exc
            except RefusedAddress as exc:
                raise refused(REFUSED, "address") from exc
            except (aiohttp.InvalidURL, UnicodeError) as exc:
                raise refused(NOT_FETCHED, "bad url") from exc
            except (aiohttp.ClientError, ValueError) as exc:
                raise origin_error(f"{host}: {type(exc).__name__}", reason="connection") from exc

    async def _follow(self, verified: Verified, started: float) -> FetchedImage:
        s = self.settings
        headers = {"User-Agent": s.user_agent, "Accept": ACCEPT}
        referer = verified.referer.header(verified.url)
        if referer:
            headers["Referer"] = referer
        timeout = aiohttp.ClientTimeout(
            total=None, connect=s.limits.connect_timeout, sock_connect=s.limits.connect_timeout
        )
        url = URL(verified.url)
        for _hop in range(s.limits.max_redirects + 1):
            if url.scheme not in ("http", "https") or not url.raw_host:
                raise refused("redirect to a non-http(s) URL", "redirects")
            self.guard.check_url(url)  # a literal as aiohttp will connect to it
            async with self._client().get(
                url, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                if response.status in REDIRECTS and "Location" in response.headers:
                    url = url.join(URL(response.headers["Location"]))
                    continue
                if response.status != 200:
                    raise origin_error(
                        f"origin answered {response.status}",
                        reason=str(response.status),
                        retry_after=retry_after_seconds(
                            response.headers.get("Retry-After"), time.time()
                        ),
                        origin_status=response.status,
                    )
                media_type, body = await self._read(response)
                return FetchedImage(body, media_type, str(url), time.monotonic() - started)
        raise refused(f"more than {s.limits.max_redirects} redirects", "redirects")

    async def _read(self, response: aiohttp.ClientResponse) -> tuple[str, bytes]:
        s = self.settings
        try:
            media_type = allowed_type(response.headers.get("Content-Type"), s.limits.svg)
        except MediaRefused as exc:
            raise refused(str(exc), "not an image") from exc
        declared = response.content_length
        if declared is not None and declared > s.limits.max_size:
            raise refused(
                f"declared {declared} bytes, over the {s.limits.max_size} byte limit", "too large"
            )
        body = bytearray()
        sniffed = False
        async for chunk in response.content.iter_chunked(CHUNK):
            body += chunk
            if len(body) > s.limits.max_size:
                raise refused(f"body over the {s.limits.max_size} byte limit", "too large")
            if not sniffed and len(body) >= SNIFF_BYTES:
                self._sniff(media_type, bytes(body[:SNIFF_BYTES]))
                sniffed = True
        if not sniffed:
            self._sniff(media_type, bytes(body))
        return media_type, bytes(body)

    @staticmethod
    def _sniff(media_type: str, head: bytes) -> None:
        if not matches(media_type, head):
            raise refused(f"body is not {media_type}", "not an image")
