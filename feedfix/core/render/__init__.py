"""Feeds out of the model: deterministic bytes in Atom 1.0, RSS 2.0 and JSON Feed 1.1.

``atom``, ``rss`` and ``json_feed`` write the formats, ``incremental`` writes Atom again
copying what did not change, and the formats share ``common`` (links, URLs, dates and the
addresses of a feed's formats, written the same in each), ``values`` (what a value may be
where it goes) and ``xml`` (writing XML by hand). Everything here is a function of the model:
the same feed always renders to the same bytes.
"""

from __future__ import annotations

from feedfix.core.render import atom, json_feed, rss
from feedfix.core.render.atom import render_atom, render_chunks, render_entry, render_header
from feedfix.core.render.common import FEED_TYPES, Format, siblings
from feedfix.core.render.incremental import Rendering, rerender
from feedfix.core.render.values import FALLBACK_UPDATED, DropCounter, Dropped, FeedFacts

FORMATS = {fmt.name: fmt for fmt in (atom.FORMAT, rss.FORMAT, json_feed.FORMAT)}

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
