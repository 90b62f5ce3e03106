"""The fast path: read RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 with a hardened lxml parser.

The parser never loads a DTD, never resolves an entity and never touches the network, so
external entities and entity-expansion bombs are inert. Depth and text size stay at libxml2's
safe defaults (``huge_tree`` off).
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from lxml import etree

from feedfix.core.html import html_to_text
from feedfix.core.model import MEDIA_KINDS, Category, Entry, Feed, Link, Media, MediaKind, Person
from feedfix.core.parse.dates import parse_date
from feedfix.core.parse.values import whole_number as _int

ATOM = "http://www.w3.org/2005/Atom"
ATOM03 = "http://purl.org/atom/ns#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RSS10 = "http://purl.org/rss/1.0/"
RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
MEDIA = "http://search.yahoo.com/mrss/"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XHTML = "http://www.w3.org/1999/xhtml"

FEED_ROOTS = {"rss", "RDF", "feed", "channel"}
_RSS_NAMESPACES = {"", RSS10, RSS090}
_ATOM_NAMESPACES = {ATOM, ATOM03}
_EMAIL_NAME = re.compile(r"^\s*([^\s()<>]+@[^\s()<>]+)\s*\((.*)\)\s*$")
_NAME_EMAIL = re.compile(r"^\s*(.*?)\s*<([^\s<>]+@[^\s<>]+)>\s*$")


def split_tag(tag: object) -> tuple[str, str]:
    """``{ns}local`` as ``(ns, local)``; comments and entity nodes give ``("", "")``."""
    if not isinstance(tag, str):
        return "", ""
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _children(el: etree._Element) -> Iterator[tuple[str, str, etree._Element]]:
    for child in el:
        ns, local = split_tag(child.tag)
        if local:
            yield ns, local, child


def _text(el: etree._Element) -> str:
    return "".join(el.itertext()).strip()


def _opt(el: etree._Element) -> str | None:
    return _text(el) or None


def _lang(el: etree._Element) -> str | None:
    return el.get(f"{{{XML_NS}}}lang") or None


def _xml_base(el: etree._Element) -> str | None:
    """The ``xml:base`` in force at ``el``, if the element or an ancestor sets one."""
    if any(node.get(f"{{{XML_NS}}}base") for node in (el, *el.iterancestors())):
        return el.base
    return None


def _inner_markup(el: etree._Element) -> str:
    """An element's children as HTML text (for raw XHTML inside RSS/Atom content)."""
    parts = [html.escape(el.text or "", quote=False)]
    for child in el:
        copy = etree.fromstring(etree.tostring(child))
        for node in copy.iter():
            if isinstance(node.tag, str):
                node.tag = split_tag(node.tag)[1]
        etree.cleanup_namespaces(copy)
        parts.append(etree.tostring(copy, encoding="unicode", method="html", with_tail=False))
        parts.append(html.escape(child.tail or "", quote=False))
    return "".join(parts)


def _atom_html(el: etree._Element) -> str:
    """An Atom text construct as HTML, whatever its ``type``/``mode``."""
    kind = (el.get("type") or "text").lower()
    mode = (el.get("mode") or "").lower()
    if mode == "base64":
        try:
            raw = base64.b64decode(_text(el)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raw = ""
        return raw if "html" in kind else html.escape(raw)
    if kind in {"xhtml", "application/xhtml+xml"} or mode == "xml" or len(el):
        div = next((c for c in el if split_tag(c.tag) == (XHTML, "div")), None)
        return _inner_markup(div if div is not None else el).strip()
    text = "".join(el.itertext())
    if kind in {"html", "text/html"} or mode == "escaped":
        return text.strip()
    return html.escape(text.strip(), quote=False).replace("\n", "<br>\n")


def _atom_text(el: etree._Element) -> str | None:
    """An Atom text construct as plain text (titles, subtitles)."""
    kind = (el.get("type") or "text").lower()
    if kind in {"html", "text/html"} or el.get("mode") == "escaped":
        return html_to_text(_text(el)).strip() or None
    return _text(el) or None


def _person(text: str) -> Person | None:
    text = text.strip()
    if not text:
        return None
    match = _EMAIL_NAME.match(text)
    if match:
        return Person(name=match.group(2).strip() or match.group(1), email=match.group(1))
    match = _NAME_EMAIL.match(text)
    if match:
        return Person(name=match.group(1) or match.group(2), email=match.group(2))
    if "@" in text and " " not in text:
        return Person(name=text, email=text)
    return Person(name=text)


def _atom_person(el: etree._Element) -> Person | None:
    fields = {local: _text(child) for _, local, child in _children(el)}
    name = fields.get("name") or fields.get("email") or _text(el)
    if not name:
        return None
    return Person(name=name, email=fields.get("email") or None, uri=fields.get("uri") or None)


def _media(el: etree._Element, kind: MediaKind) -> Media | None:
    url = (el.get("url") or "").strip()
    if not url:
        return None
    return Media(
        kind=kind,
        url=url,
        type=el.get("type") or None,
        medium=el.get("medium") or None,
        width=_int(el.get("width")),
        height=_int(el.get("height")),
    )


def _media_children(el: etree._Element) -> list[Media]:
    """``media:content``/``media:thumbnail``, also inside ``media:group``."""
    found: list[Media] = []
    for ns, local, child in _children(el):
        if ns != MEDIA:
            continue
        if local == "group":
            found.extend(_media_children(child))
        elif local in MEDIA_KINDS:
            media = _media(child, MEDIA_KINDS[local])
            if media is not None:
                found.append(media)
    return found


def _atom_link(el: etree._Element) -> Link | None:
    href = (el.get("href") or "").strip()
    if not href:
        return None
    rel = (el.get("rel") or "alternate").strip()
    return Link(
        href=href,
        rel=rel,
        type=el.get("type") or None,
        length=_int(el.get("length")),
        title=el.get("title") or None,
        hreflang=el.get("hreflang") or None,
    )


def _first_date(values: list[str], tz: tzinfo) -> datetime | None:
    for value in values:
        parsed = parse_date(value, tz)
        if parsed is not None:
            return parsed
    return None


def _common_extension(ns: str, local: str, child: etree._Element, acc: _Extras) -> bool:
    """Dublin Core and Media RSS, shared by RSS items and Atom entries."""
    if ns == DC and local == "creator":
        person = _person(_text(child))
        if person:
            acc.authors.append(person)
    elif (ns == DC and local == "date") or (ns == DCTERMS and local == "modified"):
        acc.updated_raw.append(_text(child))
    elif ns == DCTERMS and local in {"issued", "created"}:
        acc.published_raw.append(_text(child))
    elif ns == DC and local == "subject" and _text(child):
        acc.categories.append(Category(term=_text(child)))
    elif ns == DC and local == "language":
        acc.lang.append(_text(child))
    elif ns == MEDIA and local in MEDIA_KINDS:
        media = _media(child, MEDIA_KINDS[local])
        if media:
            acc.media.append(media)
    elif ns == MEDIA and local == "group":
        acc.media.extend(_media_children(child))
    else:
        return False
    return True


@dataclass
class _Extras:
    """What an element's children add up to, gathered in one pass."""

    authors: list[Person] = field(default_factory=list)
    updated_raw: list[str] = field(default_factory=list)
    published_raw: list[str] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    lang: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


def _rss_item(item: etree._Element, tz: tzinfo) -> Entry:
    acc = _Extras()
    title = link = description = encoded = guid = None
    guid_is_link = False
    pub_raw: list[str] = []
    for ns, local, child in _children(item):
        if _common_extension(ns, local, child, acc):
            continue
        if ns in _RSS_NAMESPACES:
            if local == "title":
                title = _opt(child)
            elif local == "link":
                link = _opt(child)
            elif local == "description":
                description = _inner_markup(child) if len(child) else _text(child)
            elif local == "guid":
                guid = _opt(child)
                guid_is_link = (child.get("isPermaLink") or "true").lower() == "true"
            elif local == "pubDate":
                pub_raw.append(_text(child))
            elif local == "author":
                person = _person(_text(child))
                if person:
                    acc.authors.append(person)
            elif local == "category" and _text(child):
                acc.categories.append(Category(term=_text(child), scheme=child.get("domain")))
            elif local == "enclosure" and (child.get("url") or "").strip():
                acc.links.append(
                    Link(
                        href=(child.get("url") or "").strip(),
                        rel="enclosure",
                        type=child.get("type") or None,
                        length=_int(child.get("length")),
                    )
                )
            elif local == "comments" and _text(child):
                acc.links.append(Link(href=_text(child), rel="replies", type="text/html"))
        elif ns == CONTENT and local == "encoded":
            encoded = _text(child)
        elif ns in _ATOM_NAMESPACES and local == "link":
            atom_link = _atom_link(child)
            if atom_link:
                acc.links.append(atom_link)
        elif ns in _ATOM_NAMESPACES and local == "updated":
            acc.updated_raw.append(_text(child))
    if guid is None:
        guid = item.get(f"{{{RDF}}}about") or None
    if link is None and guid and guid_is_link and "://" in guid:
        link = guid
    links = [Link(href=link)] if link else []
    links.extend(acc.links)
    published = _first_date(pub_raw + acc.published_raw, tz)
    updated = _first_date(acc.updated_raw, tz)
    langs = [v for v in acc.lang if v]
    return Entry(
        id=guid,
        title=title,
        links=tuple(links),
        content=encoded or description,
        summary=description if encoded and description and description != encoded else None,
        authors=tuple(acc.authors),
        categories=tuple(acc.categories),
        published=published,
        updated=updated or published,
        media=tuple(acc.media),
        lang=_lang(item) or (langs[0] if langs else None),
        base=_xml_base(item),
    )


def _atom_common(ns: str, local: str, child: etree._Element, acc: _Extras) -> bool:
    """Atom elements a feed and an entry share: link, author, category, updated."""
    if ns not in _ATOM_NAMESPACES:
        return False
    if local == "link":
        atom_link = _atom_link(child)
        if atom_link:
            acc.links.append(atom_link)
    elif local in {"updated", "modified"}:
        acc.updated_raw.append(_text(child))
    elif local == "author":
        person = _atom_person(child)
        if person:
            acc.authors.append(person)
    elif local == "category":
        term = (child.get("term") or _text(child)).strip()
        if term:
            acc.categories.append(
                Category(term=term, scheme=child.get("scheme"), label=child.get("label"))
            )
    else:
        return False
    return True


def _atom_entry(entry: etree._Element, tz: tzinfo) -> Entry:
    acc = _Extras()
    fields: dict[str, str | None] = {}
    content_el: etree._Element | None = None
    for ns, local, child in _children(entry):
        if _common_extension(ns, local, child, acc) or _atom_common(ns, local, child, acc):
            continue
        if ns not in _ATOM_NAMESPACES:
            continue
        if local == "id":
            fields["id"] = _opt(child)
        elif local == "title":
            fields["title"] = _atom_text(child)
        elif local == "content":
            content_el = child
            fields["content"] = _atom_html(child) or None
            src = (child.get("src") or "").strip()
            if src and not fields["content"]:
                acc.links.append(Link(href=src, rel="related", type=child.get("type")))
        elif local == "summary":
            fields["summary"] = _atom_html(child) or None
        elif local in {"published", "issued", "created"}:
            acc.published_raw.append(_text(child))
        elif local == "rights":
            fields["rights"] = _atom_text(child)
    content = fields.get("content")
    summary = fields.get("summary")
    if content is None and summary is not None:
        content, summary = summary, None
    published = _first_date(acc.published_raw, tz)
    updated = _first_date(acc.updated_raw, tz)
    return Entry(
        id=fields.get("id"),
        title=fields.get("title"),
        links=tuple(acc.links),
        content=content,
        summary=summary if summary != content else None,
        authors=tuple(acc.authors),
        categories=tuple(acc.categories),
        published=published,
        updated=updated or published,
        media=tuple(acc.media),
        lang=_lang(entry),
        base=_xml_base(content_el if content_el is not None else entry),
        rights=fields.get("rights"),
    )


def _rss_channel(root: etree._Element, tz: tzinfo, streamed: list[Entry]) -> Feed:
    rdf = split_tag(root.tag)[1] == "RDF"
    channel = root if split_tag(root.tag)[1] == "channel" else None
    if channel is None:
        channel = next((c for _, local, c in _children(root) if local == "channel"), root)
    item_parent = root if rdf else channel
    acc = _Extras()
    meta: dict[str, str | None] = {}
    dates: list[str] = []
    for ns, local, child in _children(channel):
        if _common_extension(ns, local, child, acc):
            continue
        if ns in _RSS_NAMESPACES:
            if local in {"title", "description", "copyright", "ttl", "language"}:
                meta[local] = _opt(child)
            elif local == "link" and _text(child):
                acc.links.append(Link(href=_text(child)))
            elif local in {"lastBuildDate", "pubDate"}:
                dates.append(_text(child))
            elif local == "managingEditor":
                person = _person(_text(child))
                if person:
                    acc.authors.append(person)
            elif local == "category" and _text(child):
                acc.categories.append(Category(term=_text(child), scheme=child.get("domain")))
            elif local == "image":
                url = next((_text(c) for _, n, c in _children(child) if n == "url"), "")
                meta["logo"] = url or None
        elif ns in _ATOM_NAMESPACES and local == "link":
            atom_link = _atom_link(child)
            if atom_link:
                acc.links.append(atom_link)
        elif ns in _ATOM_NAMESPACES and local in {"icon", "logo"}:
            meta[local] = _opt(child)
    if rdf and not meta.get("logo"):
        image = next((c for _, n, c in _children(root) if n == "image"), None)
        if image is not None:
            meta["logo"] = next((_text(c) for _, n, c in _children(image) if n == "url"), None)
    items = [c for _, local, c in _children(item_parent) if local == "item"]
    langs = [v for v in acc.lang if v]
    ttl = _int(meta.get("ttl"))
    return Feed(
        title=meta.get("title"),
        id=None,
        links=tuple(acc.links),
        subtitle=html_to_text(meta.get("description") or "").strip() or None,
        updated=_first_date(dates + acc.updated_raw, tz),
        authors=tuple(acc.authors),
        categories=tuple(acc.categories),
        logo=meta.get("logo"),
        icon=meta.get("icon"),
        rights=meta.get("copyright"),
        lang=meta.get("language") or (langs[0] if langs else None) or _lang(channel),
        ttl_minutes=ttl,
        entries=(*streamed, *(_rss_item(item, tz) for item in items)),
    )


def _atom_feed(root: etree._Element, tz: tzinfo, streamed: list[Entry]) -> Feed:
    acc = _Extras()
    meta: dict[str, str | None] = {}
    entries = list(streamed)
    for ns, local, child in _children(root):
        if _common_extension(ns, local, child, acc) or _atom_common(ns, local, child, acc):
            continue
        if ns not in _ATOM_NAMESPACES:
            continue
        if local == "entry":
            entries.append(_atom_entry(child, tz))
        elif local == "title":
            meta["title"] = _atom_text(child)
        elif local in {"subtitle", "tagline"}:
            meta["subtitle"] = _atom_text(child)
        elif local in {"rights", "copyright"}:
            meta["rights"] = _atom_text(child)
        elif local in {"id", "logo", "icon"}:
            meta[local] = _opt(child)
    return Feed(
        title=meta.get("title"),
        id=meta.get("id"),
        links=tuple(acc.links),
        subtitle=meta.get("subtitle"),
        updated=_first_date(acc.updated_raw, tz),
        authors=tuple(acc.authors),
        categories=tuple(acc.categories),
        logo=meta.get("logo"),
        icon=meta.get("icon"),
        rights=meta.get("rights"),
        lang=_lang(root),
        entries=tuple(entries),
    )


def _feed_kind(root: etree._Element) -> str | None:
    ns, local = split_tag(root.tag)
    if local == "feed" and ns in _ATOM_NAMESPACES:
        return "atom"
    if local in {"rss", "channel"} or (local == "RDF" and ns == RDF):
        return "rss"
    return None


def _is_entry(el: etree._Element, kind: str) -> bool:
    ns, local = split_tag(el.tag)
    parent = el.getparent()
    if parent is None:
        return False
    if kind == "atom":
        return local == "entry" and ns in _ATOM_NAMESPACES and parent.getparent() is None
    return local == "item" and split_tag(parent.tag)[1] in {"channel", "RDF", "rss"}


@dataclass(frozen=True)
class Streamed:
    """What a streaming read found: the feed, or the name of a root that is not a feed."""

    feed: Feed | None
    root: str


def stream_feed(data: bytes, tz: tzinfo, *, recover: bool) -> Streamed:
    """Read a feed, mapping each item as soon as it ends and dropping it from the tree.

    Only one item's tree is alive at a time, so memory stays near the size of the model
    rather than model plus tree. Raises ``etree.XMLSyntaxError`` (unless ``recover``).
    """
    context = etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        recover=recover,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    root: etree._Element | None = None
    kind: str | None = None
    entries: list[Entry] = []
    for event, el in context:
        if root is None:
            root, kind = el, _feed_kind(el)
            if kind is None:
                return Streamed(None, split_tag(el.tag)[1])
            continue
        if event != "end" or kind is None or not _is_entry(el, kind):
            continue
        entries.append(_atom_entry(el, tz) if kind == "atom" else _rss_item(el, tz))
        parent = el.getparent()
        el.clear(keep_tail=False)
        if parent is not None:
            parent.remove(el)
    if root is None or kind is None:
        return Streamed(None, "")
    if kind == "atom":
        return Streamed(_atom_feed(root, tz, entries), "feed")
    return Streamed(_rss_channel(root, tz, entries), split_tag(root.tag)[1])
