"""What every format writes the same way: links, URLs, dates, and the addresses of a feed's
formats.

Atom, RSS 2.0 and JSON Feed each take an entry's links, URLs and dates from here, so the three
formats of one feed point at the same URLs (mended, of a sane length, the upstream's own
address as ``via``) and date each entry at the same instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from feedfix.core.ids import mend_iri
from feedfix.core.model import Entry, Feed, Link
from feedfix.core.render.values import (
    MAX_URL,
    UNCOUNTED,
    DropCounter,
    Dropped,
    FeedFacts,
    language_tag,
    media_type,
)

FEED_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
"""Each format by its name (``--format``, the URL's suffix) and its media type."""

NormalLink = tuple[str, str, str | None, str | None, str | None, str | None]
"""A link as it is written: rel, href, type, hreflang, title, length."""


def url(value: str | None) -> str | None:
    """A URL as every format writes it: mended, and none at all past ``MAX_URL``."""
    if not value or len(value) > MAX_URL:
        return None
    return mend_iri(value.strip())


def links(items: Iterable[Link], dropped: Dropped = UNCOUNTED) -> Iterator[NormalLink]:
    """Links as every format writes them, with at most one alternate per (type, hreflang) as
    RFC 4287 requires: the upstream's hub left out, its own address (``self``) as ``via``
    (where this feed's content came from), each (rel, href) once."""
    seen: set[tuple[str, str]] = set()
    alternates: set[tuple[str, str]] = set()
    for link in items:
        if len(link.href) > MAX_URL:
            continue
        rel = link.rel
        if rel == "hub":
            continue  # the upstream's WebSub hub does not publish this feed
        if rel == "self":
            rel = "via"  # the upstream's own address: where this feed's content came from
        kind, lang = media_type(link.type), language_tag(link.hreflang)
        if rel == "alternate":
            key = (kind or "", lang or "")  # as written: "html" and "text/html" are one type
            if key in alternates:
                rel = "related"
            alternates.add(key)
        href = mend_iri(link.href.strip())
        if (rel, href) in seen:
            continue
        seen.add((rel, href))
        length = str(link.length) if link.length and link.length > 0 else None
        yield (
            rel,
            href,
            dropped.check(link.type, kind),
            dropped.check(link.hreflang, lang),
            link.title,
            length,
        )


def dates(entry: Entry, when: datetime) -> tuple[datetime, datetime | None]:
    """An entry's (updated, published): ``when`` stands in for an entry with no date at all."""
    return entry.updated or entry.published or when, entry.published


def siblings(self_url: str | None, name: str) -> dict[str, str]:
    """The addresses of a feed's formats, by format name, when ``self_url`` (the address of
    format ``name``) ends in that format's suffix (``/feeds/NAME.atom``, ``.rss``, ``.json``);
    else only ``self_url`` itself."""
    if not self_url:
        return {}
    suffix = f".{name}"
    if not self_url.endswith(suffix):
        return {name: self_url}
    stem = self_url[: -len(suffix)]
    return {other: f"{stem}.{other}" for other in FEED_TYPES}


@dataclass(frozen=True)
class Format:
    """An output format: its name (``--format``, the URL's suffix) and how it writes its
    header, each entry and its end, streamed as chunks, what each part dropped counted
    (``on_dropped``: how many, and whether an entry dropped them)."""

    name: str
    header: Callable[[Feed, FeedFacts, str | None, Dropped], str]
    entry: Callable[[Entry, str | None, datetime, Dropped], str]
    end: bytes
    between: str = ""  # written between two entries

    @property
    def media_type(self) -> str:
        """What the format is served as."""
        return FEED_TYPES[self.name]

    def chunks(
        self,
        feed: Feed,
        facts: FeedFacts,
        entries: Iterable[Entry],
        self_url: str | None = None,
        on_dropped: DropCounter | None = None,
    ) -> Iterator[bytes]:
        """The feed as UTF-8 chunks: header, one chunk per entry, end (so a caller can write
        a big feed out as it is cleaned)."""
        dropped = Dropped()
        yield self.header(feed, facts, self_url, dropped).encode("utf-8")
        if on_dropped is not None and dropped.count:
            on_dropped(dropped.count, False)
        before = ""
        for entry in entries:
            dropped.count = 0
            yield (before + self.entry(entry, feed.lang, facts.updated, dropped)).encode("utf-8")
            before = self.between
            if on_dropped is not None and dropped.count:
                on_dropped(dropped.count, True)
        yield self.end

    def render(
        self, feed: Feed, *, self_url: str | None = None, on_dropped: DropCounter | None = None
    ) -> bytes:
        """The whole feed."""
        facts = FeedFacts.of(feed)
        return b"".join(self.chunks(feed, facts, feed.entries, self_url, on_dropped))
