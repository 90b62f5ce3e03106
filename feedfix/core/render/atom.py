"""Atom 1.0 out of the model: deterministic bytes that validate against RFC 4287.

Serialized by hand rather than with feedgen or an lxml tree: feedgen falls back to the clock
for a missing ``updated`` and cannot carry entry ``xml:lang`` or Media RSS into Atom, and a
tree doubles the memory of a large feed. Entries are rendered one at a time
(``render_chunks``), so a caller can write a big feed out as it is cleaned. Everything here is
a function of the model: the same feed always renders to the same bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime

from feedfix import __version__
from feedfix.core.ids import absolute_iri, mend_iri
from feedfix.core.model import Category, Entry, Feed, Link, Media, Person
from feedfix.core.render import common
from feedfix.core.render.common import FEED_TYPES
from feedfix.core.render.values import (
    MAX_URL,
    UNCOUNTED,
    Dropped,
    FeedFacts,
    email_address,
    language_tag,
)
from feedfix.core.render.xml import attributes, element

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "http://search.yahoo.com/mrss/"


@functools.lru_cache(maxsize=64)  # an entry's updated is often its published: written once
def atom_date(value: datetime) -> str:
    """RFC 3339 in UTC, to the second (equal instants write the same: a cache is safe).

    Written as ``strftime("%Y-%m-%dT%H:%M:%SZ")`` writes it (the year unpadded, as glibc
    does), in two thirds of its time."""
    d = value.astimezone(UTC)
    return f"{d.year}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


def _person(indent: str, person: Person, dropped: Dropped) -> str:
    inner = indent + "  "
    parts = [f"{indent}<author>\n", element(inner, "name", person.name)]
    email = dropped.check(person.email, email_address(person.email))
    if email:
        parts.append(element(inner, "email", email))
    if person.uri:
        parts.append(element(inner, "uri", mend_iri(person.uri.strip())))
    parts.append(f"{indent}</author>\n")
    return "".join(parts)


def _category(indent: str, category: Category, dropped: Dropped) -> str:
    scheme = category.scheme
    scheme = dropped.check(scheme, absolute_iri(scheme) if scheme else None)
    return element(indent, "category", term=category.term, scheme=scheme, label=category.label)


def _links(indent: str, links: Iterable[Link], dropped: Dropped = UNCOUNTED) -> str:
    """Links (``common.links``: the same in every format)."""
    return "".join(
        element(
            indent, "link", href=href, rel=rel, type=kind, hreflang=lang, title=title, length=length
        )
        for rel, href, kind, lang, title, length in common.links(links, dropped)
    )


def other_formats(self_url: str | None, name: str) -> tuple[Link, ...]:
    """``rel="alternate"`` links to the feed's other formats, when ``self_url`` names them."""
    return tuple(
        Link(href=href, rel="alternate", type=FEED_TYPES[other])
        for other, href in common.siblings(self_url, name).items()
        if other != name
    )


def _media(indent: str, media: Media) -> str:
    content = media.kind == "content"
    return element(
        indent,
        f"media:{media.kind}",
        url=mend_iri(media.url.strip()),
        type=media.type if content else None,
        medium=media.medium if content else None,
        width=str(media.width) if media.width else None,
        height=str(media.height) if media.height else None,
    )


def render_entry(
    entry: Entry, feed_lang: str | None, when: datetime, dropped: Dropped = UNCOUNTED
) -> str:
    """One ``<entry>``; ``when`` stands in for an entry with no date at all."""
    i = "    "
    lang = dropped.check(entry.lang, language_tag(entry.lang))
    lang = lang if lang and lang != language_tag(feed_lang) else None
    updated, published = common.dates(entry, when)
    parts = [
        f"  <entry{attributes({'xml:lang': lang})}>\n" if lang else "  <entry>\n",
        element(i, "id", entry.id or ""),
        element(i, "title", entry.title or ""),
        element(i, "updated", atom_date(updated)),
    ]
    if published:
        parts.append(element(i, "published", atom_date(published)))
    parts.append(_links(i, entry.links, dropped))
    if entry.authors:  # (most entries have none to write: no generator to start)
        parts.extend(_person(i, person, dropped) for person in entry.authors)
    if entry.categories:
        parts.extend(_category(i, category, dropped) for category in entry.categories)
    if entry.summary:
        parts.append(element(i, "summary", entry.summary, type="html"))
    if entry.content or entry.link is None:  # an entry without content needs an alternate link
        parts.append(element(i, "content", entry.content or "", type="html"))
    if entry.rights:
        parts.append(element(i, "rights", entry.rights))
    if entry.media:
        parts.extend(_media(i, media) for media in entry.media if len(media.url) <= MAX_URL)
    parts.append("  </entry>\n")
    return "".join(parts)


def render_header(
    feed: Feed, facts: FeedFacts, self_url: str | None = None, dropped: Dropped = UNCOUNTED
) -> str:
    """The XML declaration, the ``<feed>`` start tag and the feed's own elements."""
    i = "  "
    root_attrs = {
        "xmlns": ATOM,
        "xmlns:media": MEDIA if facts.has_media else None,
        "xml:lang": dropped.check(feed.lang, language_tag(feed.lang)),
    }
    parts = [
        "<?xml version='1.0' encoding='utf-8'?>\n",
        f"<feed{attributes(root_attrs)}>\n",
        element(i, "id", feed.id or ""),
        element(i, "title", feed.title or ""),
    ]
    if feed.subtitle:
        parts.append(element(i, "subtitle", feed.subtitle))
    parts.append(element(i, "updated", atom_date(facts.updated)))
    if self_url:
        self_link = mend_iri(self_url)
        parts.append(element(i, "link", href=self_link, rel="self", type="application/atom+xml"))
    parts.append(_links(i, (*feed.links, *other_formats(self_url, "atom")), dropped))
    authors = feed.authors
    if facts.needs_author:
        authors = (Person(name=feed.title or "unknown"),)  # every entry needs an author
    parts.extend(_person(i, person, dropped) for person in authors)
    parts.extend(_category(i, category, dropped) for category in feed.categories)
    parts.append(element(i, "generator", "feedfix", version=__version__))
    if feed.icon and len(feed.icon) <= MAX_URL:
        parts.append(element(i, "icon", mend_iri(feed.icon.strip())))
    if feed.logo and len(feed.logo) <= MAX_URL:
        parts.append(element(i, "logo", mend_iri(feed.logo.strip())))
    if feed.rights:
        parts.append(element(i, "rights", feed.rights))
    return "".join(parts)


FORMAT = common.Format("atom", render_header, render_entry, b"</feed>\n")
render_chunks = FORMAT.chunks
render_atom = FORMAT.render
