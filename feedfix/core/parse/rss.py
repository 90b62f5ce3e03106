"""RSS 0.9x/2.0, RSS 1.0 (RDF) and RSS 1.1: an item, and the channel around the items."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

from lxml import etree

from feedfix.core.html import html_to_text
from feedfix.core.model import Category, Entry, Feed, Link
from feedfix.core.parse.constructs import (
    atom_link,
    atom_text,
    content_html,
    person,
)
from feedfix.core.parse.fields import DATE_KEYS, Extras, Reading, best, common_extension, label
from feedfix.core.parse.namespaces import ATOM, ATOM_NAMESPACES, RDF, RSS11
from feedfix.core.parse.values import whole_number
from feedfix.core.parse.xmltree import (
    children,
    inner_markup,
    lang,
    opt,
    split_tag,
    text,
    xml_base,
)


def _rss_element(
    local: str, child: etree._Element, acc: Extras, broken: list[str], found: _Found
) -> None:
    """An element of RSS itself (or, without a namespace, of Atom written into RSS)."""
    key = ("", local)
    if local == "title":
        acc.title(key, opt(child))
    elif local == "link":
        value = text(child)
        if value:
            found.links.append(value)
        elif child.get("href"):  # an Atom-style <link href="…"/> without the Atom namespace
            found_link = atom_link(child)
            if found_link:
                acc.links.append(found_link)
    elif local == "description":
        acc.text(key, content_html(child, broken) if len(child) else text(child))
    elif local in {"body", "fullitem"}:
        acc.text(key, inner_markup(child).strip() if len(child) else text(child))
    elif local in {"content", "summary"}:
        acc.text(key, content_html(child, broken))
    elif local == "guid":
        found.guid = opt(child)
        found.guid_is_link = (child.get("isPermaLink") or "true").lower() == "true"
    elif key in DATE_KEYS:
        acc.date(key, text(child))
    elif local == "author":
        author = person(text(child))
        if author:
            acc.authors.append(author)
    elif local == "category" and text(child):
        acc.categories.append(Category(term=text(child), scheme=child.get("domain")))
    elif local == "enclosure" and (child.get("url") or "").strip():
        acc.links.append(
            Link(
                href=(child.get("url") or "").strip(),
                rel="enclosure",
                type=child.get("type") or None,
                length=whole_number(child.get("length")),
            )
        )
    elif local == "comments" and text(child):
        acc.links.append(Link(href=text(child), rel="replies", type="text/html"))


def _atom_element(local: str, child: etree._Element, acc: Extras, broken: list[str]) -> None:
    """An Atom element inside an RSS item: link, title, content, summary, dates."""
    key = (ATOM, local)
    if local == "link":
        found_link = atom_link(child)
        if found_link:
            acc.links.append(found_link)
    elif local == "title":
        acc.title(key, atom_text(child))
    elif local in {"content", "summary"}:
        acc.text(key, content_html(child, broken))
    else:
        acc.date(key, text(child))


@dataclass
class _Found:
    """An item's own RSS fields that are not ranked among vocabularies."""

    links: list[str] = field(default_factory=list)
    guid: str | None = None
    guid_is_link: bool = False


def rss_item(item: etree._Element, ctx: Reading) -> Entry:
    """One ``<item>`` as an entry, each field from the best vocabulary that has it
    (``constructs``' rank tables)."""
    ctx.count += 1
    acc = Extras()
    broken: list[str] = []
    found = _Found()
    for ns, local, child in children(item):
        if ns in ctx.rss_namespaces:
            _rss_element(local, child, acc, broken, found)
        elif ns in ATOM_NAMESPACES:
            _atom_element(local, child, acc, broken)
        else:
            common_extension(ns, local, child, acc)
    guid = found.guid or item.get(f"{{{RDF}}}about") or None
    link = found.links[0] if found.links else None
    base = xml_base(item)
    if link is None and guid and found.guid_is_link:
        if "://" in guid:
            link = guid
        elif base:  # a relative permalink under xml:base
            link = urljoin(base, guid)
    links = [Link(href=link)] if link else []
    links.extend(acc.links)
    title = best(acc.titles)
    content, summary = acc.content_and_summary(ctx.xml_clean)
    where = label(guid, title)
    ctx.warnings.extend(f"{where}: {problem}" for problem in broken)
    published = ctx.first_date(acc.published_raw, where)
    updated = ctx.first_date(acc.updated_raw, where)
    langs = [v for v in acc.lang if v]
    entry = Entry(
        id=guid,
        title=title,
        links=tuple(links),
        content=content,
        summary=summary,
        authors=tuple(acc.authors),
        categories=tuple(acc.categories),
        published=published,
        updated=updated or published,
        media=tuple(acc.media),
        lang=lang(item) or (langs[0] if langs else None),
        base=base,
    )
    ctx.check_empty(entry, item, "item")
    return entry


def rss_channel(root: etree._Element, ctx: Reading, streamed: list[Entry]) -> Feed:
    """The channel's metadata around the items already read (``streamed``) and any left."""
    rdf = split_tag(root.tag)[1] == "RDF"
    channel = root if split_tag(root.tag)[1] in {"channel", "Channel"} else None
    if channel is None:
        channel = next((c for _, local, c in children(root) if local == "channel"), root)
    item_parent = root if rdf else channel
    if split_tag(root.tag)[0] == RSS11:  # RSS 1.1 keeps its items in <items>
        item_parent = next((c for _, n, c in children(root) if n == "items"), root)
    acc = Extras()
    meta: dict[str, str | None] = {}
    dates: list[tuple[int, str]] = []
    for ns, local, child in children(channel):
        if common_extension(ns, local, child, acc):
            continue
        if ns in ctx.rss_namespaces:
            if local in {"title", "description", "copyright", "ttl", "language"}:
                meta[local] = opt(child)
            elif local == "link" and text(child):
                acc.links.append(Link(href=text(child)))
            elif local in {"lastBuildDate", "pubDate"}:
                dates.append((0, text(child)))
            elif local == "managingEditor":
                found = person(text(child))
                if found:
                    acc.authors.append(found)
            elif local == "category" and text(child):
                acc.categories.append(Category(term=text(child), scheme=child.get("domain")))
            elif local == "image":
                url = next((text(c) for _, n, c in children(child) if n == "url"), "")
                meta["logo"] = url or None
        elif ns in ATOM_NAMESPACES and local == "link":
            found_link = atom_link(child)
            if found_link:
                acc.links.append(found_link)
        elif ns in ATOM_NAMESPACES and local in {"icon", "logo"}:
            meta[local] = opt(child)
    if rdf and not meta.get("logo"):
        image = next((c for _, n, c in children(root) if n == "image"), None)
        if image is not None:
            meta["logo"] = next((text(c) for _, n, c in children(image) if n == "url"), None)
    items = [c for _, local, c in children(item_parent) if local == "item"]
    langs = [v for v in acc.lang if v]
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
        lang=meta.get("language") or (langs[0] if langs else None) or lang(channel),
        ttl_minutes=whole_number(meta.get("ttl")),
        entries=(*streamed, *(rss_item(item, ctx) for item in items)),
    )
