"""The cheapest honest pipeline: the floor feedfix is measured against.

Usage: ``floor_pipeline.py IN OUT``

lxml.etree parses the RSS (no entity resolution, no network), each description is cleaned
with lxml.html.fragment_fromstring(..., create_parent="div") using the same edits as feedfix
(unwrap the cors proxy in img src, promote data-original to src, drop the empty ZAKER trailer
divs, drop scripts and on* handlers), and Atom is built with lxml.etree. No normalisation, no
fallbacks, RSS 2.0 only: it does just enough to be correct on the benchmark input.
"""

from __future__ import annotations

import sys
from email.utils import parsedate_to_datetime
from pathlib import Path

import lxml.html
from lxml import etree

CORS_PREFIX = "https://cors.zfour.workers.dev/?"
ATOM = "http://www.w3.org/2005/Atom"
A = "{" + ATOM + "}"
TRAILER_XPATH = etree.XPath(".//div[@id='recommend_bottom' or @id='article_bottom']")
HANDLER_XPATH = etree.XPath(".//*[@*[starts-with(name(), 'on')]]")


def clean_html(html: str) -> str:
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for img in root.iter("img"):
        src = img.attrib.pop("data-original", None) or img.get("src")
        if src:
            if src.startswith(CORS_PREFIX):
                src = src[len(CORS_PREFIX) :]
            img.set("src", src)
    for script in list(root.iter("script")):
        script.drop_tree()
    for el in HANDLER_XPATH(root):
        for name in [a for a in el.attrib if a.startswith("on")]:
            del el.attrib[name]
    for div in TRAILER_XPATH(root):
        if len(div) == 0 and not (div.text or "").strip():
            div.drop_tree()
    out: str = lxml.html.tostring(root, encoding="unicode")
    return out[len("<div>") : -len("</div>")]


def _rfc3339(rfc822: str | None) -> str | None:
    if not rfc822:
        return None
    try:
        return parsedate_to_datetime(rfc822).isoformat()
    except (TypeError, ValueError):
        return None


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    el = etree.SubElement(parent, A + tag, attrib)
    if text is not None:
        el.text = text
    return el


def convert(data: bytes) -> bytes:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    channel = etree.fromstring(data, parser).find("channel")
    if channel is None:
        raise ValueError("not an RSS 2.0 feed")
    items = channel.findall("item")
    dates = [_rfc3339(item.findtext("pubDate")) for item in items]

    feed = etree.Element(A + "feed", nsmap={None: ATOM})
    link = channel.findtext("link") or ""
    _sub(feed, "id", link or "urn:feedfix:floor")
    _sub(feed, "title", channel.findtext("title") or "")
    if link:
        _sub(feed, "link", rel="alternate", href=link)
    _sub(
        feed,
        "updated",
        _rfc3339(channel.findtext("lastBuildDate"))
        or max((d for d in dates if d), default="1970-01-01T00:00:00+00:00"),
    )
    for item, date in zip(items, dates, strict=True):
        entry = _sub(feed, "entry")
        item_link = item.findtext("link")
        _sub(entry, "id", item.findtext("guid") or item_link or "")
        _sub(entry, "title", item.findtext("title") or "")
        if item_link:
            _sub(entry, "link", rel="alternate", href=item_link)
        if date:
            _sub(entry, "published", date)
        _sub(entry, "updated", date or "1970-01-01T00:00:00+00:00")
        author = item.findtext("author")
        if author:
            _sub(_sub(entry, "author"), "name", author)
        _sub(entry, "content", clean_html(item.findtext("description") or ""), type="html")
    out: bytes = etree.tostring(feed, xml_declaration=True, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: floor_pipeline.py IN OUT", file=sys.stderr)
        return 2
    Path(args[1]).write_bytes(convert(Path(args[0]).read_bytes()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
