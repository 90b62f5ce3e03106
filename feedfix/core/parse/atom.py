"""Atom 1.0 and 0.3: an entry, the feed around the entries, and a lone entry document."""

from __future__ import annotations

from lxml import etree

from feedfix.core.model import Category, Entry, Feed, Link
from feedfix.core.parse import binary
from feedfix.core.parse.constructs import (
    atom_link,
    atom_person,
    atom_text,
    content_html,
)
from feedfix.core.parse.fields import Extras, Reading, best, common_extension, label
from feedfix.core.parse.namespaces import ATOM
from feedfix.core.parse.xmltree import children, lang, opt, text, xml_base


def _atom_common(ns: str, local: str, child: etree._Element, acc: Extras) -> bool:
    """Atom elements a feed and an entry share: link, author, category, updated."""
    if ns != ATOM:
        return False
    if local == "link":
        found_link = atom_link(child)
        if found_link:
            acc.links.append(found_link)
    elif local in {"updated", "modified"}:
        acc.updated_raw.append((0, text(child)))
    elif local == "author":
        found = atom_person(child)
        if found:
            acc.authors.append(found)
    elif local == "category":
        term = (child.get("term") or text(child)).strip()
        if term:
            acc.categories.append(
                Category(term=term, scheme=child.get("scheme"), label=child.get("label"))
            )
    else:
        return False
    return True


def atom_entry(entry: etree._Element, ctx: Reading) -> Entry:
    """One ``<entry>``, each field from the best vocabulary that has it (``constructs``'
    rank tables): Atom's own first, then ``content:encoded``, Dublin Core, Media RSS…"""
    ctx.count += 1
    acc = Extras()
    broken: list[str] = []
    fields: dict[str, str | None] = {}
    content_el: etree._Element | None = None
    for raw_ns, local, child in children(entry):
        ns = ATOM if raw_ns in ctx.atom_namespaces else raw_ns
        if common_extension(ns, local, child, acc) or _atom_common(ns, local, child, acc):
            continue
        if ns != ATOM:
            continue
        if local == "id":
            fields["id"] = opt(child)
        elif local == "title":
            acc.title((ATOM, "title"), atom_text(child))
        elif local == "content":
            content_el = child
            value = _content(child, broken, acc)
            acc.text((ATOM, "content"), value)
        elif local == "summary":
            acc.text((ATOM, "summary"), content_html(child, broken))
        elif local in {"published", "issued", "created"}:
            acc.date((ATOM, local), text(child))
        elif local == "rights":
            fields["rights"] = atom_text(child)
    content, summary = acc.content_and_summary(ctx.xml_clean)
    title = best(acc.titles)
    where = label(fields.get("id"), title)
    ctx.warnings.extend(f"{where}: {problem}" for problem in broken)
    published = ctx.first_date(acc.published_raw, where)
    updated = ctx.first_date(acc.updated_raw, where)
    found = Entry(
        id=fields.get("id"),
        title=title,
        links=tuple(acc.links),
        content=content,
        summary=summary,
        authors=tuple(acc.authors),
        categories=tuple(acc.categories),
        published=published,
        updated=updated or published,
        media=tuple(acc.media),
        lang=lang(entry),
        base=xml_base(content_el if content_el is not None else entry),
        rights=fields.get("rights"),
    )
    ctx.check_empty(found, entry, "entry")
    return found


def _content(el: etree._Element, broken: list[str], acc: Extras) -> str | None:
    """``atom:content`` as HTML: inline text or markup, base64 (RFC 4287 4.1.3.3) decoded
    when its type is text-like, and an out-of-line ``src`` or a binary type kept as a link."""
    src = (el.get("src") or "").strip()
    kind = (el.get("type") or "").strip().lower()
    if not src and binary.is_base64_type(kind):
        value, problem = binary.decode_content(text(el), kind)
        if problem:
            broken.append(problem)
        return value
    value = content_html(el, broken)
    if src and not value:
        acc.links.append(Link(href=src, rel="related", type=el.get("type")))
    return value


def atom_feed(root: etree._Element, ctx: Reading, streamed: list[Entry]) -> Feed:
    """The feed's metadata around the entries already read (``streamed``) and any left."""
    acc = Extras()
    meta: dict[str, str | None] = {}
    entries = list(streamed)
    for raw_ns, local, child in children(root):
        ns = ATOM if raw_ns in ctx.atom_namespaces else raw_ns
        if common_extension(ns, local, child, acc) or _atom_common(ns, local, child, acc):
            continue
        if ns != ATOM:
            continue
        if local in {"entry", "item"}:
            entries.append(atom_entry(child, ctx))
        elif local == "title":
            meta["title"] = atom_text(child)
        elif local in {"subtitle", "tagline"}:
            meta["subtitle"] = atom_text(child)
        elif local in {"rights", "copyright"}:
            meta["rights"] = atom_text(child)
        elif local in {"id", "logo", "icon"}:
            meta[local] = opt(child)
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
        lang=lang(root),
        entries=tuple(entries),
    )


def atom_entry_document(root: etree._Element, ctx: Reading) -> Feed:
    """An Atom Entry Document (RFC 4287 5.1's root ``<entry>``) as a feed of that one entry,
    titled and identified by its ``<source>`` when it names one."""
    entry = atom_entry(root, ctx)
    source = next(
        (c for ns, n, c in children(root) if n == "source" and ns in ctx.atom_namespaces), None
    )
    meta: dict[str, str | None] = {}
    if source is not None:
        for ns, local, child in children(source):
            if ns in ctx.atom_namespaces and local in {"title", "id"}:
                meta[local] = atom_text(child) if local == "title" else opt(child)
    return Feed(
        title=meta.get("title") or entry.title,
        id=meta.get("id"),
        updated=entry.date,
        lang=lang(root),
        entries=(entry,),
    )
