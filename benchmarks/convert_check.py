"""The output check of ``bench_convert.py``: does a pipeline's Atom mean what the input says?

Per entry (matched by id, else by link): the item's title and date, and exactly the origin
``zkres`` image URLs as img ``src``; nowhere a wrapper host, a ZAKER trailer, a ``<script>`` or
an ``on*`` handler. Content may be ``type="html"`` or ``type="xhtml"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import lxml.html
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
CORS_HOST = b"cors.zfour.workers.dev"
TRAILER_IDS = frozenset({"recommend_bottom", "article_bottom"})


@dataclass
class Expected:
    title: str
    when: datetime
    images: frozenset[str]


def expected_from_input(path: Path) -> tuple[dict[str, Expected], dict[str, str]]:
    """Per input item (keyed by guid): title, date, origin image URLs; plus link -> guid."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.parse(str(path), parser).getroot()
    by_guid: dict[str, Expected] = {}
    link_to_guid: dict[str, str] = {}
    for item in root.iter("item"):
        guid = item.findtext("guid") or ""
        description = item.findtext("description") or ""
        by_guid[guid] = Expected(
            title=(item.findtext("title") or "").strip(),
            when=parsedate_to_datetime(item.findtext("pubDate") or ""),
            images=frozenset(re.findall(r'data-original="([^"]+)"', description)),
        )
        link_to_guid[item.findtext("link") or guid] = guid
    return by_guid, link_to_guid


def _local(el: Any) -> str:
    tag = el.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _content_root(entry: etree._Element) -> tuple[Any, str | None]:
    """The entry's content as an element tree (HTML fragment or XHTML div), or a reason."""
    content = entry.find(ATOM + "content")
    if content is None:
        content = entry.find(ATOM + "summary")
    if content is None:
        return None, "entry has no content/summary"
    kind = content.get("type", "text")
    if kind == "xhtml":
        if len(content) == 0:
            return None, "empty xhtml content"
        return content[0], None
    if kind == "html":
        return lxml.html.fragment_fromstring(content.text or "", create_parent="div"), None
    return None, f"content type={kind!r}, expected html or xhtml"


def _entry_when(entry: etree._Element) -> datetime | None:
    text = entry.findtext(ATOM + "published") or entry.findtext(ATOM + "updated")
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def check_output(path: Path, by_guid: dict[str, Expected], link_to_guid: dict[str, str]) -> str:
    """Return "ok", or "FAILED (reason)" naming the first problem found."""
    if not path.is_file():
        return "FAILED (no output file)"
    raw = path.read_bytes()
    for needle in (CORS_HOST, b"recommend_bottom", b"article_bottom", b"onclick"):
        if needle in raw:
            return f"FAILED ({needle.decode()!r} appears in the output)"
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        return f"FAILED (not well-formed XML: {exc})"
    if root.tag != ATOM + "feed":
        return f"FAILED (root is {root.tag}, not an Atom 1.0 feed)"
    entries = root.findall(ATOM + "entry")
    if len(entries) != len(by_guid):
        return f"FAILED ({len(entries)} entries, input has {len(by_guid)} items)"
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        entry_id = entry.findtext(ATOM + "id") or ""
        guid = entry_id if entry_id in by_guid else None
        if guid is None:
            hrefs = [ln.get("href") or "" for ln in entry.findall(ATOM + "link")]
            guid = next((link_to_guid[h] for h in hrefs if h in link_to_guid), None)
        if guid is None:
            return f"FAILED (entry {n} id={entry_id!r} matches no input item)"
        if guid in seen:
            return f"FAILED (two entries for input item {guid})"
        seen.add(guid)
        want = by_guid[guid]
        title = (entry.findtext(ATOM + "title") or "").strip()
        if title != want.title:
            return f"FAILED (entry {guid}: title {title!r} != {want.title!r})"
        when = _entry_when(entry)
        if when is None or when != want.when:
            return f"FAILED (entry {guid}: date {when} != pubDate {want.when})"
        frag, why = _content_root(entry)
        if why:
            return f"FAILED (entry {guid}: {why})"
        srcs: set[str] = set()
        for el in frag.iter():
            name = _local(el)
            if name == "img":
                srcs.add(el.get("src") or "")
            elif name == "script":
                return f"FAILED (entry {guid}: <script> remains)"
            if el.get("id") in TRAILER_IDS:
                return f"FAILED (entry {guid}: div#{el.get('id')} remains)"
            handlers = [a for a in el.attrib if str(a).lower().startswith("on")]
            if handlers:
                return f"FAILED (entry {guid}: {handlers[0]} remains on <{name}>)"
        if srcs != want.images:
            missing = sorted(want.images - srcs)
            extra = sorted(srcs - want.images)
            return f"FAILED (entry {guid}: img src missing {missing[:1]}, unexpected {extra[:1]})"
    return "ok"
