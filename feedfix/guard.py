"""Connection limits in front of aiohttp: a cap on open connections and a deadline for headers.

aiohttp bounds the request line and header sizes but lets a client take as long as it likes
to send them, so a few hundred slowloris connections could hold every file descriptor. Each
connection here is wrapped: past ``max_connections`` new ones are closed at once, and one
that has not finished its request headers within ``header_timeout`` of starting them is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """The limits every connection is held to."""

    max_connections: int = 1024
    header_timeout: float = 10.0


class GuardedProtocol(asyncio.Protocol):
    """Passes everything to aiohttp's protocol, enforcing ``Limits`` on the way."""

    def __init__(self, inner: asyncio.Protocol, limits: Limits, open_count: list[int]) -> None:
        self.inner = inner
        self.limits = limits
        self.open_count = open_count  # shared, one-element list: connections open right now
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.tail = b""  # the last bytes seen, to find the blank line across reads
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse over the cap; otherwise start the header clock and hand over."""
        self.transport = transport  # type: ignore[assignment]  # TCP: always a Transport
        if self.open_count[0] >= self.limits.max_connections:
            transport.close()
            return
        self.open_count[0] += 1
        self.counted = True
        self._start_clock()
        self.inner.connection_made(transport)

    def _start_clock(self) -> None:
        loop = asyncio.get_running_loop()
        self.deadline = loop.call_later(self.limits.header_timeout, self._too_slow)

    def _too_slow(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        """Watch for the end of the headers; a new request after it restarts the clock."""
        if self.deadline is None:
            self._start_clock()  # the first bytes of the next request on a kept-alive connection
        seen = self.tail + data
        if b"\r\n\r\n" in seen and self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
            self.tail = b""
        else:
            self.tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        """Pass on."""
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock, uncount, pass on."""
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if self.counted:
            self.open_count[0] -= 1
            self.counted = False
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        """Pass on."""
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        """Pass on."""
        self.inner.resume_writing()


def guarded(factory: Callable[[], Any], limits: Limits) -> Callable[[], GuardedProtocol]:
    """A protocol factory for ``loop.create_server`` that wraps ``factory``'s protocols."""
    open_count = [0]
    return lambda: GuardedProtocol(factory(), limits, open_count)
