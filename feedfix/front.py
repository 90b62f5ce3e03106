"""The front of the HTTP server: connection limits, and feeds answered without aiohttp.

Every connection is wrapped. Past ``max_connections`` a new one is closed at once, and one
that has not finished a request's headers within ``header_timeout`` is cut off (aiohttp bounds
header sizes but not how slowly they come: slowloris). Plain ``GET``/``HEAD`` requests for a
served feed, the bulk of the traffic, are answered here from the precomputed replies, which
is several times cheaper than aiohttp's request machinery. Anything else (other routes,
unknown feeds, bodies, anything unusual) hands the connection to aiohttp for good.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from feedfix.board import Board

MAX_LINE = 4096  # the request line; a feed URL is far shorter
MAX_FIELD = 8190  # one header line
MAX_HEADERS = 64
MAX_HEAD = 16 * 1024  # a request head larger than this goes to aiohttp, which refuses it
_FEED_PATH = re.compile(rb"/feeds/([A-Za-z0-9][A-Za-z0-9._-]{0,99})\.atom")
_HANDED_OVER = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect"})


@dataclass(frozen=True)
class Limits:
    """The limits every connection is held to."""

    max_connections: int = 1024
    header_timeout: float = 10.0


class _Clock:
    """The ``Date`` header, formatted once a second."""

    second = -1
    value = b""

    @classmethod
    def date(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second, cls.value = now, formatdate(now, usegmt=True).encode("ascii")
        return cls.value


class FrontProtocol(asyncio.Protocol):
    """One client connection: answered here while it asks only for feeds, else aiohttp's."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.buffer = bytearray()
        self.tail = b""  # after hand-over: the last bytes seen, to find a head's end across reads
        self.counted = False

    # ---- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse over the cap; otherwise start the header clock."""
        self.transport = transport  # type: ignore[assignment]  # TCP: always a Transport
        if self.front.open_connections >= self.front.limits.max_connections:
            transport.close()
            return
        self.front.open_connections += 1
        self.counted = True
        self._start_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock, uncount, tell aiohttp if it has the connection."""
        self._stop_clock()
        if self.counted:
            self.front.open_connections -= 1
            self.counted = False
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        """The client finished sending: aiohttp decides, or the connection closes."""
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        """A slow reader: stop reading its requests until it catches up."""
        if self.inner is not None:
            self.inner.pause_writing()
        elif self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The reader caught up."""
        if self.inner is not None:
            self.inner.resume_writing()
        elif self.transport is not None:
            self.transport.resume_reading()

    # ---- the header clock ----------------------------------------------------------------

    def _start_clock(self) -> None:
        if self.deadline is None:
            loop = asyncio.get_running_loop()
            self.deadline = loop.call_later(self.front.limits.header_timeout, self._too_slow)

    def _stop_clock(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if self.transport is not None:
            self.transport.abort()

    # ---- requests ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Answer complete feed requests; hand anything else to aiohttp."""
        if self.inner is not None:
            self._watch_handed_over(data)
            self.inner.data_received(data)
            return
        self._start_clock()
        self.buffer += data
        while self.inner is None and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._hand_over()
                return
            keep_alive = self._answer(bytes(self.buffer[:end]), self.transport)
            if keep_alive is None:
                self._hand_over()
                return
            del self.buffer[: end + 4]
            self._stop_clock()
            if not keep_alive:
                self.transport.close()
                return
            if self.buffer:
                self._start_clock()

    def _answer(self, head: bytes, transport: asyncio.Transport) -> bool | None:
        """Write the reply to one feed request; ``None`` when aiohttp should answer instead.

        Returns whether the connection stays open.
        """
        lines = head.split(b"\r\n")
        if (
            len(lines[0]) > MAX_LINE
            or len(lines) > MAX_HEADERS + 1
            or any(len(line) > MAX_FIELD for line in lines)
        ):
            return None  # over a limit: aiohttp answers with its 4xx
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
            return None
        method, target, version = parts
        match = _FEED_PATH.fullmatch(target)
        if match is None or version not in (b"HTTP/1.1", b"HTTP/1.0"):
            return None
        served = self.front.board.served.get(match.group(1).decode("ascii"))
        if served is None:
            return None  # 404 and 503 carry a message: aiohttp's handler says it
        fields: dict[bytes, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name[:1] in b" \t" or name.strip() != name:
                return None  # folded or malformed: aiohttp's stricter parser decides
            key = name.lower()
            if key in _HANDED_OVER and not (key == b"content-length" and value.strip() == b"0"):
                return None
            fields[key] = value.strip().decode("latin-1")
        reply = served.answer(
            fields.get(b"if-none-match"),
            fields.get(b"if-modified-since"),
            fields.get(b"accept-encoding"),
        )
        connection = fields.get(b"connection", "").lower()
        if version == b"HTTP/1.1":
            keep_alive = "close" not in connection
            extra = b"" if keep_alive else b"Connection: close\r\n"
        else:
            keep_alive = "keep-alive" in connection
            extra = b"Connection: keep-alive\r\n" if keep_alive else b"Connection: close\r\n"
        head_out = reply.head + b"Date: " + _Clock.date() + b"\r\n" + extra + b"\r\n"
        if method == b"GET" and reply.body:
            transport.writelines((head_out, reply.body))
        else:
            transport.write(head_out)
        self.front.count(reply.status)
        return keep_alive

    def _hand_over(self) -> None:
        """From now on aiohttp serves this connection, starting with what is buffered."""
        self._stop_clock()
        inner = self.front.factory()
        self.inner = inner
        inner.connection_made(self.transport)
        data, self.buffer = bytes(self.buffer), bytearray()
        if data:
            self._watch_handed_over(data)
            inner.data_received(data)

    def _watch_handed_over(self, data: bytes) -> None:
        """The header clock for a handed-over connection: runs until each head is complete."""
        if self.deadline is None and not self.tail:
            self._start_clock()
        seen = self.tail + data
        if b"\r\n\r\n" in seen:
            self._stop_clock()
            self.tail = b""
        else:
            self.tail = seen[-3:] or b"\0"


class Front:
    """The protocol factory for ``loop.create_server``, with what every connection shares."""

    def __init__(
        self,
        factory: Callable[[], Any],
        limits: Limits,
        board: Board,
        count: Callable[[int], None],
    ) -> None:
        self.factory = factory  # aiohttp's protocol factory (the runner's server)
        self.limits = limits
        self.board = board
        self.count = count
        self.open_connections = 0

    def __call__(self) -> FrontProtocol:
        """A protocol for one new connection."""
        return FrontProtocol(self)
