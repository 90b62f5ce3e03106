"""Values that RSS and Atom share: text constructs, people, links, Media RSS, Dublin Core,
and what reading one document gathers besides its tree (the zone for bare dates, warnings)."""

from __future__ import annotations

import base64
import binascii
import html
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from lxml import etree

from feedfix.core.html import html_to_text
from feedfix.core.model import MEDIA_KINDS, Category, Link, Media, MediaKind, Person
from feedfix.core.parse import xmltree
from feedfix.core.parse.dates import parse_date
from feedfix.core.parse.values import whole_number
from feedfix.core.parse.xmltree import DC, DCTERMS, MAX_QUOTED, MEDIA, XHTML, children, split_tag

_EMAIL_NAME = re.compile(r"^\s*([^\s()<>]+@[^\s()<>]+)\s*\((.*)\)\s*$")
_NAME_EMAIL = re.compile(r"^\s*(.*?)\s*<([^\s<>]+@[^\s<>]+)>\s*$")
_HTML_TYPES = {"html", "text/html", "xhtml", "application/xhtml+xml"}


def _construct(el: etree._Element) -> tuple[bool, str]:
    """An Atom (1.0 or 0.3) text construct as ``(is_html, value)``, its ``mode`` undone:
    0.3's ``base64`` decoded, ``escaped`` taken as the markup (or text) it spells."""
    kind = (el.get("type") or "text").strip().lower()
    mode = (el.get("mode") or "").strip().lower()
    if mode == "base64":
        try:
            raw = base64.b64decode(xmltree.text(el)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raw = ""
        return kind in _HTML_TYPES, raw
    if (kind in {"xhtml", "application/xhtml+xml"} and mode != "escaped") or len(el):
        div = next((c for c in el if split_tag(c.tag) == (XHTML, "div")), None)
        return True, xmltree.inner_markup(div if div is not None else el)
    return kind in _HTML_TYPES, "".join(el.itertext())


def atom_html(el: etree._Element) -> str:
    """An Atom text construct as HTML, whatever its ``type``/``mode``."""
    is_html, value = _construct(el)
    if is_html:
        return value.strip()
    return html.escape(value.strip(), quote=False).replace("\n", "<br>\n")


def atom_text(el: etree._Element) -> str | None:
    """An Atom text construct as plain text (titles, subtitles)."""
    is_html, value = _construct(el)
    if is_html:
        return html_to_text(value).strip() or None
    return value.strip() or None


def content_html(el: etree._Element, broken: list[str]) -> str | None:
    """A content or summary construct as HTML; one that cannot be read is kept as its text
    (and noted in ``broken``) rather than taken for damage of the whole document."""
    try:
        return atom_html(el) or None
    except (etree.LxmlError, ValueError) as exc:
        broken.append(f"{split_tag(el.tag)[1]} could not be read ({exc}); kept as text")
        return html.escape("".join(el.itertext()).strip(), quote=False) or None


def person(value: str) -> Person | None:
    """An RSS-style person: ``a@b.c (Name)``, ``Name <a@b.c>``, an address or a name."""
    value = value.strip()
    if not value:
        return None
    match = _EMAIL_NAME.match(value)
    if match:
        return Person(name=match.group(2).strip() or match.group(1), email=match.group(1))
    match = _NAME_EMAIL.match(value)
    if match:
        return Person(name=match.group(1) or match.group(2), email=match.group(2))
    if "@" in value and " " not in value:
        return Person(name=value, email=value)
    return Person(name=value)


def atom_person(el: etree._Element) -> Person | None:
    """An Atom person construct (``name``, ``email``, ``uri``)."""
    fields = {local: xmltree.text(child) for _, local, child in children(el)}
    name = fields.get("name") or fields.get("email") or xmltree.text(el)
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
        width=whole_number(el.get("width")),
        height=whole_number(el.get("height")),
    )


def _media_children(el: etree._Element) -> list[Media]:
    """``media:content``/``media:thumbnail``, also inside ``media:group``."""
    found: list[Media] = []
    for ns, local, child in children(el):
        if ns != MEDIA:
            continue
        if local == "group":
            found.extend(_media_children(child))
        elif local in MEDIA_KINDS:
            media = _media(child, MEDIA_KINDS[local])
            if media is not None:
                found.append(media)
    return found


def atom_link(el: etree._Element) -> Link | None:
    """An ``atom:link`` (also inside RSS), or ``None`` without an ``href``."""
    href = (el.get("href") or "").strip()
    if not href:
        return None
    rel = (el.get("rel") or "alternate").strip()
    return Link(
        href=href,
        rel=rel,
        type=el.get("type") or None,
        length=whole_number(el.get("length")),
        title=el.get("title") or None,
        hreflang=el.get("hreflang") or None,
    )


@dataclass
class Reading:
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


def label(entry_id: str | None, title: str | None) -> str:
    """How a warning names an entry: by id, else by title."""
    if entry_id:
        return f"entry {entry_id[:MAX_QUOTED]!r}"
    if title:
        return f"entry titled {title[:MAX_QUOTED]!r}"
    return "an entry without id or title"


@dataclass
class Extras:
    """What an element's children add up to, gathered in one pass."""

    authors: list[Person] = field(default_factory=list)
    updated_raw: list[str] = field(default_factory=list)
    published_raw: list[str] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    lang: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


def common_extension(ns: str, local: str, child: etree._Element, acc: Extras) -> bool:
    """Dublin Core and Media RSS, shared by RSS items and Atom entries."""
    if ns == DC and local == "creator":
        found = person(xmltree.text(child))
        if found:
            acc.authors.append(found)
    elif (ns == DC and local == "date") or (ns == DCTERMS and local == "modified"):
        acc.updated_raw.append(xmltree.text(child))
    elif ns == DCTERMS and local in {"issued", "created"}:
        acc.published_raw.append(xmltree.text(child))
    elif ns == DC and local == "subject" and xmltree.text(child):
        acc.categories.append(Category(term=xmltree.text(child)))
    elif ns == DC and local == "language":
        acc.lang.append(xmltree.text(child))
    elif ns == MEDIA and local in MEDIA_KINDS:
        media = _media(child, MEDIA_KINDS[local])
        if media:
            acc.media.append(media)
    elif ns == MEDIA and local == "group":
        acc.media.extend(_media_children(child))
    else:
        return False
    return True
