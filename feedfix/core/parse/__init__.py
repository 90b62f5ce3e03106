"""Bytes in, ``Feed`` out: recognise what the input is and read it with the right parser
(an XML feed, a post with front matter, a JSON Feed: ``json_feed``).

Order of attempts for XML: the hardened lxml fast path; the same after fixing what breaks most
real feeds, one repair at a time (a wrong encoding, HTML entities such as ``&nbsp;``, namespace
prefixes used without a declaration, a bare ``&``); lxml in recover mode with every entity
reference kept; feedparser. Whitespace before ``<?xml`` is no damage and needs no warning.
Repairs that lose nothing carry a warning that names them; reading only part of a damaged feed
carries one that quotes the parser's first error, and ``strict`` turns that one into an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, tzinfo
from urllib.parse import urljoin

from lxml import etree

from feedfix.core.errors import DamagedInput, InputError
from feedfix.core.model import Feed
from feedfix.core.parse import encoding, repair
from feedfix.core.parse.json_feed import looks_like_json, parse_json_feed
from feedfix.core.parse.post import looks_like_post, parse_post
from feedfix.core.parse.xml_feed import Streamed, stream_feed

_BINARY_SIGNATURES = {
    b"\x1f\x8b": "gzip-compressed data (decompress it first)",
    b"PK\x03\x04": "a zip archive",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
}
# The sniffer's patterns are each tried at one place, over text without its own end marker
# in it, so that no input can make them backtrack (the comments before the root and the
# <link> tags are found by plain scanning: ``_html_start``, ``_feed_link``).
_SPACE = re.compile(r"\s*")
_HTML_TAG = re.compile(r"<(?:!doctype\s+html|html[\s>]|head[\s>])", re.I)
_LINK = re.compile(r"<link", re.I)
_XML_START = re.compile(r"\A\s*<")
_FEED_TYPE = re.compile(r"type=[\"']application/(?:rss|atom)\+xml[\"']", re.I)
_HREF = re.compile(r"href=[\"']([^\"']+)[\"']", re.I)
HEAD = 65536  # enough of the input to tell a post, a page and a feed apart
MAX_PROBLEM = 120  # characters of libxml2's message quoted in a warning


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


def _skip_space(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    return match.end() if match else at


def _html_start(head: str) -> bool:
    """Whether ``head`` starts an HTML page: a doctype, ``<html>`` or ``<head>`` after any
    whitespace and comments. One pass: each comment is skipped with one ``find``."""
    at = _skip_space(head, 0)
    while head.startswith("<!--", at):
        end = head.find("-->", at + 4)
        if end < 0:
            return False
        at = _skip_space(head, end + 3)
    return _HTML_TAG.match(head, at) is not None


def _feed_link(text: str) -> str | None:
    """The href of the first ``<link … type="application/rss+xml" …>`` (or atom+xml) in an
    HTML page. Each tag is cut out at its ``>`` and read alone: linear in the page."""
    found = _LINK.search(text)
    while found is not None:
        end = text.find(">", found.start())
        if end < 0:
            return None
        tag = text[found.start() : end]
        href = _HREF.search(tag) if _FEED_TYPE.search(tag, 6) else None
        if href:
            return href.group(1)
        found = _LINK.search(text, end)
    return None


def _html_page_problem(text: str) -> str:
    href = _feed_link(text[:200_000])
    if href:
        return f"an HTML page, not a feed (the page links to a feed at {href})"
    return "an HTML page, not a feed"


def parse_document(data: bytes, name: str, options: ParseOptions | None = None) -> Feed:
    """Read a feed or a single post. Raises InputError (or DamagedInput under ``strict``)."""
    options = options or ParseOptions()
    if not data or data.isspace():  # data.strip() copied a feed that ends in a newline
        raise InputError("empty input")
    kind = _binary_kind(data)
    if kind:
        raise InputError(f"{kind}, not a feed")
    utf8 = _plain_utf8(data, options.encoding_hint)
    decoded = None if utf8 else encoding.decode(data, options.encoding_hint)
    head = decoded.text[:HEAD] if decoded else data[:HEAD].decode("utf-8", "replace")
    head = head.lstrip("\ufeff")
    if not head.strip():
        raise InputError("empty input")
    if looks_like_post(head):
        text = (decoded or encoding.decode(data)).text
        entry = parse_post(text, name, options.timezone)
        return Feed(title=entry.title, entries=(entry,), updated=entry.date)
    if looks_like_json(head):
        text = (decoded or encoding.decode(data, options.encoding_hint)).text
        return parse_json_feed(text.lstrip("\ufeff"), options.timezone)
    if _html_start(head):
        raise InputError(_html_page_problem(decoded.text if decoded else head))
    if not _XML_START.match(head):
        raise InputError("not a feed: neither XML nor a post with front matter")
    warnings: list[str] = []
    feed = _read_xml(data, decoded, options, warnings)
    return replace(feed, warnings=tuple(warnings))


def _plain_utf8(data: bytes, hint: str | None) -> bool:
    """True when lxml can take the bytes as they are: UTF-8 by BOM, declaration or default."""
    if hint and hint.lower().replace("_", "-") not in {"utf-8", "utf8"}:
        return False
    bom, _ = encoding.sniff_bom(data)
    if bom is not None:
        return bom == "utf-8"
    if encoding.sniff_utf16(data):
        return False
    declared = encoding.declared_encoding(data)
    return declared is None or declared.replace("_", "-") in {"utf-8", "utf8"}


@dataclass
class _Attempt:
    """One strict parse: what it found, or the error that stopped it."""

    found: Streamed | None
    error: str = ""


def _stream(data: bytes, options: ParseOptions, *, recover: bool) -> _Attempt:
    try:
        return _Attempt(stream_feed(data, options.timezone, recover=recover))
    except etree.XMLSyntaxError as exc:
        return _Attempt(None, _problem(exc))


def _problem(exc: etree.XMLSyntaxError) -> str:
    """libxml2's message on one line, without its trailing position (some messages go on
    with a quote of the input on further lines), and the line it is about."""
    first = (str(exc.msg or exc).splitlines() or [""])[0]
    message = " ".join(re.sub(r",\s*line \d+, column \d+.*$", "", first).split())
    line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
    where = f"line {line}: " if line else ""
    return f"{where}{message[:MAX_PROBLEM]}"


def _mend_entities(text: str) -> tuple[str, str]:
    warning = "feed uses HTML entities that XML does not define; replaced them"
    return repair.html_entities(text), warning


def _mend_prefixes(text: str) -> tuple[str, str]:
    mended, missing = repair.undeclared_prefixes(text)
    names = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
    return mended, f"feed uses namespace prefixes it never declares ({names}); declared them"


def _mend_ampersands(text: str) -> tuple[str, str]:
    warning = "feed has bare '&' or control characters that XML forbids; repaired them"
    return repair.bare_ampersands(text), warning


# The lossless repairs in the order they are tried: each gives the mended text and the
# warning to give when the feed needed it.
_REPAIRS: tuple[Callable[[str], tuple[str, str]], ...] = (
    _mend_entities,
    _mend_prefixes,
    _mend_ampersands,
)


def _read_xml(
    data: bytes, decoded: encoding.Decoded | None, options: ParseOptions, warnings: list[str]
) -> Feed:
    """Strict first; then with a detected encoding and each lossless repair in turn; then
    leniently, keeping entity references."""
    data = repair.without_leading_space(data)
    attempt = _stream(data, options, recover=False) if decoded is None else _Attempt(None)
    found = attempt.found
    if found is None:
        decoded = decoded or encoding.decode(data, options.encoding_hint)
        if decoded.warning:
            warnings.append(decoded.warning)
        text = encoding.without_encoding_declaration(decoded.text).lstrip()
        attempt = _stream(text.encode("utf-8"), options, recover=False)
        found = attempt.found
        repaired: list[str] = []
        for mend in _REPAIRS:
            if found is not None:
                break
            mended, warning = mend(text)
            if mended == text:
                continue
            text = mended
            repaired.append(warning)
            attempt = _stream(text.encode("utf-8"), options, recover=False)
            found = attempt.found
        if found is None:
            return _read_damaged(text, attempt.error, options, repaired, warnings)
        if found.feed is not None:
            warnings.extend(repaired)
    if found.feed is None:
        raise InputError(_not_a_feed(found.root, decoded.text if decoded else ""))
    warnings.extend(found.warnings)
    return _with_base(found.feed, options.base_url)


def _read_damaged(
    text: str, problem: str, options: ParseOptions, repaired: list[str], warnings: list[str]
) -> Feed:
    """The last resort, which can lose content: ``strict`` refuses it (the other repairs
    above lose nothing, so they only warn). Entity references are kept as character
    references, so escaped markup survives; feedparser reads what lxml cannot."""
    recovered = _stream(repair.keep_references(text).encode("utf-8"), options, recover=True).found
    feed = recovered.feed if recovered is not None else None
    reader = "recovered"
    if feed is None or not feed.entries:
        from feedfix.core.parse.feedparser_adapter import parse_with_feedparser  # noqa: PLC0415

        loose, _ = parse_with_feedparser(text.encode("utf-8"), options.base_url)
        if loose.entries or (feed is None and (loose.title or loose.links)):
            feed = loose
            reader = "read by the lenient parser"
    if feed is None:
        if recovered is not None and recovered.root.lower() == "html":
            raise InputError(_html_page_problem(text))
        raise InputError(f"not well-formed XML ({problem}) and no feed could be read from it")
    damage = (
        f"feed is not well-formed XML ({problem}); {len(feed.entries)} entries {reader} "
        "around the damage"
    )
    if options.strict:
        raise DamagedInput(damage)
    warnings.extend([damage, *repaired])
    if recovered is not None and feed is recovered.feed:  # about its entries, not feedparser's
        warnings.extend(recovered.warnings)
    return _with_base(feed, options.base_url)


def _not_a_feed(root: str, text: str) -> str:
    if root.lower() == "html":
        return _html_page_problem(text)
    return f"an XML document with root element <{root}>, not a feed"


def _with_base(feed: Feed, base_url: str | None) -> Feed:
    """Relative ``xml:base`` values made absolute against the document's own URL."""
    if not base_url or not any(e.base for e in feed.entries):
        return feed
    entries = tuple(
        replace(e, base=urljoin(base_url, e.base)) if e.base else e for e in feed.entries
    )
    return replace(feed, entries=entries)
