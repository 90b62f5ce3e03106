"""Issue 23's property: whatever feedparser reads, feedfix keeps.

For every feed of the corpora the project already has (feedparser's, podcastparser's and
reader's test feeds, which ``test_peer_corpus.py`` fetches into the test cache, and
``../shared/corpus/feeds``), every entry feedparser finds must be in feedfix's Atom output, in
the same place, with the same title, link, dates and enclosures and at least the same text
(every character of feedparser's text, in order, in feedfix's content and summary).

Where feedfix differs on purpose, an exception below names the files, the fields and why;
an exception that no longer matches any difference fails the test too, so the list stays
true. Skips cleanly when neither corpus is present (``FEEDFIX_REQUIRE_NETWORK=1`` fails
instead, as the peer-corpus test does).
"""

from __future__ import annotations

import calendar
import fnmatch
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from atomcheck import Entry, entries, normalise_space, unwrap, visible_text
from feedfix.core.errors import FeedfixError
from feedfix.core.pipeline import convert

SDISTS = ("feedparser-6.0.14", "podcastparser-0.6.11", "reader-3.26")
SHARED_FEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "feeds"
FEED_SUFFIXES = {".xml", ".rdf", ".atom", ".rss"}


@dataclass(frozen=True)
class Exception_:
    """Files (fnmatch patterns on ``corpus/relative/path``) where feedfix differs from
    feedparser on purpose in these fields, and why."""

    patterns: tuple[str, ...]
    fields: frozenset[str]
    why: str


EXCEPTIONS = (
    Exception_(
        ("feedparser/illformed/chardet/*",),
        frozenset({"title", "text"}),
        "feedfix better: undeclared EUC-JP/EUC-KR/GB2312/KOI8-R/Shift_JIS/TIS-620/"
        "windows-1255 feeds; feedparser (without chardet) reads them as windows-1252 "
        "mojibake, feedfix's statistical guess reads them right and says it guessed",
    ),
    Exception_(
        (
            "feedparser/encoding/demoronize-*.xml",
            "feedparser/encoding/*double-encoded-html.xml",
            "feedparser/encoding/bozo_linenoise.xml",
        ),
        frozenset({"text"}),
        "differs: feedparser rewrites the characters a feed wrote (C1 controls read as "
        "windows-1252, UTF-8 undone from Latin-1); feedfix keeps the characters as written",
    ),
    Exception_(
        ("feedparser/wellformed/atom*/entry_id*.xml",),
        frozenset({"link"}),
        "feedfix better: feedparser makes an Atom entry's id its link; an atom:id is an "
        "identifier, not a link (RFC 4287 4.2.6), and feedfix invents no link",
    ),
    Exception_(
        ("feedparser/wellformed/atom/entry_updated_multiple_values.xml",),
        frozenset({"updated"}),
        "differs: an entry with several <updated>: feedparser takes the last, feedfix the "
        "first, as its documented precedence says for every field",
    ),
    Exception_(
        (
            "feedparser/wellformed/atom10/entry_summary_base64*.xml",
            "feedparser/wellformed/atom10/entry_title_base64*.xml",
        ),
        frozenset({"title", "text"}),
        "differs: base64 in a title or summary is not Atom (only atom:content may be "
        "base64, RFC 4287 4.1.3.3); feedfix keeps the text as written",
    ),
    Exception_(
        ("feedparser/wellformed/cdf/*", "feedparser/wellformed/base/cdf_*"),
        frozenset({"count"}),
        "differs: Microsoft's CDF (1997) is not a feed format feedfix reads; it refuses "
        "it with a one-line error",
    ),
    Exception_(
        ("feedparser/wellformed/namespace/*svg*.xml",),
        frozenset({"text"}),
        "by design: sanitize removes inline SVG (README, The rules), with its title/desc",
    ),
    Exception_(
        ("feedparser/wellformed/sanitize/*",),
        frozenset({"title", "text"}),
        "feedfix better: feedparser keeps script, style and iframe text its sanitizer "
        "leaves (and puts script text into titles); sanitize removes those elements whole",
    ),
    Exception_(
        ("feedparser/wellformed/rss/item_category_image.xml",),
        frozenset({"title"}),
        "feedfix better: feedparser takes the <title> of an <image> nested in <category> "
        "as the item's title",
    ),
    Exception_(
        ("feedparser/wellformed/rss/item_description_not_a_doctype.xml",),
        frozenset({"text"}),
        'differs: the description is the HTML "<!\' <a href=...>", a bogus comment to an '
        "HTML5 reader, which shows nothing; feedfix's cleaning drops it as a browser would",
    ),
    Exception_(
        ("reader/data/full.atom",),
        frozenset({"text"}),
        "differs: an entry with three <content> elements (Atom allows one); feedfix takes "
        "the first, feedparser all",
    ),
)


def corpus_files() -> Iterator[tuple[str, Path]]:
    """``(name, path)`` of every feed file: ``name`` is ``corpus/relative/path``."""
    configured = os.environ.get("FEEDFIX_TEST_CACHE")
    cache = Path(configured) if configured else Path.home() / ".cache" / "feedfix-tests"
    for sdist in SDISTS:
        root = cache / sdist / "tests"
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.is_file() and path.suffix.lower() in FEED_SUFFIXES:
                yield f"{sdist.split('-')[0]}/{path.relative_to(root)}", path
    for path in sorted(SHARED_FEEDS.glob("*.xml")) if SHARED_FEEDS.is_dir() else []:
        yield f"shared/{path.name}", path


def _text(value: str, kind: str) -> str:
    if not value.strip():
        return ""
    if "html" in kind:
        try:
            return visible_text(value)
        except etree.ParserError:  # markup with no text at all
            return ""
    return normalise_space(value)


def _their_texts(entry: Any) -> list[str]:
    contents = entry.get("content") or []
    found = [_text(c.get("value") or "", c.get("type") or "") for c in contents]
    summary = entry.get("summary") or ""
    if summary not in {c.get("value") for c in contents}:  # not content copied to summary
        kind = (entry.get("summary_detail") or {}).get("type") or "text/html"
        found.append(_text(summary, kind))
    return [text for text in found if text]


def _their_title(entry: Any) -> str:
    return _text(entry.get("title") or "", (entry.get("title_detail") or {}).get("type", ""))


def _their_time(entry: Any, key: str) -> str | None:
    value = dict.get(entry, key)  # not .get: feedparser maps a missing updated to published
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in_order(wanted: str, text: str) -> bool:
    """Every character of ``wanted`` in ``text``, in order (feedfix may keep more)."""
    rest = iter(text)
    return all(char in rest for char in wanted)


def differences(data: bytes, name: str) -> list[tuple[str, str]]:
    """``(field, detail)`` for each way feedfix's output falls short of feedparser's entries."""
    import feedparser  # noqa: PLC0415 - slow import, this test only

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = feedparser.parse(data).get("entries") or []
    if not theirs:
        return []
    try:
        ours = entries(etree.fromstring(convert(data, name).atom))
    except FeedfixError as exc:
        return [("count", f"refused: {exc}")]
    found: list[tuple[str, str]] = []
    if len(ours) < len(theirs):
        found.append(("count", f"{len(ours)} entries, feedparser {len(theirs)}"))
    for index, (their, our) in enumerate(zip(theirs, ours, strict=False)):
        found.extend((f, f"entry {index}: {d}") for f, d in _entry_differences(their, our))
    return found


def _entry_differences(their: Any, our: Entry) -> Iterator[tuple[str, str]]:
    title = _their_title(their)
    if title and title != our.title:
        yield "title", f"{our.title!r} != {title!r}"
    link = (their.get("link") or "").strip()
    if link.startswith(("http:", "https:")) and our.alternate != link:
        yield "link", f"{our.alternate!r} != {link!r}"
    for key, ours in (("published_parsed", our.published), ("updated_parsed", our.updated)):
        wanted = _their_time(their, key)
        if wanted and (ours or "").replace(".000", "") != wanted:
            yield key.split("_")[0], f"{ours} != {wanted}"
    enclosures = {unwrap(x["href"].strip()) for x in their.get("enclosures") or [] if x.get("href")}
    missing = enclosures - {x.href for x in our.links_by_rel("enclosure")}
    if missing:
        yield "enclosures", f"missing {sorted(missing)}"
    text = visible_text(our.content_html + " " + our.summary_html)
    for wanted in _their_texts(their):
        if not _in_order(wanted, text):
            yield "text", f"{wanted[:80]!r} not in {text[:80]!r}"


def _excused(name: str, field: str) -> Exception_ | None:
    for exception in EXCEPTIONS:
        matches = any(fnmatch.fnmatch(name, p) for p in exception.patterns)
        if matches and field in exception.fields:
            return exception
    return None


def test_every_entry_feedparser_reads_is_in_the_output() -> None:
    """The property over every corpus file; unexcused differences and unused exceptions
    are both failures."""
    files = list(corpus_files())
    if not any(name.startswith("feedparser/") for name, _ in files):
        if os.environ.get("FEEDFIX_REQUIRE_NETWORK") == "1":
            pytest.fail("feedparser's test corpus is not in the test cache")
        pytest.skip("feedparser's test corpus is not in the test cache (test_peer_corpus.py)")
    failures: list[str] = []
    used: set[Exception_] = set()
    compared = 0
    for name, path in files:
        found = differences(path.read_bytes(), name)
        compared += 1
        for field, detail in found:
            exception = _excused(name, field)
            if exception is None:
                failures.append(f"{name}: {field}: {detail}")
            else:
                used.add(exception)
    stale = [e.patterns for e in EXCEPTIONS if e not in used]
    print(f"{compared} files compared; {len(failures)} unexcused differences")
    assert not failures, "\n".join(failures[:60])
    assert not stale, f"exceptions that match no difference any more: {stale}"


def test_the_property_catches_a_lost_entry_and_a_changed_field() -> None:
    """The comparison itself: a feed whose output would lose text, a title or an entry is
    reported (checked on a feed that feedfix reads with one item feedparser sees twice)."""
    item = (
        "<item><title>T</title><link>https://p.example/1</link><description>{}</description></item>"
    )
    data = f"<rss><channel>{item.format('Some words')}</channel></rss>".encode()
    assert differences(data, "one.xml") == []
    our = Entry(id="x", title="Other", content_html="Some")
    their = {"title": "T", "summary": "Some words", "link": "https://p.example/1"}
    fields = sorted(field for field, _ in _entry_differences(their, our))
    assert fields == ["link", "text", "title"]
