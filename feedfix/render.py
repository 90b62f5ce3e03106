"""Atom 1.0 out of the model: deterministic bytes that validate against RFC 4287.

Written with lxml directly rather than feedgen: feedgen falls back to the clock for a missing
``updated``, cannot put ``xml:lang`` on an entry or Media RSS elements into Atom, and cost more
than the rest of the pipeline in a measurement. Everything here is a function of the model, so
the same feed always renders to the same bytes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lxml import etree

from feedfix import __version__
from feedfix.model import Category, Entry, Feed, Link, Media, Person

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "http://search.yahoo.com/mrss/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
FALLBACK_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
"""``updated`` for a feed and entries with no date anywhere: fixed, so output never drifts."""
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_A = f"{{{ATOM}}}"
_M = f"{{{MEDIA}}}"


def xml_text(value: str) -> str:
    """Text with the characters XML 1.0 cannot carry removed."""
    return _INVALID_XML.sub("", value)


def atom_date(value: datetime) -> str:
    """RFC 3339 in UTC, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def _person(parent: etree._Element, person: Person) -> None:
    el = _sub(parent, _A + "author")
    _sub(el, _A + "name", person.name)
    if person.email:
        _sub(el, _A + "email", person.email)
    if person.uri:
        _sub(el, _A + "uri", person.uri)


def _category(parent: etree._Element, category: Category) -> None:
    attrs = {"term": category.term}
    if category.scheme:
        attrs["scheme"] = category.scheme
    if category.label:
        attrs["label"] = category.label
    _sub(parent, _A + "category", **attrs)


def _links(parent: etree._Element, links: tuple[Link, ...], self_url: str | None) -> None:
    """Links, with at most one alternate per (type, hreflang) as RFC 4287 requires."""
    seen: set[tuple[str, str]] = set()
    alternates: set[tuple[str, str]] = set()
    if self_url:
        _sub(parent, _A + "link", rel="self", href=self_url, type="application/atom+xml")
    for link in links:
        rel = link.rel
        if rel == "hub":
            continue  # the upstream's WebSub hub does not publish this feed
        if rel == "self":
            rel = "via"  # the upstream's own address: where this feed's content came from
        if rel == "alternate":
            key = (link.type or "", link.hreflang or "")
            if key in alternates:
                rel = "related"
            alternates.add(key)
        if (rel, link.href) in seen:
            continue
        seen.add((rel, link.href))
        attrs = {"href": link.href, "rel": rel}
        if link.type:
            attrs["type"] = link.type
        if link.hreflang:
            attrs["hreflang"] = link.hreflang
        if link.title:
            attrs["title"] = link.title
        if link.length and link.length > 0:
            attrs["length"] = str(link.length)
        _sub(parent, _A + "link", **attrs)


def _media(parent: etree._Element, media: Media) -> None:
    attrs = {"url": media.url}
    if media.type and media.kind == "content":
        attrs["type"] = media.type
    if media.medium and media.kind == "content":
        attrs["medium"] = media.medium
    if media.width:
        attrs["width"] = str(media.width)
    if media.height:
        attrs["height"] = str(media.height)
    _sub(parent, _M + media.kind, **attrs)


def _entry(parent: etree._Element, entry: Entry, feed_lang: str | None, when: datetime) -> None:
    el = _sub(parent, _A + "entry")
    if entry.lang and entry.lang != feed_lang:
        el.set(XML_LANG, entry.lang)
    _sub(el, _A + "id", entry.id or "")
    _sub(el, _A + "title", entry.title or "")
    _sub(el, _A + "updated", atom_date(entry.updated or entry.published or when))
    if entry.published:
        _sub(el, _A + "published", atom_date(entry.published))
    _links(el, entry.links, None)
    for person in entry.authors:
        _person(el, person)
    for category in entry.categories:
        _category(el, category)
    if entry.summary:
        _sub(el, _A + "summary", entry.summary, type="html")
    if entry.content or entry.link is None:
        _sub(el, _A + "content", entry.content or "", type="html")
    if entry.rights:
        _sub(el, _A + "rights", entry.rights)
    for media in entry.media:
        _media(el, media)


def feed_updated(feed: Feed) -> datetime:
    """The feed's own date, else its newest entry's, else the fixed fallback."""
    dates = [e.date for e in feed.entries if e.date]
    return feed.updated or max(dates, default=FALLBACK_UPDATED)


def render_atom(feed: Feed, *, self_url: str | None = None) -> bytes:
    """The feed as Atom 1.0 bytes (UTF-8, with an XML declaration)."""
    nsmap: dict[str | None, str] = {None: ATOM}
    if any(e.media for e in feed.entries):
        nsmap["media"] = MEDIA
    root = etree.Element(_A + "feed", nsmap=nsmap)
    if feed.lang:
        root.set(XML_LANG, xml_text(feed.lang))
    when = feed_updated(feed)
    _sub(root, _A + "id", feed.id or "")
    _sub(root, _A + "title", feed.title or "")
    if feed.subtitle:
        _sub(root, _A + "subtitle", feed.subtitle)
    _sub(root, _A + "updated", atom_date(when))
    _links(root, feed.links, self_url)
    authors = feed.authors
    if not authors and any(not e.authors for e in feed.entries):
        authors = (Person(name=feed.title or "unknown"),)  # every entry needs an author
    for person in authors:
        _person(root, person)
    for category in feed.categories:
        _category(root, category)
    _sub(root, _A + "generator", "feedfix", version=__version__)
    if feed.icon:
        _sub(root, _A + "icon", feed.icon)
    if feed.logo:
        _sub(root, _A + "logo", feed.logo)
    if feed.rights:
        _sub(root, _A + "rights", feed.rights)
    for entry in feed.entries:
        _entry(root, entry, feed.lang, when)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
