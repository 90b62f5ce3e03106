"""RSS 2.0 out of the model: the same feed as the Atom, within what RSS can say.

Valid by the RSS Advisory Board's profile (what the W3C feed validator checks): one
``channel`` with its required ``title``, ``link`` and ``description``, RFC 822 dates in GMT,
``guid isPermaLink="false"`` unless the id is the link, every namespace declared. The mapping:

- plain text (titles, names, terms) with ``&``, ``<`` and ``>`` as hexadecimal references, as
  the profile asks (readers that take a title as HTML and those that take it as text both
  read the same words); HTML content entity-encoded in ``description``, and the full text in
  ``content:encoded`` where the entry has a summary of its own;
- ``author`` only with an email (``email (name)``), else ``dc:creator`` for a name;
- one ``enclosure`` per item (RSS allows no more): the first, the others as ``media:content``;
- the item's other links (related, via, replies…) as ``atom:link``, and ``comments`` for the
  first HTML replies link;
- an entry's language, when it differs from the channel's, as ``dc:language``;
- ``pubDate`` is the entry's published date, else its updated date (RSS has one date).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from feedfix import __version__
from feedfix.core.ids import absolute_iri
from feedfix.core.model import Category, Entry, Feed, Media, Person
from feedfix.core.render import common
from feedfix.core.render.common import FEED_TYPES
from feedfix.core.render.values import (
    UNCOUNTED,
    Dropped,
    FeedFacts,
    email_address,
    language_tag,
)
from feedfix.core.render.xml import attributes, element, plain_element

NAMESPACES = {
    "xmlns:atom": "http://www.w3.org/2005/Atom",
    "xmlns:content": "http://purl.org/rss/1.0/modules/content/",
    "xmlns:dc": "http://purl.org/dc/elements/1.1/",
    "xmlns:media": "http://search.yahoo.com/mrss/",
}
DOCS = "https://www.rssboard.org/rss-specification"
UNKNOWN_TYPE = "application/octet-stream"  # an enclosure's type is required in RSS
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=64)  # equal instants write the same: a cache is safe
def rss_date(value: datetime) -> str:
    """RFC 822 (with a four-digit year, as RFC 1123 and the profile ask) in GMT."""
    d = value.astimezone(UTC)
    return (
        f"{_DAYS[d.weekday()]}, {d.day:02d} {_MONTHS[d.month - 1]} {d.year:04d} "
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d} GMT"
    )


def _people(indent: str, people: Iterable[Person], dropped: Dropped) -> Iterator[str]:
    """The first person with an email as ``author`` (RSS's grammar: once, an address), every
    other as ``dc:creator`` (a name)."""
    author = False
    for person in people:
        email = dropped.check(person.email, email_address(person.email))
        if email and not author:
            author = True
            yield plain_element(indent, "author", f"{email} ({person.name})")
        else:
            yield plain_element(indent, "dc:creator", person.name)


def _category(indent: str, category: Category, dropped: Dropped) -> str:
    """A ``category``, its ``domain`` the Atom ``scheme`` (an IRI, or none)."""
    scheme = category.scheme
    scheme = dropped.check(scheme, absolute_iri(scheme) if scheme else None)
    return plain_element(indent, "category", category.term, domain=scheme)


def _media(indent: str, media: Media) -> str:
    content = media.kind == "content"
    return element(
        indent,
        f"media:{media.kind}",
        url=common.url(media.url),
        type=media.type if content else None,
        medium=media.medium if content else None,
        width=str(media.width) if media.width else None,
        height=str(media.height) if media.height else None,
    )


def _atom_link(indent: str, link: common.NormalLink) -> str:
    rel, href, kind, lang, title, length = link
    return element(
        indent,
        "atom:link",
        href=href,
        rel=rel,
        type=kind,
        hreflang=lang,
        title=title,
        length=length,
    )


def render_entry(
    entry: Entry, feed_lang: str | None, when: datetime, dropped: Dropped = UNCOUNTED
) -> str:
    """One ``<item>``; ``when`` stands in for an entry with no date at all."""
    i = "      "
    updated, published = common.dates(entry, when)
    links = list(common.links(entry.links, dropped))
    link = next((x[1] for x in links if x[0] == "alternate"), None)
    parts = ["    <item>\n"]
    if entry.title:
        parts.append(plain_element(i, "title", entry.title))
    if link is not None:
        parts.append(element(i, "link", link))
    body = entry.content or ""
    parts.append(element(i, "description", entry.summary or body))
    if entry.summary and body:
        parts.append(element(i, "content:encoded", body))
    parts.extend(_people(i, entry.authors, dropped))
    parts.extend(_category(i, category, dropped) for category in entry.categories)
    guid = entry.id or ""
    parts.append(element(i, "guid", guid, isPermaLink=None if guid == link else "false"))
    parts.append(element(i, "pubDate", rss_date(published or updated)))
    parts.extend(_links(i, links, link))
    lang = dropped.check(entry.lang, language_tag(entry.lang))
    if lang and lang != language_tag(feed_lang):
        parts.append(element(i, "dc:language", lang))
    if entry.rights:
        parts.append(plain_element(i, "dc:rights", entry.rights))
    parts.extend(_media(i, media) for media in entry.media if common.url(media.url))
    parts.append("    </item>\n")
    return "".join(parts)


def _links(indent: str, links: list[common.NormalLink], link: str | None) -> Iterator[str]:
    """The item's links besides its ``link``: the first enclosure as ``enclosure`` and the
    others as ``media:content``, the first HTML replies link as ``comments``, the rest as
    ``atom:link``."""
    enclosed = comments = False
    for normal in links:
        rel, href, kind, _lang, _title, length = normal
        if rel == "alternate" and href == link:
            link = None  # the item's <link>: written once
        elif rel == "enclosure" and not enclosed:
            enclosed = True
            yield element(
                indent, "enclosure", url=href, length=length or "0", type=kind or UNKNOWN_TYPE
            )
        elif rel == "enclosure":
            yield element(indent, "media:content", url=href, type=kind, fileSize=length)
        elif rel == "replies" and not comments and kind in (None, "text/html"):
            comments = True
            yield element(indent, "comments", href)
        else:
            yield _atom_link(indent, normal)


def render_header(
    feed: Feed, facts: FeedFacts, self_url: str | None = None, dropped: Dropped = UNCOUNTED
) -> str:
    """The XML declaration, the ``<rss>`` and ``<channel>`` start tags and the channel's own
    elements."""
    i = "    "
    links = list(common.links(feed.links, dropped))
    site = next((x[1] for x in links if x[0] == "alternate"), None)
    link = site or common.url(self_url) or feed.id or ""
    title = feed.title or link  # a channel's title may not be empty
    parts = [
        "<?xml version='1.0' encoding='utf-8'?>\n",
        f"<rss{attributes({'version': '2.0', **NAMESPACES})}>\n",
        "  <channel>\n",
        plain_element(i, "title", title),
        element(i, "link", link),
        plain_element(i, "description", feed.subtitle or title),
    ]
    lang = dropped.check(feed.lang, language_tag(feed.lang))
    if lang:
        parts.append(element(i, "language", lang))
    if feed.rights:
        parts.append(plain_element(i, "copyright", feed.rights))
    authors = feed.authors
    if facts.needs_author:
        authors = (Person(name=title or "unknown"),)  # as the Atom names one
    editor = next((p for p in authors if email_address(p.email)), None)
    for person in authors:
        if person is editor:
            parts.append(plain_element(i, "managingEditor", _editor(person)))
        else:
            parts.append(plain_element(i, "dc:creator", person.name))
    parts.append(element(i, "lastBuildDate", rss_date(facts.updated)))
    parts.extend(_category(i, category, dropped) for category in feed.categories)
    parts.append(element(i, "generator", f"feedfix {__version__}"))
    parts.append(element(i, "docs", DOCS))
    image = common.url(feed.logo) or common.url(feed.icon)
    if image:
        parts.extend(
            [
                f"{i}<image>\n",
                element(i + "  ", "url", image),
                plain_element(i + "  ", "title", title),
                element(i + "  ", "link", link),
                f"{i}</image>\n",
            ]
        )
    urls = common.siblings(self_url, "rss")
    if "rss" in urls:
        parts.append(
            element(
                i, "atom:link", href=common.url(urls["rss"]), rel="self", type=FEED_TYPES["rss"]
            )
        )
    for normal in links:
        if normal[0] != "alternate" or normal[1] != site:
            parts.append(_atom_link(i, normal))
    for other, href in urls.items():
        if other != "rss":
            parts.append(
                element(
                    i, "atom:link", href=common.url(href), rel="alternate", type=FEED_TYPES[other]
                )
            )
    return "".join(parts)


def _editor(person: Person) -> str:
    return f"{email_address(person.email)} ({person.name})"


FORMAT = common.Format("rss", render_header, render_entry, b"  </channel>\n</rss>\n")
render_chunks = FORMAT.chunks
render_rss = FORMAT.render
