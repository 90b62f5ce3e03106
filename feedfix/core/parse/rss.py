"""RSS 0.9x/2.0, RSS 1.0 (RDF) and RSS 1.1: an item, and the channel around the items."""

from __future__ import annotations

from lxml import etree

from feedfix.core.html import html_to_text
from feedfix.core.model import Category, Entry, Feed, Link
from feedfix.core.parse.constructs import (
    Extras,
    Reading,
    atom_link,
    common_extension,
    content_html,
    label,
    person,
)
from feedfix.core.parse.values import whole_number
from feedfix.core.parse.xmltree import (
    ATOM_NAMESPACES,
    CONTENT,
    RDF,
    RSS11,
    RSS_NAMESPACES,
    children,
    lang,
    opt,
    split_tag,
    text,
    xml_base,
)


def rss_item(item: etree._Element, ctx: Reading) -> Entry:
    """One ``<item>`` as an entry."""
    acc = Extras()
    broken: list[str] = []
    title = link = description = encoded = guid = None
    guid_is_link = False
    pub_raw: list[str] = []
    for ns, local, child in children(item):
        if common_extension(ns, local, child, acc):
            continue
        if ns in RSS_NAMESPACES:
            if local == "title":
                title = opt(child)
            elif local == "link":
                link = opt(child)
            elif local == "description":
                description = content_html(child, broken) if len(child) else text(child)
            elif local == "guid":
                guid = opt(child)
                guid_is_link = (child.get("isPermaLink") or "true").lower() == "true"
            elif local == "pubDate":
                pub_raw.append(text(child))
            elif local == "author":
                found = person(text(child))
                if found:
                    acc.authors.append(found)
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
        elif ns == CONTENT and local == "encoded":
            encoded = text(child)
        elif ns in ATOM_NAMESPACES and local == "link":
            found_link = atom_link(child)
            if found_link:
                acc.links.append(found_link)
        elif ns in ATOM_NAMESPACES and local == "updated":
            acc.updated_raw.append(text(child))
    if guid is None:
        guid = item.get(f"{{{RDF}}}about") or None
    if link is None and guid and guid_is_link and "://" in guid:
        link = guid
    links = [Link(href=link)] if link else []
    links.extend(acc.links)
    where = label(guid, title)
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
        lang=lang(item) or (langs[0] if langs else None),
        base=xml_base(item),
    )


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
    dates: list[str] = []
    for ns, local, child in children(channel):
        if common_extension(ns, local, child, acc):
            continue
        if ns in RSS_NAMESPACES:
            if local in {"title", "description", "copyright", "ttl", "language"}:
                meta[local] = opt(child)
            elif local == "link" and text(child):
                acc.links.append(Link(href=text(child)))
            elif local in {"lastBuildDate", "pubDate"}:
                dates.append(text(child))
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
