"""Bytes in, ``Feed`` out: recognise what the input is and read it with the right parser.

Order of attempts for XML: the hardened lxml fast path; the same after fixing what breaks most
real feeds (a wrong encoding, HTML entities such as ``&nbsp;``); lxml in recover mode; feedparser.
Anything read only in part carries a warning, which ``strict`` turns into an error.
"""

from __future__ import annotations

import html.entities
import re
from dataclasses import dataclass, replace
from datetime import UTC, tzinfo

from lxml import etree

from feedfix.errors import DamagedInput, InputError
from feedfix.model import Feed
from feedfix.parse import encoding
from feedfix.parse.post import looks_like_post, parse_post
from feedfix.parse.xml_feed import feed_from_tree, make_parser, split_tag

_BINARY_SIGNATURES = {
    b"\x1f\x8b": "gzip-compressed data (decompress it first)",
    b"PK\x03\x04": "a zip archive",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
}
_HTML_START = re.compile(
    r"\A\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>])", re.I | re.S
)
_XML_START = re.compile(r"\A\s*<")
_FEED_LINK = re.compile(r"<link[^>]+type=[\"']application/(?:rss|atom)\+xml[\"'][^>]*>", re.I)
_HREF = re.compile(r"href=[\"']([^\"']+)[\"']", re.I)
_NAMED_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = {"amp", "lt", "gt", "quot", "apos"}


@dataclass(frozen=True)
class ParseOptions:
    """How to read an input: the URL it came from, an HTTP charset, a zone for bare dates."""

    base_url: str | None = None
    encoding_hint: str | None = None
    timezone: tzinfo = UTC
    strict: bool = False


def _binary_kind(data: bytes) -> str | None:
    for signature, kind in _BINARY_SIGNATURES.items():
        if data.startswith(signature):
            return kind
    if encoding.sniff_bom(data)[0] or encoding.sniff_utf16(data):
        return None
    head = data[:8192]
    if b"\x00" in head:
        return "binary data"
    return None


def _html_page_problem(text: str) -> str:
    link = _FEED_LINK.search(text[:200_000])
    href = _HREF.search(link.group(0)) if link else None
    if href:
        return f"an HTML page, not a feed (the page links to a feed at {href.group(1)})"
    return "an HTML page, not a feed"


def _replace_html_entities(text: str) -> str:
    """``&nbsp;`` and friends are not XML: turn them into character references."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _XML_ENTITIES:
            return match.group(0)
        codepoint = html.entities.name2codepoint.get(name)
        return f"&#{codepoint};" if codepoint else match.group(0)

    return _NAMED_ENTITY.sub(sub, text)


def _parse_xml(data: bytes, base_url: str | None, *, recover: bool) -> etree._Element | None:
    try:
        root = etree.fromstring(data, make_parser(recover=recover), base_url=base_url)
    except etree.XMLSyntaxError:
        return None
    except ValueError:  # lxml refuses some inputs outright (e.g. an empty document)
        return None
    return root


def parse_document(data: bytes, name: str, options: ParseOptions | None = None) -> Feed:
    """Read a feed or a single post. Raises InputError (or DamagedInput under ``strict``)."""
    options = options or ParseOptions()
    if not data.strip():
        raise InputError("empty input")
    kind = _binary_kind(data)
    if kind:
        raise InputError(f"{kind}, not a feed")
    decoded = encoding.decode(data, options.encoding_hint)
    text = decoded.text
    if not text.strip():
        raise InputError("empty input")
    if looks_like_post(text):
        entry = parse_post(text, name, options.timezone)
        return Feed(title=entry.title, entries=(entry,), updated=entry.date)
    if _HTML_START.match(text):
        raise InputError(_html_page_problem(text))
    if not _XML_START.match(text):
        raise InputError("not a feed: neither XML nor a post with front matter")
    warnings: list[str] = []
    if decoded.mismatch:
        warnings.append(
            f"declared encoding {decoded.declared!r} is wrong; read as {decoded.encoding}"
        )
    feed = _read_xml(data, decoded, options, warnings)
    if warnings and options.strict:
        raise DamagedInput(warnings[0])
    return replace(feed, warnings=tuple(warnings))


def _read_xml(
    data: bytes, decoded: encoding.Decoded, options: ParseOptions, warnings: list[str]
) -> Feed:
    plain_utf8 = (
        decoded.encoding == "utf-8"
        and not decoded.mismatch
        and not data.startswith(b"\xef\xbb\xbf")
    )
    utf8 = data if plain_utf8 else encoding.without_encoding_declaration(decoded.text).encode()
    root = _parse_xml(utf8, options.base_url, recover=False)
    if root is None:
        fixed = _replace_html_entities(encoding.without_encoding_declaration(decoded.text))
        root = _parse_xml(fixed.encode(), options.base_url, recover=False)
        if root is not None:
            warnings.append("feed uses HTML entities that XML does not define; replaced them")
    if root is not None:
        return _feed_or_error(root, options)
    recovered = _parse_xml(utf8, options.base_url, recover=True)
    feed = feed_from_tree(recovered, options.timezone) if recovered is not None else None
    if feed is None or not feed.entries:
        from feedfix.parse.feedparser_adapter import parse_with_feedparser  # noqa: PLC0415

        loose, _ = parse_with_feedparser(data, options.base_url)
        if loose.entries or (feed is None and (loose.title or loose.links)):
            feed = loose
    if feed is None:
        if recovered is not None and split_tag(recovered.tag)[1].lower() == "html":
            raise InputError(_html_page_problem(decoded.text))
        raise InputError("not well-formed XML and no feed could be read from it")
    warnings.append(f"feed is not well-formed XML; read {len(feed.entries)} entries from it")
    return feed


def _feed_or_error(root: etree._Element, options: ParseOptions) -> Feed:
    feed = feed_from_tree(root, options.timezone)
    if feed is not None:
        return feed
    local = split_tag(root.tag)[1]
    if local.lower() == "html":
        raise InputError("an HTML page, not a feed")
    raise InputError(f"an XML document with root element <{local}>, not a feed")
