"""The fast path: stream an XML feed through the hardened parser, one entry at a time.

Which vocabulary the root names decides the reader: ``rss`` for RSS 0.9x/1.0/1.1/2.0,
``atom`` for Atom 1.0/0.3 and a lone Atom entry document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from lxml import etree

from feedfix.core.model import Entry, Feed
from feedfix.core.parse.atom import atom_entry, atom_entry_document, atom_feed
from feedfix.core.parse.fields import Reading
from feedfix.core.parse.namespaces import ATOM_NAMESPACES, RDF, RSS11
from feedfix.core.parse.rss import rss_channel, rss_item
from feedfix.core.parse.xmltree import iterparse, name, split_tag

BARE_ATOM = "feed is Atom without the Atom namespace (<feed> with no xmlns); read it as Atom 1.0"


def _feed_kind(root: etree._Element) -> str | None:
    ns, local = name(root)
    if local == "feed" and ns in ATOM_NAMESPACES:
        return "atom"
    if local == "entry" and ns in ATOM_NAMESPACES:
        return "entry"
    if local in {"rss", "channel"} or (local == "RDF" and ns == RDF):
        return "rss"
    if local == "Channel" and ns == RSS11:
        return "rss"
    if local == "feed" and ns == "":
        return "bare-atom"
    return None


def _is_entry(el: etree._Element, kind: str, ctx: Reading) -> bool:
    tag = el.tag
    if not isinstance(tag, str) or not tag.endswith(("item", "entry")):
        return False  # most elements that end are an entry's fields: told apart at once
    local = split_tag(tag)[1]
    parent = el.getparent()
    if parent is None or kind == "entry":
        return False
    if kind == "atom":
        in_atom = local in {"entry", "item"} and name(el)[0] in ctx.atom_namespaces
        return in_atom and parent.getparent() is None
    if split_tag(parent.tag) == (RSS11, "items"):
        return local == "item"
    return local == "item" and split_tag(parent.tag)[1] in {"channel", "RDF", "rss"}


def _start(el: etree._Element, kind: str, ctx: Reading) -> None:
    """What a start tag tells before its content: the namespace a feed's RSS is in, when it
    is one feedfix does not know (``<rss xmlns="…">``), is read as RSS."""
    ns, local = name(el)
    if ns and ns not in ctx.rss_namespaces and local in {"rss", "channel", "item"}:
        parent = el.getparent()
        if parent is None or name(parent)[1] in {"rss", "RDF"}:
            ctx.rss_namespaces = ctx.rss_namespaces | {ns}


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
    context = iterparse(data, recover=recover)
    root: etree._Element | None = None
    kind: str | None = None
    entries: list[Entry] = []
    ctx = Reading(tz, xml_clean=not recover)
    for event, el in context:
        if root is None:
            root, kind = el, _feed_kind(el)
            if kind is None:
                return Streamed(None, split_tag(el.tag)[1])
            if kind == "bare-atom":
                kind = "atom"
                ctx.atom_namespaces = ctx.atom_namespaces | {""}
                ctx.warnings.append(BARE_ATOM)
            if kind == "rss":
                _start(el, kind, ctx)
            continue
        if event == "start":
            if kind == "rss" and not entries:  # the namespace is known by the first item
                _start(el, kind, ctx)
            continue
        if event != "end" or kind is None or not _is_entry(el, kind, ctx):
            continue
        entries.append(atom_entry(el, ctx) if kind == "atom" else rss_item(el, ctx))
        parent = el.getparent()
        el.clear(keep_tail=False)
        if parent is not None:
            parent.remove(el)
    if root is None or kind is None:
        return Streamed(None, "")
    name = split_tag(root.tag)[1]
    if kind == "atom":
        feed = atom_feed(root, ctx, entries)
    elif kind == "entry":
        feed = atom_entry_document(root, ctx)
    else:
        feed = rss_channel(root, ctx, entries)
    return Streamed(feed, name, tuple(ctx.warnings))
