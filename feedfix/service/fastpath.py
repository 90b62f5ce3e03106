"""The front of the HTTP server: connection limits, and feeds answered without aiohttp.

Every connection is wrapped. Past ``max_connections`` a new one is closed at once; one that
has not finished a request's headers within ``header_timeout`` is cut off (aiohttp bounds
header sizes but not how slowly they come: slowloris), and so is one left idle longer than
``keepalive_timeout``. Plain ``GET``/``HEAD`` requests for a served feed, the bulk of the
traffic, are answered here from the precomputed replies, which is several times cheaper than
aiohttp's request machinery. Anything else (other routes, unknown feeds, bodies, anything
unusual) hands the connection to aiohttp for good. Which heads are answered here is decided
by two pure functions, ``head_end`` and ``parse_head``, strict on purpose: when in doubt, the
head is aiohttp's, whose parser answers the malformed with a 400 at once.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from feedfix.service.catalog import Catalog, Reply

MAX_LINE = 4096  # the request line; a feed URL is far shorter
MAX_FIELD = 8190  # one header line
MAX_HEADERS = 64
MAX_HEAD = 16 * 1024  # a request head larger than this goes to aiohttp, which refuses it
KNOWN_HEADS = 1024  # request heads remembered with their answers (forgotten all at once)
SWEEP = 0.25  # seconds between timeout sweeps: timeouts are enforced to within this
_FEED_PATH = re.compile(rb"/feeds/([A-Za-z0-9][A-Za-z0-9._-]{0,99})\.atom")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a field name (RFC 9110 5.6.2)
# Control characters a head may not hold anywhere: all but HTAB, and CR LF as line ends
# (a bare CR or LF is counted apart). aiohttp refuses them with a 400.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HANDED_OVER = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect"})


@dataclass(frozen=True)
class Limits:
    """The limits every connection is held to."""

    max_connections: int = 1024
    header_timeout: float = 10.0  # to finish a request's headers, from their first byte
    keepalive_timeout: float = 75.0  # an idle kept-alive connection closes after this


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


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """A request head the fast path answers itself: a plain GET or HEAD of one feed."""

    name: str  # the feed, as in /feeds/{name}.atom
    body: bool  # GET (the reply carries the body), not HEAD
    keep_alive: bool
    extra: bytes  # a Connection header the reply must carry (CRLF-terminated), or b""
    if_none_match: str | None = None
    if_modified_since: str | None = None
    accept_encoding: str | None = None


INCOMPLETE = 0  # head_end: the head has not finished arriving
UNUSUAL = -1  # head_end: bytes that are no head the fast path answers (hand them to aiohttp)


def head_end(buffer: bytes | bytearray) -> int:
    """Where the first request head in ``buffer`` ends (just past its blank line), else
    ``INCOMPLETE`` or ``UNUSUAL``.

    A head ends at CRLF CRLF. A bare LF or CR anywhere in an unfinished head (LF LF is how
    some clients and many attackers end one) makes it ``UNUSUAL``, so aiohttp answers it at
    once instead of it waiting, unanswered, for the header timeout; so does a head over
    ``MAX_HEAD``. Cost: one ``find`` when the head is complete (the usual case, ~0.2 µs,
    which ``data_received`` inlines); the counts run only on an unfinished head.
    """
    end = buffer.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    crlf = buffer.count(b"\r\n")
    lone_cr = buffer.count(b"\r") - buffer.endswith(b"\r")  # a final CR may be half a CRLF
    if len(buffer) > MAX_HEAD or buffer.count(b"\n") != crlf or lone_cr != crlf:
        return UNUSUAL
    return INCOMPLETE


def parse_head(head: bytes) -> FeedRequest | None:
    """The feed request ``head`` is (without its final CRLF CRLF), or ``None`` for aiohttp.

    Pure and strict: only a plain ``GET``/``HEAD`` of ``/feeds/{name}.atom`` in origin form,
    HTTP/1.0 or 1.1, with well-formed CRLF-separated fields is answered here. Anything else
    is ``None``, and aiohttp's parser answers it (a 400 for what is malformed; the 404 and
    503 pages and other routes are its handlers'): another method or target form, an
    encoded or odd feed name, a line over a limit, a bare CR or LF, a control character (NUL,
    ESC, DEL...; a tab is fine), an obs-fold continuation, a field without a colon or whose
    name is not a token (space before the colon, parentheses, non-ASCII), a body
    (``Content-Length`` other than one ``0``, ``Transfer-Encoding``), ``Upgrade``/``Expect``,
    any field given twice (two ``Host``, two ``Content-Length``: request smuggling's
    material), and an HTTP/1.1 request without ``Host`` (RFC 9112 3.2: a 400).

    Cost: about 7 µs for a reader's 6-field head (2-core VM, 2026-12), paid only for a head
    not seen before: the front remembers each head's answer, so a repeated request (~20 µs
    in all) costs a dict lookup here, not a parse.
    """
    lines = head.split(b"\r\n")
    newlines = len(lines) - 1
    if (
        len(lines[0]) > MAX_LINE
        or newlines > MAX_HEADERS
        or head.count(b"\n") != newlines  # a bare LF
        or head.count(b"\r") != newlines  # a bare CR
        or _CONTROL.search(head) is not None  # a NUL, an escape, DEL...
    ):
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
        return None
    method, target, version = parts
    match = _FEED_PATH.fullmatch(target)
    if match is None or version not in (b"HTTP/1.1", b"HTTP/1.0"):
        return None
    fields: dict[bytes, str] = {}
    for line in lines[1:]:
        if len(line) > MAX_FIELD:
            return None
        key, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(key) is None:
            return None  # folded (leading space), no name, not a token: aiohttp refuses it
        key = key.lower()
        if key in fields:
            return None  # repeated: aiohttp refuses a second Host or Content-Length
        if key in _HANDED_OVER and not (key == b"content-length" and value.strip() == b"0"):
            return None
        fields[key] = value.strip().decode("latin-1")
    connection = fields.get(b"connection", "").lower()
    if version == b"HTTP/1.1":
        if b"host" not in fields:
            return None
        keep_alive = "close" not in connection
        extra = b"" if keep_alive else b"Connection: close\r\n"
    else:
        keep_alive = "keep-alive" in connection
        extra = b"Connection: keep-alive\r\n" if keep_alive else b"Connection: close\r\n"
    return FeedRequest(
        name=match.group(1).decode("ascii"),
        body=method == b"GET",
        keep_alive=keep_alive,
        extra=extra,
        if_none_match=fields.get(b"if-none-match"),
        if_modified_since=fields.get(b"if-modified-since"),
        accept_encoding=fields.get(b"accept-encoding"),
    )


@dataclass(frozen=True, slots=True)
class _Answered:
    """A request head seen before, and what it was answered with (until the feed's replies
    change: the catalog tells the front, which forgets the feed's heads). Flat, so that a
    repeated request reads it in as few steps as can be."""

    name: str
    reply: Reply
    body: bool
    keep_alive: bool
    extra: bytes


class FastPathProtocol(asyncio.Protocol):
    """One client connection: answered here while it asks only for feeds, else aiohttp's."""

    def __init__(self, front: FastPath) -> None:
        self.front = front
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.tail = b""  # after hand-over: the last bytes seen, to find a head's end across reads
        self.counted = False
        self.fd = -1  # the socket, for writev
        # The clock the sweep reads: since when this connection has waited, and how long it may.
        self.since: float | None = None
        self.limit = front.limits.header_timeout

    # ---- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse over the cap; otherwise wait for a request's headers."""
        self.transport = transport  # type: ignore[assignment]  # TCP: always a Transport
        if len(self.front.connections) >= self.front.limits.max_connections:
            transport.close()
            return
        self.front.enter(self)
        self.counted = True
        sock = transport.get_extra_info("socket")
        plain = transport.get_extra_info("sslcontext") is None  # never write around TLS
        self.fd = sock.fileno() if sock is not None and plain else -1
        if not self.front.answer_feeds:
            self._hand_over()
        self._wait(self.front.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount; tell aiohttp if it has the connection."""
        self.since = None
        if self.counted:
            self.front.connections.discard(self)
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

    # ---- the clock (the front's sweep enforces it) -----------------------------------------

    def _wait(self, limit: float) -> None:
        self.since, self.limit = self.front.now, limit

    def overdue(self, now: float) -> bool:
        """Waited longer than allowed: for its headers to finish, or idle between requests."""
        return self.since is not None and now - self.since > self.limit

    def expire(self) -> None:
        """Cut the connection off."""
        self.since = None
        if self.transport is not None:
            self.transport.abort()

    # ---- requests ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Answer complete feed requests; hand anything else to aiohttp."""
        if self.inner is not None:
            self._watch_handed_over(data)
            self.inner.data_received(data)
            return
        if not self.buffer:  # a new request's first bytes: its headers' clock starts now
            self._wait(self.front.limits.header_timeout)
        self.buffer += data
        while self.inner is None and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")  # head_end's usual case, inlined: per request
            if end < 0:  # unfinished (often empty: every byte answered)
                if self.buffer and head_end(self.buffer) == UNUSUAL:
                    self._hand_over()
                return
            keep_alive = self._answer(bytes(self.buffer[:end]), self.transport)
            if keep_alive is None:
                self._hand_over()
                return
            del self.buffer[: end + 4]
            if not keep_alive:
                self.since = None
                self.transport.close()
                return
            limits = self.front.limits
            self._wait(limits.header_timeout if self.buffer else limits.keepalive_timeout)

    def _answer(self, head: bytes, transport: asyncio.Transport) -> bool | None:
        """Write the reply to one feed request; ``None`` when aiohttp should answer instead.

        Returns whether the connection stays open. Readers repeat the same request head (same
        client, same validators), so what a head was answered with is remembered.
        """
        front = self.front
        answered = front.known.get(head)
        if answered is None:
            request = parse_head(head)
            if request is None:
                return None
            served = front.catalog.served.get(request.name)
            if served is None:
                return None  # 404 and 503 carry a message: aiohttp's handler says it
            reply = served.answer(
                request.if_none_match, request.if_modified_since, request.accept_encoding
            )
            answered = _Answered(request.name, reply, request.body, request.keep_alive,
                                 request.extra)  # fmt: skip
            front.remember(head, answered)
        reply = answered.reply
        head_out = reply.head + b"Date: " + _Clock.date() + b"\r\n" + answered.extra + b"\r\n"
        if answered.body and reply.body:
            self._send(transport, head_out, reply.body)
        else:
            transport.write(head_out)
        front.count(reply.status)
        return answered.keep_alive

    def _send(self, transport: asyncio.Transport, head: bytes, body: bytes) -> None:
        """Head and body in one ``writev``, with no copy joining them (200 KB each time).

        Only while the transport has nothing queued, so that nothing overtakes it; what the
        socket does not take at once is queued on the transport as usual.
        """
        if self.fd < 0 or transport.get_write_buffer_size():
            transport.writelines((head, body))
            return
        try:
            sent = os.writev(self.fd, (head, body))
        except OSError:  # would block, or the peer left: the transport finds out which
            sent = 0
        if sent < len(head):
            transport.writelines((head[sent:], body))
        elif sent < len(head) + len(body):
            transport.write(memoryview(body)[sent - len(head) :])

    def _hand_over(self) -> None:
        """From now on aiohttp serves this connection, starting with what is buffered."""
        self.since = None
        inner = self.front.factory()
        self.inner = inner
        inner.connection_made(self.transport)
        data, self.buffer = bytes(self.buffer), bytearray()
        if data:
            self._watch_handed_over(data)
            inner.data_received(data)

    def _watch_handed_over(self, data: bytes) -> None:
        """The header clock for a handed-over connection: runs until each head is complete
        (aiohttp closes idle connections itself)."""
        if self.since is None and not self.tail:
            self._wait(self.front.limits.header_timeout)
        seen = self.tail + data
        if b"\r\n\r\n" in seen:
            self.since = None
            self.tail = b""
        else:
            self.tail = seen[-3:] or b"\0"


class FastPath:
    """The protocol factory for ``loop.create_server``, with what every connection shares.

    One sweep a fraction of a second enforces every connection's header and idle timeouts,
    instead of a timer set and cancelled per request.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        limits: Limits,
        catalog: Catalog,
        count: Callable[[int], None],
        *,
        answer_feeds: bool = True,
    ) -> None:
        self.factory = factory  # aiohttp's protocol factory (the runner's server)
        # False: every connection is aiohttp's from its first byte, the limits still hold
        # (``FEEDFIX_FASTPATH=0``, to measure what answering feeds here saves).
        self.answer_feeds = answer_feeds
        self.limits = limits
        self.catalog = catalog
        self.count = count
        self.connections: set[FastPathProtocol] = set()
        self.known: dict[bytes, _Answered] = {}
        self._heads: dict[str, list[bytes]] = {}  # the known heads by feed name
        catalog.listeners.append(self.forget)
        self.now = 0.0
        self._sweeper: asyncio.TimerHandle | None = None
        self.tick = min(SWEEP, limits.header_timeout / 4, limits.keepalive_timeout / 4)

    def __call__(self) -> FastPathProtocol:
        """A protocol for one new connection."""
        return FastPathProtocol(self)

    def remember(self, head: bytes, answered: _Answered) -> None:
        """Keep a head's answer (forgetting them all when there are too many)."""
        if len(self.known) >= KNOWN_HEADS:
            self.known.clear()
            self._heads.clear()
        self.known[head] = answered
        self._heads.setdefault(answered.name, []).append(head)

    def forget(self, name: str) -> None:
        """A feed's replies changed: drop what was remembered for it, which would hold the old
        bytes in memory."""
        for head in self._heads.pop(name, ()):
            self.known.pop(head, None)

    def enter(self, protocol: FastPathProtocol) -> None:
        """Count a connection; the sweep runs while there are any."""
        if self._sweeper is None:
            self._sweep()
        self.connections.add(protocol)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        for protocol in [p for p in self.connections if p.overdue(self.now)]:
            protocol.expire()
        self._sweeper = loop.call_later(self.tick, self._sweep) if self.connections else None

    def close(self) -> None:
        """Stop the sweep (at shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
