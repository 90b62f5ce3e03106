"""The front of the HTTP server: every connection held to its limits, feeds answered
without aiohttp.

Every connection is wrapped and counted against the limits of ``connections.py``. One
that has not finished a request's headers within ``header_timeout`` is cut off (aiohttp
bounds header sizes but not how slowly they come: slowloris), so is one whose request body
has not all come within ``body_timeout`` of its head, and one left idle longer than
``keepalive_timeout``. Plain ``GET``/``HEAD`` requests for a served feed, the bulk of the
traffic, are answered here from the precomputed replies, which is several times cheaper
than aiohttp's request machinery: in every format (a feed's RSS or JSON Feed, the first
time it is asked for after a change, is rendered first: the connection waits for it,
reading nothing more, and stays here). Anything else (other routes, unknown feeds, bodies,
anything unusual) hands the connection to aiohttp for good. Which heads are answered here
is decided by the pure functions of ``heads.py``; cached images are answered by
``image_front.py``.
"""

from __future__ import annotations

import asyncio
import enum
import socket
from asyncio.trsock import TransportSocket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from feedfix.service.catalog import Catalog
from feedfix.service.http.connections import ConnectionLimits, Limits
from feedfix.service.http.heads import CHUNKED, UNUSUAL, body_length, head_end, parse_head
from feedfix.service.http.image_front import CachedImages, ImageFront
from feedfix.service.http.writes import date_header, send_file, send_joined
from feedfix.service.readers_first import ReaderTraffic
from feedfix.service.served import Reply, ServedFeed

KNOWN_HEADS = 1024  # request heads remembered with their answers (forgotten all at once)
HANDED_HEAD = 64 * 1024  # bytes of a handed-over head kept to read its body's length
UNTIL_CLOSED = -2  # a body whose length is unknown (a head past HANDED_HEAD): clocked to the end
LAST_CHUNK = b"0\r\n\r\n"  # a chunked body's end (without extensions or trailers)


class _Rendering(enum.Enum):
    """``_answer``'s word for a request that waits for its format to be rendered."""

    RENDERING = "rendering"


RENDERING = _Rendering.RENDERING


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
        self.head = bytearray()  # after hand-over: a head so far (its end, its body's length)
        self.body_left = 0  # after hand-over: body bytes still to come (or CHUNKED, UNTIL_CLOSED)
        self.head_cut = False  # after hand-over: the head outgrew HANDED_HEAD (its end kept)
        self.counted = False
        self.peer: str | None = None  # the client's address
        self.idle = 0  # waiting for a kept-alive request on the fast path: since when (an order)
        self.fd = -1  # the socket, for writev
        self.plain: TransportSocket | None = None  # the socket, when no TLS wraps it
        self.sock: socket.socket | None = None  # its duplicate, for send flags (images only)
        self.rendering: asyncio.Future[ServedFeed] | None = None  # a format it waits for
        # The clock the sweep reads: since when this connection has waited, and how long it may.
        self.since: float | None = None
        self.limit = front.limits.header_timeout

    # ---- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse over the cap (or the client's share of it) when no idle connection gives
        way; otherwise wait for a request's headers."""
        self.transport = transport  # type: ignore[assignment]  # TCP: always a Transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if not self.front.admit(self.peer):
            transport.close()
            return
        self.front.enter(self)
        sock = transport.get_extra_info("socket")
        plain = transport.get_extra_info("sslcontext") is None  # never write around TLS
        self.plain = sock if plain else None
        self.fd = sock.fileno() if sock is not None and plain else -1
        if not self.front.answer_feeds:
            self._hand_over()
        self._wait(self.front.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount; tell aiohttp if it has the connection."""
        self.since = None
        if self.sock is not None:  # before the transport closes its own: then the FIN goes
            self.sock.close()
            self.sock = None
        self.front.leave(self)
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
            self.idle = 0
        self.buffer += data
        if self.rendering is None:
            self._serve()

    def _serve(self) -> None:
        """Answer the complete requests buffered, in order, until one must wait for its
        format to be rendered (``_rendered`` goes on from there) or is aiohttp's."""
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
            if keep_alive is RENDERING:
                return
            self.front.traffic.answered += 1
            del self.buffer[: end + 4]
            if not keep_alive:
                self.since = None
                self.transport.close()
                return
            limits = self.front.limits
            if self.buffer:
                self._wait(limits.header_timeout)
            else:
                self._wait(limits.keepalive_timeout)
                self.idle = self.front.next_idle()

    def _render_first(
        self, pending: asyncio.Future[ServedFeed], transport: asyncio.Transport
    ) -> _Rendering:
        """Wait, reading nothing more, for the format a request asked for to be rendered
        (its first request since the feed changed): no clock runs meanwhile."""
        self.rendering = pending
        self.since = None
        transport.pause_reading()
        pending.add_done_callback(self._rendered)
        return RENDERING

    def _rendered(self, pending: asyncio.Future[ServedFeed]) -> None:
        """The format is rendered: answer the request that waited for it, and go on; a
        render that failed leaves the connection to aiohttp (whose handler tries again)."""
        self.rendering = None
        failed = pending.cancelled() or pending.exception() is not None
        transport = self.transport
        if transport is None or transport.is_closing() or self.inner is not None:
            return
        transport.resume_reading()
        if failed:
            self._hand_over()
        else:
            self._serve()

    def _answer(self, head: bytes, transport: asyncio.Transport) -> bool | _Rendering | None:
        """Write the reply to one feed request; ``None`` when aiohttp should answer instead,
        ``RENDERING`` when its format is being rendered (nothing is written yet).

        Returns whether the connection stays open. Readers repeat the same request head (same
        client, same validators), so what a head was answered with is remembered.
        """
        front = self.front
        answered = front.known.get(head)
        if answered is None:
            request = parse_head(head)
            if request is None:  # not a feed: a cached image, else aiohttp's
                return None if front.images is None else self._answer_image(head, transport)
            served = front.catalog.served.get(request.name)
            if served is None:
                return None  # 404 and 503 carry a message: aiohttp's handler says it
            if request.fmt != "atom":
                other = front.catalog.other_format(served, request.fmt)
                if not isinstance(other, ServedFeed):
                    return self._render_first(other, transport)
                served = other
            reply = served.answer(
                request.if_none_match, request.if_modified_since, request.accept_encoding
            )
            answered = _Answered(
                request.name, reply, request.body, request.keep_alive, request.extra
            )
            front.remember(head, answered)
        reply = answered.reply
        head_out = reply.head + date_header() + answered.extra + b"\r\n"
        if answered.body and reply.body:
            send_joined(self.fd, transport, head_out, reply.body)
        else:
            transport.write(head_out)
        front.count(reply.status)
        return answered.keep_alive

    def _answer_image(self, head: bytes, transport: asyncio.Transport) -> bool | None:
        """Answer a request for a cached image (200, 206, 304, 416; the body by sendfile);
        ``None`` for anything else (a miss, a bad signature), which aiohttp's handler answers."""
        images = self.front.images
        answer = images.answer(head) if images is not None else None
        if images is None or answer is None:
            return None
        fd = -1
        if answer.count:
            opened = images.file(answer)
            if opened is None:  # evicted or removed since: aiohttp's handler fetches it again
                return None
            fd = opened
        out = answer.head + date_header() + answer.extra + b"\r\n"
        if fd < 0:
            transport.write(out)
        else:
            if self.sock is None and self.plain is not None:
                self.sock = self.plain.dup()  # for send's flags
            send_file(self.sock, transport, out, (fd, answer.start, answer.count))
        return answer.keep_alive

    def _hand_over(self) -> None:
        """From now on aiohttp serves this connection, starting with what is buffered."""
        self.since = None
        self.idle = 0
        inner = self.front.factory()
        self.inner = inner
        inner.connection_made(self.transport)
        data, self.buffer = bytes(self.buffer), bytearray()
        if data:
            self._watch_handed_over(data)
            inner.data_received(data)

    def _watch_handed_over(self, data: bytes) -> None:
        """The clocks of a connection aiohttp serves: each head must be complete within
        ``header_timeout`` of its first byte, and its body, if it has one, within
        ``body_timeout`` of the head's end, however it trickles (a body's bytes are counted,
        never searched for a head's end). Between requests aiohttp's keep-alive timeout holds.
        A chunked body ends at its last chunk (one with extensions or trailers is clocked
        until the connection closes)."""
        limits = self.front.limits
        while data:
            if self.body_left == CHUNKED:
                begin = max(0, len(self.head) - len(LAST_CHUNK) + 1)
                self.head += data
                end = self.head.find(LAST_CHUNK, begin)
                if end < 0:
                    del self.head[: -len(LAST_CHUNK)]
                    return
                data = bytes(self.head[end + len(LAST_CHUNK) :])
                self.head.clear()
            elif self.body_left == UNTIL_CLOSED:
                return
            elif self.body_left:
                taken = min(self.body_left, len(data))
                self.body_left -= taken
                data = data[taken:]
                if self.body_left:
                    return
            else:
                if self.since is None and not self.head:
                    self._wait(limits.header_timeout)
                begin = max(0, len(self.head) - 3)  # a CRLF CRLF split across reads
                self.head += data
                end = self.head.find(b"\r\n\r\n", begin)
                if end < 0:
                    if len(self.head) > HANDED_HEAD:  # keep its end only: length unknown
                        self.head_cut = True
                        del self.head[:-3]
                    return
                head, data = bytes(self.head[:end]), bytes(self.head[end + 4 :])
                self.body_left = UNTIL_CLOSED if self.head_cut else body_length(head)
                self.head.clear()
                self.head_cut = False
                if self.body_left:
                    self._wait(limits.body_timeout)
                    continue
            self.body_left = 0
            self.since = None  # the request is in: aiohttp answers it


class FastPath(ConnectionLimits["FastPathProtocol"]):
    """The protocol factory for ``loop.create_server``, with what every connection shares:
    the limits (``connections.py``), the catalog, and the answers remembered."""

    def __init__(
        self,
        factory: Callable[[], Any],
        limits: Limits,
        catalog: Catalog,
        count: Callable[[int], None],
        *,
        answer_feeds: bool = True,
        images: CachedImages | None = None,
        traffic: ReaderTraffic | None = None,
    ) -> None:
        self.factory = factory  # aiohttp's protocol factory (the runner's server)
        # False: every connection is aiohttp's from its first byte, the limits still hold
        # (``FEEDFIX_FASTPATH=0``, to measure what answering feeds here saves).
        self.answer_feeds = answer_feeds
        super().__init__(limits)
        self.catalog = catalog
        self.count = count
        # the image proxy: cached images are answered here too
        self.images = ImageFront(images) if images is not None else None
        self.known: dict[bytes, _Answered] = {}
        # requests answered here, counted for the image archive, which gives way to readers
        self.traffic = traffic if traffic is not None else ReaderTraffic()
        self._heads: dict[str, list[bytes]] = {}  # the known heads by feed name
        catalog.listeners.append(self.forget)
        catalog.identities.evicted.append(self.forget)  # its identity body let go

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

    def close(self) -> None:
        """Stop the sweep and the image front (at shutdown)."""
        self.stop_sweeping()
        if self.images is not None:
            self.images.close()
