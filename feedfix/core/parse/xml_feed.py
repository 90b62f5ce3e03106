"""The fast path: read RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 with a hardened lxml parser.

The parser never loads a DTD, never resolves an entity and never touches the network, so
external entities and entity-expansion bombs are inert. Depth and text size stay at libxml2's
safe defaults (``huge_tree`` off).
"""

from __future__ import annotations

import base64
import binascii
import copy
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

MAX_QUOTED = 60  # characters of a bad value quoted in a warning

ATOM = "http://www.w3.org/2005/Atom"
ATOM03 = "http://purl.org/atom/ns#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RSS10 = "http://purl.org/rss/1.0/"
RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
RSS11 = "http://purl.org/net/rss1.1#"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
MEDIA = "http://search.yahoo.com/mrss/"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XHTML = "http://www.w3.org/1999/xhtml"

FEED_ROOTS = {"rss", "RDF", "feed", "channel"}
_RSS_NAMESPACES = {"", RSS10, RSS090, RSS11}
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
    """An element's children as HTML text (for raw XHTML inside RSS/Atom content).

    Each child is copied without its tail (the text after it is escaped here): serialising
    it with the tail and parsing that again failed on every mixed-content ``div``.
    """
    parts = [html.escape(el.text or "", quote=False)]
    for child in el:
        if isinstance(child.tag, str):
            bare = copy.deepcopy(child)
            bare.tail = None
            for node in bare.iter():
                if isinstance(node.tag, str):
                    node.tag = split_tag(node.tag)[1]
            etree.cleanup_namespaces(bare)
            parts.append(etree.tostring(bare, encoding="unicode", method="html"))
        parts.append(html.escape(child.tail or "", quote=False))
    return "".join(parts)


_HTML_TYPES = {"html", "text/html", "xhtml", "application/xhtml+xml"}


def _construct(el: etree._Element) -> tuple[bool, str]:
    """An Atom (1.0 or 0.3) text construct as ``(is_html, value)``, its ``mode`` undone:
    0.3's ``base64`` decoded, ``escaped`` taken as the markup (or text) it spells."""
    kind = (el.get("type") or "text").strip().lower()
    mode = (el.get("mode") or "").strip().lower()
    if mode == "base64":
        try:
            raw = base64.b64decode(_text(el)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raw = ""
        return kind in _HTML_TYPES, raw
    if (kind in {"xhtml", "application/xhtml+xml"} and mode != "escaped") or len(el):
        div = next((c for c in el if split_tag(c.tag) == (XHTML, "div")), None)
        return True, _inner_markup(div if div is not None else el)
    return kind in _HTML_TYPES, "".join(el.itertext())


def _atom_html(el: etree._Element) -> str:
    """An Atom text construct as HTML, whatever its ``type``/``mode``."""
    is_html, value = _construct(el)
    if is_html:
        return value.strip()
    return html.escape(value.strip(), quote=False).replace("\n", "<br>\n")


def _atom_text(el: etree._Element) -> str | None:
    """An Atom text construct as plain text (titles, subtitles)."""
    is_html, value = _construct(el)
    if is_html:
        return html_to_text(value).strip() or None
    return value.strip() or None


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


@dataclass
class _Reading:
    """What reading one document needs besides the tree: the zone for bare dates, and the
    warnings about single entries (a bad date, content that cannot be read) that are the
    entry's problem and never the document's."""

    tz: tzinfo
    warnings: list[str] = field(default_factory=list)

    def first_date(self, values: list[str], where: str) -> datetime | None:
        """The first of ``values`` that is a real date; each one before it is warned about."""
        for value in values:
            parsed = parse_date(value, self.tz)
            if parsed is not None:
                return parsed
            if value.strip():
                self.warnings.append(
                    f"{where}: {value.strip()[:MAX_QUOTED]!r} is not a real date; ignored it"
                )
        return None


def _label(entry_id: str | None, title: str | None) -> str:
    """How a warning names an entry: by id, else by title."""
    if entry_id:
        return f"entry {entry_id[:MAX_QUOTED]!r}"
    if title:
        return f"entry titled {title[:MAX_QUOTED]!r}"
    return "an entry without id or title"


def _content_html(el: etree._Element, broken: list[str]) -> str | None:
    """A content or summary construct as HTML; one that cannot be read is kept as its text
    (and noted in ``broken``) rather than taken for damage of the whole document."""
    try:
        return _atom_html(el) or None
    except (etree.LxmlError, ValueError) as exc:
        broken.append(f"{split_tag(el.tag)[1]} could not be read ({exc}); kept as text")
        return html.escape("".join(el.itertext()).strip(), quote=False) or None


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


def _rss_item(item: etree._Element, ctx: _Reading) -> Entry:
    acc = _Extras()
    broken: list[str] = []
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
                description = _content_html(child, broken) if len(child) else _text(child)
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
    where = _label(guid, title)
    ctx.warnings.extend(f"{where}: {problem}" for problem in broken)
    published = ctx.first_date(pub_raw + acc.published_raw, where)
    updated = ctx.first_date(acc.updated_raw, where)
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


def _atom_entry(entry: etree._Element, ctx: _Reading) -> Entry:
    acc = _Extras()
    broken: list[str] = []
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
            fields["content"] = _content_html(child, broken)
            src = (child.get("src") or "").strip()
            if src and not fields["content"]:
                acc.links.append(Link(href=src, rel="related", type=child.get("type")))
        elif local == "summary":
            fields["summary"] = _content_html(child, broken)
        elif local in {"published", "issued", "created"}:
            acc.published_raw.append(_text(child))
        elif local == "rights":
            fields["rights"] = _atom_text(child)
    content = fields.get("content")
    summary = fields.get("summary")
    if content is None and summary is not None:
        content, summary = summary, None
    where = _label(fields.get("id"), fields.get("title"))
    ctx.warnings.extend(f"{where}: {problem}" for problem in broken)
    published = ctx.first_date(acc.published_raw, where)
    updated = ctx.first_date(acc.updated_raw, where)
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


def _rss_channel(root: etree._Element, ctx: _Reading, streamed: list[Entry]) -> Feed:
    rdf = split_tag(root.tag)[1] == "RDF"
    channel = root if split_tag(root.tag)[1] in {"channel", "Channel"} else None
    if channel is None:
        channel = next((c for _, local, c in _children(root) if local == "channel"), root)
    item_parent = root if rdf else channel
    if split_tag(root.tag)[0] == RSS11:  # RSS 1.1 keeps its items in <items>
        item_parent = next((c for _, n, c in _children(root) if n == "items"), root)
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
        updated=ctx.first_date(dates + acc.updated_raw, "the feed"),
        authors=tuple(acc.authors),
        categories=tuple(acc.categories),
        logo=meta.get("logo"),
        icon=meta.get("icon"),
        rights=meta.get("copyright"),
        lang=meta.get("language") or (langs[0] if langs else None) or _lang(channel),
        ttl_minutes=ttl,
        entries=(*streamed, *(_rss_item(item, ctx) for item in items)),
    )


def _atom_feed(root: etree._Element, ctx: _Reading, streamed: list[Entry]) -> Feed:
    acc = _Extras()
    meta: dict[str, str | None] = {}
    entries = list(streamed)
    for ns, local, child in _children(root):
        if _common_extension(ns, local, child, acc) or _atom_common(ns, local, child, acc):
            continue
        if ns not in _ATOM_NAMESPACES:
            continue
        if local == "entry":
            entries.append(_atom_entry(child, ctx))
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
        updated=ctx.first_date(acc.updated_raw, "the feed"),
        authors=tuple(acc.authors),
        categories=tuple(acc.categories),
        logo=meta.get("logo"),
        icon=meta.get("icon"),
        rights=meta.get("rights"),
        lang=_lang(root),
        entries=tuple(entries),
    )


def _atom_entry_document(root: etree._Element, ctx: _Reading) -> Feed:
    """An Atom Entry Document (RFC 4287 5.1's root ``<entry>``) as a feed of that one entry,
    titled and identified by its ``<source>`` when it names one."""
    entry = _atom_entry(root, ctx)
    source = next((c for ns, n, c in _children(root) if n == "source" and ns == ATOM), None)
    meta: dict[str, str | None] = {}
    if source is not None:
        for ns, local, child in _children(source):
            if ns == ATOM and local in {"title", "id"}:
                meta[local] = _atom_text(child) if local == "title" else _opt(child)
    return Feed(
        title=meta.get("title") or entry.title,
        id=meta.get("id"),
        updated=entry.date,
        lang=_lang(root),
        entries=(entry,),
    )


def _feed_kind(root: etree._Element) -> str | None:
    ns, local = split_tag(root.tag)
    if local == "feed" and ns in _ATOM_NAMESPACES:
        return "atom"
    if local == "entry" and ns in _ATOM_NAMESPACES:
        return "entry"
    if local in {"rss", "channel"} or (local == "RDF" and ns == RDF):
        return "rss"
    if local == "Channel" and ns == RSS11:
        return "rss"
    return None


def _is_entry(el: etree._Element, kind: str) -> bool:
    ns, local = split_tag(el.tag)
    parent = el.getparent()
    if parent is None or kind == "entry":
        return False
    if kind == "atom":
        return local == "entry" and ns in _ATOM_NAMESPACES and parent.getparent() is None
    if split_tag(parent.tag) == (RSS11, "items"):
        return local == "item"
    return local == "item" and split_tag(parent.tag)[1] in {"channel", "RDF", "rss"}


@dataclass(frozen=True)
class Streamed:
    """What a streaming read found: the feed, or the name of a root that is not a feed."""

    feed: Feed | None
    root: str
    warnings: tuple[str, ...] = ()  # about single entries: never damage of the document


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
    ctx = _Reading(tz)
    for event, el in context:
        if root is None:
            root, kind = el, _feed_kind(el)
            if kind is None:
                return Streamed(None, split_tag(el.tag)[1])
            continue
        if event != "end" or kind is None or not _is_entry(el, kind):
            continue
        entries.append(_atom_entry(el, ctx) if kind == "atom" else _rss_item(el, ctx))
        parent = el.getparent()
        el.clear(keep_tail=False)
        if parent is not None:
            parent.remove(el)
    if root is None or kind is None:
        return Streamed(None, "")
    name = split_tag(root.tag)[1]
    if kind == "atom":
        feed = _atom_feed(root, ctx, entries)
    elif kind == "entry":
        feed = _atom_entry_document(root, ctx)
    else:
        feed = _rss_channel(root, ctx, entries)
    return Streamed(feed, name, tuple(ctx.warnings))
