"""The three output formats as the tests read them: validity checks and what each one says.

- ``assert_valid_rss``: the RSS Advisory Board's profile, checked in code (there is no RSS
  schema): one ``channel`` with a non-empty ``title``, an absolute ``link`` and a
  ``description``; every item with a title or a description; RFC 822 dates with a four-digit
  year; a ``guid`` that is a URL when it is a permalink; ``enclosure`` with ``url``, an
  integer ``length`` and a ``type``; ``author`` holding an email; no element of RSS's own
  vocabulary that RSS 2.0 does not define; namespaces declared (lxml refuses anything else).
- ``assert_valid_json_feed``: the JSON Feed 1.1 JSON Schema (tests/schemas, from ../shared),
  plus what the schema leaves to code: unique ids, absolute URLs.
- ``said_by_feedparser`` (Atom and RSS) and ``said_by_feedsmith`` (JSON Feed, read by
  feedsmith, an independent TypeScript parser from npm, through tests/js/read_json_feed.mjs)
  reduce a feed to what the parity tests compare: each entry's id, title, link, date,
  enclosures and content as text.
"""

from __future__ import annotations

import calendar
import contextlib
import email.utils
import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import jsonschema  # type: ignore[import-untyped]
import lxml.html
import pytest
from lxml import etree

from atomcheck import parse_xml

TESTS = Path(__file__).resolve().parent
JSON_SCHEMA = TESTS / "schemas" / "jsonfeed-1.1.schema.json"
JS = TESTS / "js"
READ_JSON = JS / "read_json_feed.mjs"
FORMATS = ("atom", "rss", "json")
SUFFIXES = {"atom": ".atom.xml", "rss": ".rss.xml", "json": ".json"}
CONTENT_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "media": "http://search.yahoo.com/mrss/",
}
# RSS 2.0's own elements (rssboard.org/rss-specification), by parent.
RSS_CHANNEL = {
    "title", "link", "description", "language", "copyright", "managingEditor", "webMaster",
    "pubDate", "lastBuildDate", "category", "generator", "docs", "cloud", "ttl", "image",
    "rating", "textInput", "skipHours", "skipDays", "item",
}  # fmt: skip
RSS_ITEM = {
    "title", "link", "description", "author", "category", "comments", "enclosure", "guid",
    "pubDate", "source",
}  # fmt: skip
RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
    r"Oct|Nov|Dec) \d{4} \d{2}:\d{2}(?::\d{2})? (?:GMT|UT|[+-]\d{4}|[A-Z]{3})"
)
EMAIL = re.compile(r"[^\s@()<>]+@[^\s@()<>]+")


# ---- validity --------------------------------------------------------------------------------


def _absolute(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme in {"mailto", "urn", "tag"})


def assert_valid_rss(data: bytes, *, urls_absolute: bool = True) -> etree._Element:
    """RSS 2.0 by the profile (see the module's docstring); returns the ``<rss>`` root."""
    try:
        root = parse_xml(data)
    except etree.XMLSyntaxError as exc:
        message = f"RSS is not well-formed XML (or a prefix is undeclared): {exc}"
        raise AssertionError(message) from exc
    assert root.tag == "rss" and root.get("version") == "2.0", root.tag
    channels = root.findall("channel")
    assert len(channels) == 1 and len(root) == 1, "exactly one channel, and nothing else"
    channel = channels[0]
    for required in ("title", "link", "description"):
        found = channel.findall(required)
        assert len(found) == 1, f"channel needs one <{required}>"
    assert (channel.findtext("title") or "").strip(), "an empty channel title"
    link = channel.findtext("link") or ""
    assert not urls_absolute or _absolute(link), f"channel link {link!r} is not absolute"
    for child in channel:
        if isinstance(child.tag, str) and "}" not in child.tag:
            assert child.tag in RSS_CHANNEL, f"<{child.tag}> is not an RSS 2.0 channel element"
    for when in channel.findall("lastBuildDate") + channel.findall("pubDate"):
        _rfc822(when.text or "", "channel")
    editor = channel.findtext("managingEditor")
    assert editor is None or EMAIL.match(editor), f"managingEditor {editor!r} has no email"
    ids = []
    for index, item in enumerate(channel.findall("item")):
        where = f"item #{index}"
        for child in item:
            if isinstance(child.tag, str) and "}" not in child.tag:
                assert child.tag in RSS_ITEM, f"{where}: <{child.tag}> is not an RSS 2.0 element"
                assert len(item.findall(child.tag)) == 1 or child.tag == "category", (
                    f"{where}: <{child.tag}> more than once"
                )
        assert item.find("title") is not None or item.find("description") is not None, where
        for date in item.findall("pubDate"):
            _rfc822(date.text or "", where)
        for author in item.findall("author"):
            assert EMAIL.match(author.text or ""), f"{where}: author {author.text!r} has no email"
        guid = item.find("guid")
        if guid is not None:
            value = (guid.text or "").strip()
            assert value, f"{where}: an empty guid"
            if guid.get("isPermaLink", "true") == "true":
                assert _absolute(value), f"{where}: permalink guid {value!r} is not a URL"
            ids.append(value)
        enclosure = item.find("enclosure")
        if enclosure is not None:
            assert enclosure.get("url") and enclosure.get("type"), f"{where}: enclosure"
            assert (enclosure.get("length") or "").isdigit(), f"{where}: enclosure length"
        own = item.findtext("link")
        assert own is None or not urls_absolute or _absolute(own), f"{where}: link {own!r}"
    assert len(ids) == len(set(ids)), "a guid given twice"
    return root


def _rfc822(text: str, where: str) -> None:
    assert RFC822.fullmatch(text.strip()), f"{where}: date {text!r} is not RFC 822"
    assert email.utils.parsedate_to_datetime(text).tzinfo is not None, where


@functools.cache
def _json_validator() -> Any:
    schema = json.loads(JSON_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def assert_valid_json_feed(data: bytes, *, urls_absolute: bool = True) -> dict[str, Any]:
    """JSON Feed 1.1 by its schema, unique ids and absolute URLs; returns the document."""
    document: dict[str, Any] = json.loads(data.decode("utf-8"))
    errors = sorted(_json_validator().iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    ids = [item["id"] for item in document["items"]]
    assert len(ids) == len(set(ids)), "an id given twice"
    if urls_absolute:
        for url in _urls(document):
            assert _absolute(url), f"{url!r} is not absolute"
    return document


def _urls(document: dict[str, Any]) -> Iterable[str]:
    keys = ("home_page_url", "feed_url", "icon", "favicon", "url", "external_url", "image")
    holders = [document, *document["items"]]
    for item in document["items"]:
        holders += item.get("attachments", []) + item.get("authors", [])
    holders += document.get("authors", [])
    for holder in holders:
        yield from (holder[key] for key in keys if key in holder)


def assert_valid(fmt: str, data: bytes, *, urls_absolute: bool = True) -> None:
    """``data`` is a valid document of format ``fmt``."""
    from atomcheck import assert_valid_atom  # noqa: PLC0415

    if fmt == "atom":
        assert_valid_atom(data)
    elif fmt == "rss":
        assert_valid_rss(data, urls_absolute=urls_absolute)
    else:
        assert_valid_json_feed(data, urls_absolute=urls_absolute)


# ---- what a feed says ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """An entry as a reader shows it: its title, its link and its content (HTML)."""

    title: str
    link: str | None
    html: str


def shown(fmt: str, data: bytes) -> list[Shown]:
    """The entries of a valid document of format ``fmt``, read with lxml or json (not
    feedfix): for the service's tests, which check the same entries in every format."""
    assert_valid(fmt, data)
    if fmt == "json":
        items = json.loads(data)["items"]
        return [Shown(i.get("title", ""), i.get("url"), i.get("content_html", "")) for i in items]
    if fmt == "rss":
        return [
            Shown(
                item.findtext("title") or "",
                item.findtext("link"),
                item.findtext(f"{{{NS['content']}}}encoded") or item.findtext("description") or "",
            )
            for item in parse_xml(data).iterfind("channel/item")
        ]
    from atomcheck import entries  # noqa: PLC0415

    return [Shown(e.title or "", e.alternate, e.content_html) for e in entries(parse_xml(data))]


@dataclass(frozen=True)
class Said:
    """What the parity tests compare of one entry."""

    id: str
    title: str
    link: str | None
    date: datetime | None  # published, else updated: RSS has one date
    enclosures: tuple[str, ...]  # their URLs, in order
    text: str  # the content (else the summary) as visible text, whitespace collapsed
    media: tuple[str, ...] = ()  # Media RSS media:content URLs (feedparser's media_content)


def visible(markup: str | None) -> str:
    """The text a reader shows of an HTML string, whitespace collapsed."""
    if not markup or not markup.strip():
        return ""
    try:
        text = lxml.html.fragment_fromstring(markup, create_parent="div").text_content()
    except (etree.ParserError, ValueError):
        text = markup
    return " ".join(text.split())


def feedparser_repairs(text: str) -> str:
    """What feedparser does to the text it reads, done to another reader's text so that the
    two compare: UTF-8 read as Latin-1 (``â\x80¦``) decoded again, and the C1 controls that
    stand for Windows-1252 characters (``\x92``) read as those."""
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("latin-1").decode("utf-8")
    return "".join(
        c.encode("latin-1").decode("cp1252", "ignore") or c if "\x80" <= c <= "\x9f" else c
        for c in text
    )


def said_by_feedparser(data: bytes) -> list[Said]:
    """An Atom or RSS feed as feedparser reads it."""
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    found = []
    for entry in parsed.entries:
        content = entry.get("content")
        body = content[0].get("value") if content else entry.get("summary")
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        found.append(
            Said(
                id=entry.get("id", ""),
                title=entry.get("title", ""),
                link=_alternate(entry.get("links", [])),
                date=datetime.fromtimestamp(calendar.timegm(when), UTC) if when else None,
                enclosures=tuple(e.get("href", "") for e in entry.get("enclosures", [])),
                text=visible(body),
                media=tuple(m.get("url", "") for m in entry.get("media_content", [])),
            )
        )
    return found


def _alternate(links: Sequence[dict[str, str]]) -> str | None:
    return next((k.get("href") for k in links if k.get("rel") == "alternate"), None)


def said_by_feedsmith(feed: dict[str, Any]) -> list[Said]:
    """A JSON Feed as feedsmith parsed it (``read_json_feeds``)."""
    found = []
    for item in feed.get("items", []):
        when = item.get("date_published") or item.get("date_modified")
        found.append(
            Said(
                id=str(item.get("id", "")),
                title=item.get("title", ""),
                link=item.get("url"),
                date=datetime.fromisoformat(when).astimezone(UTC) if when else None,
                enclosures=tuple(a.get("url", "") for a in item.get("attachments", [])),
                text=feedparser_repairs(
                    visible(item.get("content_html") or item.get("content_text"))
                ),
            )
        )
    return found


def node() -> str:
    """Node.js, with feedsmith installed in tests/js (``npm ci --prefix tests/js``); else the
    test skips (fails where FEEDFIX_REQUIRE_READERS is set, as in CI)."""
    executable = shutil.which("node")
    if executable is not None and (JS / "node_modules" / "feedsmith").is_dir():
        return executable
    message = "feedsmith is not installed (npm ci --prefix tests/js; Node.js from apt)"
    if os.environ.get("FEEDFIX_REQUIRE_READERS"):
        pytest.fail(f"{message}; FEEDFIX_REQUIRE_READERS is set")
    pytest.skip(message)


def read_json_feeds(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Each file read by feedsmith's ``parseJsonFeed`` in one Node.js process: the parsed
    feed, or ``{"error": …}``."""
    executable = node()
    result = subprocess.run(
        [executable, str(READ_JSON), "--files"],
        input="\n".join(str(p) for p in paths).encode("utf-8"),
        capture_output=True,
        timeout=600,
        check=False,
        cwd=JS,
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    lines = result.stdout.decode("utf-8").splitlines()
    assert len(lines) == len(paths), result.stderr.decode("utf-8", "replace")
    return [json.loads(line) for line in lines]
