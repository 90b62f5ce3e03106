"""Feeds out of the model: deterministic bytes in Atom 1.0, RSS 2.0 and JSON Feed 1.1.

``atom``, ``rss`` and ``json_feed`` write the formats, ``incremental`` writes Atom again
copying what did not change, and the formats share ``common`` (links, URLs, dates and the
addresses of a feed's formats, written the same in each), ``values`` (what a value may be
where it goes) and ``xml`` (writing XML by hand). Everything here is a function of the model:
the same feed always renders to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from feedfix.core.model import Entry, Feed
from feedfix.core.render import atom, json_feed, rss
from feedfix.core.render.atom import render_atom, render_chunks, render_entry, render_header
from feedfix.core.render.common import FEED_TYPES, siblings
from feedfix.core.render.incremental import Rendering, rerender
from feedfix.core.render.values import FALLBACK_UPDATED, DropCounter, Dropped, FeedFacts

Chunks = Callable[
    [Feed, FeedFacts, Iterable[Entry], str | None, DropCounter | None], Iterator[bytes]
]


@dataclass(frozen=True)
class Format:
    """An output format: its name (``--format``, the URL's suffix), media type and writer."""

    name: str
    media_type: str
    chunks: Chunks  # header, one chunk per entry, footer

    def render(
        self, feed: Feed, *, self_url: str | None = None, on_dropped: DropCounter | None = None
    ) -> bytes:
        """The whole feed in this format."""
        facts = FeedFacts.of(feed)
        return b"".join(self.chunks(feed, facts, feed.entries, self_url, on_dropped))


FORMATS = {
    "atom": Format("atom", FEED_TYPES["atom"], atom.render_chunks),
    "rss": Format("rss", FEED_TYPES["rss"], rss.render_chunks),
    "json": Format("json", FEED_TYPES["json"], json_feed.render_chunks),
}

__all__ = [
    "FALLBACK_UPDATED",
    "FEED_TYPES",
    "FORMATS",
    "DropCounter",
    "Dropped",
    "FeedFacts",
    "Format",
    "Rendering",
    "render_atom",
    "render_chunks",
    "render_entry",
    "render_header",
    "rerender",
    "siblings",
]
