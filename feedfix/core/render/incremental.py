"""Rendering a feed again, copying the bytes of the entries that have not changed (Atom).

The service renders the same feed again on every poll that brings anything new, and all but
the new entries render to the bytes they had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from feedfix.core.model import Feed
from feedfix.core.render.atom import render_entry, render_header
from feedfix.core.render.values import FeedFacts


@dataclass(frozen=True)
class Rendering:
    """A rendered feed and where each entry's bytes lie in it.

    The service renders the same feed again on every poll that brings anything new, and all
    but the new entries render to the bytes they had: ``rerender`` copies those instead
    (rendering was nearly half the work of a poll that brought one new entry). The spans
    cost a few integers per entry; the body is the one already being served.
    """

    body: bytes
    lang: str | None  # the feed's language, which an entry's xml:lang is rendered against
    updated: datetime  # what entries without a date of their own were rendered with
    # entry id -> (its stamp, start, end); an entry without a stamp is never copied
    spans: Mapping[str, tuple[str | None, int, int]]
    rendered: int  # entries rendered anew; the others were copied from the previous body


def rerender(
    feed: Feed,
    previous: Rendering | None,
    self_url: str | None = None,
    stamps: Mapping[str, str] | None = None,
) -> Rendering:
    """``render_atom(feed)``, copying the bytes of each entry whose stamp is the one it had in
    ``previous`` and that would render the same way.

    A stamp (by entry id) must change whenever the entry does: the service's is the digest
    of the entry's source and rules, so the spans hold a few strings and integers per entry
    rather than the entries themselves (which stay in the store)."""
    facts = FeedFacts.of(feed)
    header = render_header(feed, facts, self_url).encode("utf-8")
    old = previous.spans if previous is not None and previous.lang == feed.lang else {}
    same_fallback = previous is not None and previous.updated == facts.updated
    view = memoryview(previous.body) if previous is not None else memoryview(b"")
    chunks: list[bytes | memoryview] = [header]
    spans: dict[str, tuple[str | None, int, int]] = {}
    offset, rendered = len(header), 0
    for entry in feed.entries:
        key = entry.id or ""
        seen = old.get(key)
        stamp = stamps.get(key) if stamps is not None else None
        chunk: bytes | memoryview
        if (
            seen is not None
            and stamp is not None
            and seen[0] == stamp
            and (entry.date or same_fallback)
        ):
            chunk = view[seen[1] : seen[2]]
        else:
            chunk = render_entry(entry, feed.lang, facts.updated).encode("utf-8")
            rendered += 1
        spans.setdefault(key, (stamp, offset, offset + len(chunk)))
        offset += len(chunk)
        chunks.append(chunk)
    chunks.append(b"</feed>\n")
    return Rendering(b"".join(chunks), feed.lang, facts.updated, spans, rendered)
