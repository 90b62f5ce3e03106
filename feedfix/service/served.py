"""A feed's responses, precomputed: built once when its bytes change (compressed once,
headers formatted once), so a request costs a dict lookup; only a request without gzip may
cost an inflation, once (``IdentityBodies``).

A feed is served as Atom, RSS 2.0 and JSON Feed. The Atom is what polls make and the store
keeps; the other formats are rendered from it when first asked for, once per change, and kept
with the feed's Atom replies (``OtherFormats``): a format nobody asks for costs nothing."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime

from feedfix.core.render import FEED_TYPES
from feedfix.service.state import Published

CONTENT_TYPES = {name: f"{kind}; charset=utf-8" for name, kind in FEED_TYPES.items()}


def http_date(epoch: float) -> str:
    """An IMF-fixdate, as HTTP headers want it."""
    return formatdate(epoch, usegmt=True)


def strong_etag(body: bytes) -> str:
    """The ETag of these exact bytes: equal tags mean equal bytes."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _head(status: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


@dataclass(frozen=True)
class Reply:
    """One answer to a feed request: status, headers, body, and the same head as raw bytes."""

    status: int
    headers: dict[str, str]
    body: bytes  # empty for a 304
    head: bytes  # status line and headers, CRLF-terminated, without Date and the blank line


def _reply(status: int, headers: dict[str, str], body: bytes | None) -> Reply:
    """A reply and its head (a 304, ``body`` None, has no Content-Length)."""
    text = "200 OK" if status == 200 else "304 Not Modified"
    length = len(body) if body is not None else None
    return Reply(status, headers, body or b"", _head(text, headers, length))


IDENTITY_BUDGET = 8_000_000  # inflated identity bodies kept, in bytes (about 30 feeds)


class IdentityBodies:
    """The identity replies asked for lately, each inflated once and kept within ``budget``
    bytes, least recently used out first (readers mostly ask for gzip, which is always
    held). ``evicted`` is told each feed whose reply left, so that nothing else keeps it
    alive: the fast path forgets the request heads it answered with it."""

    def __init__(self, budget: int = IDENTITY_BUDGET) -> None:
        self.budget = budget
        self.held = 0
        self.evicted: list[Callable[[str], None]] = []
        # by feed and format
        self._replies: OrderedDict[tuple[str, str], tuple[ServedFeed, Reply]] = OrderedDict()

    def reply(self, served: ServedFeed) -> Reply:
        """``served``'s identity 200, from memory or inflated now."""
        key = (served.name, served.fmt)
        kept = self._replies.get(key)
        if kept is not None and kept[0] is served:
            self._replies.move_to_end(key)
            return kept[1]
        self._drop(key)
        reply = served.identity_reply()
        self._replies[key] = (served, reply)
        self.held += len(reply.body)
        while self.held > self.budget and len(self._replies) > 1:
            (name, _fmt), (_served, old) = self._replies.popitem(last=False)
            self.held -= len(old.body)
            for listener in self.evicted:
                listener(name)
        return reply

    def drop(self, name: str) -> None:
        """Let a feed's replies go, in every format (its bytes changed, or it left)."""
        for fmt in CONTENT_TYPES:
            self._drop((name, fmt))

    def _drop(self, key: tuple[str, str]) -> None:
        kept = self._replies.pop(key, None)
        if kept is not None:
            self.held -= len(kept[1].body)


class OtherFormats:
    """A feed's RSS and JSON Feed, beside its Atom replies: each format's bytes once rendered
    (``published``, kept across new headers for the same Atom, a stale mark for one), its
    replies, and the render under way that every request for it waits on."""

    def __init__(self, published: dict[str, Published] | None = None) -> None:
        self.published: dict[str, Published] = dict(published or {})
        self.replies: dict[str, ServedFeed] = {}
        self.pending: dict[str, asyncio.Future[ServedFeed]] = {}


@dataclass(frozen=True)
class ServedFeed:
    """One feed's answers in one format, every one of them made when its bytes change, never
    per request (the identity body aside: inflated when asked for, kept by ``identities``).
    The Atom's ``others`` holds the other formats."""

    name: str
    published: Published
    stale_since: float | None
    max_age: float
    identities: IdentityBodies
    identity_headers: dict[str, str]
    ok_gzip: Reply
    not_modified_identity: Reply
    not_modified_gzip: Reply
    fmt: str = "atom"
    others: OtherFormats = field(default_factory=OtherFormats, compare=False)

    @classmethod
    def of(
        cls,
        name: str,
        published: Published,
        max_age: float,
        stale_since: float | None,
        identities: IdentityBodies,
        *,
        fmt: str = "atom",
        others: OtherFormats | None = None,
    ) -> ServedFeed:
        """Format every header once."""
        common = {
            "Content-Type": CONTENT_TYPES[fmt],
            "Last-Modified": http_date(published.last_modified),
            "Cache-Control": f"public, max-age={int(max_age)}",
            "Vary": "Accept-Encoding",
        }
        if stale_since is not None:
            common["X-Feedfix-Stale"] = http_date(stale_since)
        gz_etag = published.etag[:-1] + '-gz"'  # a strong ETag per representation
        identity = {**common, "ETag": published.etag}
        gz = {**common, "ETag": gz_etag, "Content-Encoding": "gzip"}
        not_modified = {k: v for k, v in identity.items() if k != "Content-Type"}
        not_modified_gz = {**not_modified, "ETag": gz_etag}
        return cls(
            name=name,
            published=published,
            stale_since=stale_since,
            max_age=max_age,
            identities=identities,
            identity_headers=identity,
            ok_gzip=_reply(200, gz, published.gzip),
            not_modified_identity=_reply(304, not_modified, None),
            not_modified_gzip=_reply(304, not_modified_gz, None),
            fmt=fmt,
            others=others if others is not None else OtherFormats(),
        )

    def again(self, max_age: float, stale_since: float | None) -> ServedFeed:
        """The same bytes with other headers (a stale mark, a new max-age): the formats
        already rendered are kept, their replies made again when asked for."""
        others = OtherFormats(self.others.published)
        return ServedFeed.of(
            self.name, self.published, max_age, stale_since, self.identities, others=others
        )

    def identity_reply(self) -> Reply:
        """The identity 200, its body inflated now (``identities`` keeps the recent ones)."""
        return _reply(200, self.identity_headers, self.published.identity())

    def answer(
        self, if_none_match: str | None, if_modified_since: str | None, accept_encoding: str | None
    ) -> Reply:
        """The reply for a request's conditional and encoding headers (RFC 9110 13.2.2)."""
        gzip_ok = accepts_gzip(accept_encoding or "")
        if if_none_match is not None:
            fresh = self._etag_matches(if_none_match)
        else:
            fresh = if_modified_since is not None and self._unmodified_since(if_modified_since)
        if fresh:
            return self.not_modified_gzip if gzip_ok else self.not_modified_identity
        return self.ok_gzip if gzip_ok else self.identities.reply(self)

    def _etag_matches(self, header: str) -> bool:
        if header.strip() == "*":
            return True
        tags = {t.strip().removeprefix("W/") for t in header.split(",")}
        etag = self.published.etag
        return etag in tags or (etag[:-1] + '-gz"') in tags

    def _unmodified_since(self, header: str) -> bool:
        try:
            since = parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return int(self.published.last_modified) <= since


def accepts_gzip(header: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip: named (or ``*``) with a q-value above zero.

    Content-codings and the ``q`` parameter are case-insensitive (RFC 9110 8.4.1, 12.4.2).
    """
    header = header.lower()
    if "gzip" not in header and "*" not in header:
        return False
    allowed: dict[str, bool] = {}
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        allowed[coding.strip()] = q > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))
