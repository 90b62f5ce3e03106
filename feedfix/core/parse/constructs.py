"""Single values that RSS and Atom share, each read from one element: text constructs,
people, links and Media RSS objects."""

from __future__ import annotations

import base64
import binascii
import html
import re

from lxml import etree

from feedfix.core.html import html_to_text, xml_chars
from feedfix.core.model import MEDIA_KINDS, Link, Media, MediaKind, Person
from feedfix.core.parse import xmltree
from feedfix.core.parse.namespaces import (
    MEDIA,
    XHTML,
)
from feedfix.core.parse.values import whole_number
from feedfix.core.parse.xmltree import children, split_tag

# Tried on a stripped value, each at one place and without backtracking over the value
# (the address is one run, then checked; ``Name <a@b.c>`` is found from its end).
_EMAIL_NAME = re.compile(r"([^\s()<>]++)\s*+\((.*)\)")
_EMAIL = re.compile(r"[^\s<>]+@[^\s<>]+")
_HTML_TYPES = {"html", "text/html", "xhtml", "application/xhtml+xml"}


def _construct(el: etree._Element) -> tuple[bool, str]:
    """An Atom (1.0 or 0.3) text construct as ``(is_html, value)``, its ``mode`` undone:
    0.3's ``base64`` decoded, ``escaped`` taken as the markup (or text) it spells."""
    kind = (el.get("type") or "text").strip().lower()
    mode = (el.get("mode") or "").strip().lower()
    if mode == "base64":
        try:
            raw = xml_chars(base64.b64decode(xmltree.text(el)).decode("utf-8", "replace"))
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
    match = _EMAIL_NAME.fullmatch(value)
    if match and "@" in match.group(1)[1:-1]:
        return Person(name=match.group(2).strip() or match.group(1), email=match.group(1))
    less = value.rfind("<") if value.endswith(">") else -1
    email, name = value[less + 1 : -1], value[:less].strip()
    if less >= 0 and "\n" not in name and _EMAIL.fullmatch(email):
        return Person(name=name or email, email=email)
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


def media_object(el: etree._Element, kind: MediaKind) -> Media | None:
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


def media_children(el: etree._Element) -> list[Media]:
    """``media:content``/``media:thumbnail``, also inside ``media:group``."""
    found: list[Media] = []
    for ns, local, child in children(el):
        if ns != MEDIA:
            continue
        if local == "group":
            found.extend(media_children(child))
        elif local in MEDIA_KINDS:
            media = media_object(child, MEDIA_KINDS[local])
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
