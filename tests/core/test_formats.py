"""The three formats one by one: the mapping's details, round trips, determinism, the
service's derivation from the Atom, and JSON Feed as input."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from atomcheck import DATA, run_feedfix
from feedfix.core.model import Category, Entry, Feed, Link, Media, Person
from feedfix.core.parse import parse_document
from feedfix.core.pipeline import convert
from feedfix.core.render import FORMATS
from feedfix.core.republish import other_format
from formats import assert_valid_json_feed, assert_valid_rss, said_by_feedparser

FIXTURES = sorted(p for p in DATA.iterdir() if p.suffix in {".xml", ".rdf"})
CONVERTIBLE = [p for p in FIXTURES if p.name not in {"notafeed.xml", "billion-laughs.rss.xml"}]
WHEN = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def _said(atom: bytes, fmt: str) -> list[tuple[object, ...]]:
    """What a round trip must keep of each entry (RSS says one date: the first there is; its
    extra enclosures are Media RSS contents; JSON Feed has no Media RSS contents at all)."""
    return [
        (s.id, s.title, s.link, s.date, s.text,
         Counter(s.enclosures + (s.media if fmt == "rss" else ())))
        for s in said_by_feedparser(atom)
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["rss", "json"])
@pytest.mark.parametrize("path", CONVERTIBLE, ids=[p.name for p in CONVERTIBLE])
def test_converting_feedfixs_own_output_again_gives_the_same_entries(path: Path, fmt: str) -> None:
    """A fixture converted to RSS (or JSON Feed), and that converted again to Atom, has the
    entries the fixture's Atom has: ids, titles, links, dates, enclosures, content text."""
    first = convert(path.read_bytes(), path.name)
    out = FORMATS[fmt].render(first.feed)
    again = convert(out, f"again.{fmt}")
    assert _said(again.atom, fmt) == _said(first.atom, fmt)
    assert FORMATS[fmt].render(again.feed) == out, "a second round changes nothing more"


@pytest.mark.parametrize("path", CONVERTIBLE, ids=[p.name for p in CONVERTIBLE])
def test_the_services_formats_read_back_from_its_atom_are_the_direct_ones(path: Path) -> None:
    """``other_format`` (what the service serves: RSS and JSON read back from the Atom it
    stores) gives the bytes a direct render of the cleaned feed gives, links to the other
    formats included."""
    feed = convert(path.read_bytes(), path.name).feed
    atom = FORMATS["atom"].render(feed, self_url="https://feeds.example/feeds/x.atom")
    for fmt in ("rss", "json"):
        direct = FORMATS[fmt].render(feed, self_url=f"https://feeds.example/feeds/x.{fmt}")
        assert other_format(atom, fmt, "https://feeds.example/feeds/x.atom") == direct, fmt


def test_the_same_input_gives_the_same_bytes_in_another_process() -> None:
    """Byte-identical output in each format, whatever the process's hash seed."""
    fixture = DATA / "zaker-modern.rss.xml"
    runs = []
    for seed in ("1", "2"):
        outs = []
        for fmt in ("atom", "rss", "json"):
            done = run_feedfix("convert", fixture, "--format", fmt,
                               env={"PYTHONHASHSEED": seed})  # fmt: skip
            assert done.returncode == 0, done.stderr
            outs.append(done.stdout)
        runs.append(outs)
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3


def _feed(*entries: Entry, **fields: object) -> Feed:
    return Feed(title="T", id="urn:x:feed", links=(Link("https://site.example/"),),
                updated=WHEN, entries=entries, **fields)  # type: ignore[arg-type]  # fmt: skip


def test_rss_titles_are_plain_text_both_ways() -> None:
    """A plain-text title with ``&``, ``<`` and ``>`` is written with the profile's hex
    references, and feedparser and feedfix read back the very text."""
    title = "Tom & Jerry <3 > AT&amp;T"
    entry = Entry(id="urn:x:1", title=title, content="<p>x</p>", updated=WHEN)
    out = FORMATS["rss"].render(_feed(entry))
    assert b"Tom &#x26; Jerry &#x3C;3 &#x3E; AT&#x26;amp;T" in out
    assert said_by_feedparser(out)[0].title == title
    assert parse_document(out, "x.rss").entries[0].title == title


def test_rss_item_mapping() -> None:
    """guid is a permalink only when it is the link; the first enclosure is ``enclosure``
    (length 0 and a type when unknown), the rest ``media:content``; ``author`` once with an
    email, names as ``dc:creator``; RFC 822 dates in GMT; comments; dc:language."""
    entry = Entry(
        id="https://site.example/1",
        title="one",
        links=(
            Link("https://site.example/1"),
            Link("https://cdn.example/a.mp3", rel="enclosure", type="audio/mpeg", length=10),
            Link("https://cdn.example/b.bin", rel="enclosure"),
            Link("https://site.example/1#comments", rel="replies", type="text/html"),
            Link("https://elsewhere.example/", rel="related"),
        ),
        content="<p>full</p>",
        summary="<p>short</p>",
        authors=(Person("Ann", "ann@example.org"), Person("Bo", "bo@example.org"), Person("Cy")),
        categories=(Category("news", scheme="https://site.example/tags"),),
        published=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated=WHEN,
        media=(Media("thumbnail", "https://cdn.example/t.jpg"),),
        lang="fr",
    )
    other = Entry(id="urn:x:2", title="two", content="<p>two</p>")
    out = FORMATS["rss"].render(_feed(entry, other, lang="en"))
    root = assert_valid_rss(out)
    first, second = root.findall("channel/item")
    assert first.find("guid").get("isPermaLink") is None  # type: ignore[union-attr]
    assert second.find("guid").get("isPermaLink") == "false"  # type: ignore[union-attr]
    assert first.findtext("pubDate") == "Fri, 02 Jan 2026 03:04:05 GMT"
    assert second.findtext("pubDate") == "Sun, 01 Mar 2026 08:30:00 GMT"  # the feed's date
    enclosure = first.find("enclosure")
    assert enclosure is not None and dict(enclosure.attrib) == {
        "url": "https://cdn.example/a.mp3", "length": "10", "type": "audio/mpeg"}  # fmt: skip
    media = first.findall("{http://search.yahoo.com/mrss/}content")
    assert [m.get("url") for m in media] == ["https://cdn.example/b.bin"]
    assert first.findtext("description") == "<p>short</p>"
    assert first.findtext("{http://purl.org/rss/1.0/modules/content/}encoded") == "<p>full</p>"
    assert second.find("{http://purl.org/rss/1.0/modules/content/}encoded") is None
    assert first.findtext("author") == "ann@example.org (Ann)"
    dc = "{http://purl.org/dc/elements/1.1/}"
    assert [e.text for e in first.findall(f"{dc}creator")] == ["Bo", "Cy"]
    assert first.findtext("comments") == "https://site.example/1#comments"
    assert first.findtext(f"{dc}language") == "fr"
    assert first.find("category").get("domain") == "https://site.example/tags"  # type: ignore[union-attr]


def test_json_feed_item_mapping() -> None:
    """content_html and a plain-text summary; url and external_url; the first thumbnail as
    image; attachments with a mime_type always; authors with a URL or a mailto; tags;
    RFC 3339 dates; the feed's site, icon and favicon."""
    entry = Entry(
        id="urn:x:1",
        title="A & B",
        links=(
            Link("https://site.example/1"),
            Link("https://elsewhere.example/", rel="related"),
            Link("https://cdn.example/b.bin", rel="enclosure", title="the file"),
        ),
        content="<p>full &amp; more</p>",
        summary="<p>short <b>one</b></p>",
        authors=(Person("Ann", "ann@example.org"), Person("Bo", uri="https://bo.example/")),
        categories=(Category("news"),),
        published=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        media=(Media("thumbnail", "https://cdn.example/t.jpg"),),
    )
    feed = _feed(entry, logo="https://site.example/logo.png", icon="https://site.example/f.ico")
    document = assert_valid_json_feed(FORMATS["json"].render(feed))
    assert document["home_page_url"] == "https://site.example/"
    assert (document["icon"], document["favicon"]) == (feed.logo, feed.icon)
    item = document["items"][0]
    assert item == {
        "id": "urn:x:1",
        "url": "https://site.example/1",
        "external_url": "https://elsewhere.example/",
        "title": "A & B",
        "content_html": "<p>full &amp; more</p>",
        "summary": "short one",
        "image": "https://cdn.example/t.jpg",
        "date_published": "2026-01-02T03:04:05Z",
        "date_modified": "2026-01-02T03:04:05Z",
        "authors": [{"name": "Ann", "url": "mailto:ann@example.org"},
                    {"name": "Bo", "url": "https://bo.example/"}],
        "tags": ["news"],
        "attachments": [{"url": "https://cdn.example/b.bin",
                         "mime_type": "application/octet-stream", "title": "the file"}],
    }  # fmt: skip


def test_a_served_feed_links_its_other_formats() -> None:
    """With the address it is served at, each format has its ``self`` (JSON: ``feed_url``) and
    the Atom and the RSS link the two others as ``alternate``, after the site's link."""
    feed = _feed(Entry(id="urn:x:1", title="t", content="c", updated=WHEN))
    base = "https://feeds.example/feeds/x"
    atom = FORMATS["atom"].render(feed, self_url=f"{base}.atom").decode()
    rss = FORMATS["rss"].render(feed, self_url=f"{base}.rss").decode()
    document = json.loads(FORMATS["json"].render(feed, self_url=f"{base}.json"))
    assert f'<link href="{base}.atom" rel="self" type="application/atom+xml"/>' in atom
    assert f'<link href="{base}.rss" rel="alternate" type="application/rss+xml"/>' in atom
    assert f'<link href="{base}.json" rel="alternate" type="application/feed+json"/>' in atom
    assert atom.index("https://site.example/") < atom.index(f"{base}.rss")
    assert f'<atom:link href="{base}.rss" rel="self" type="application/rss+xml"/>' in rss
    assert f'<atom:link href="{base}.atom" rel="alternate" type="application/atom+xml"/>' in rss
    assert f'<atom:link href="{base}.json" rel="alternate" type="application/feed+json"/>' in rss
    assert "<link>https://site.example/</link>" in rss
    assert (document["feed_url"], document["home_page_url"]) == (f"{base}.json", feed.link)
    assert parse_document(atom.encode(), "x.atom").link == "https://site.example/"


# ---- JSON Feed as input ------------------------------------------------------------------------


JSON_10 = {
    "version": "https://jsonfeed.org/version/1",
    "title": "Old style",
    "home_page_url": "https://old.example/",
    "feed_url": "https://old.example/feed.json",
    "author": {"name": "Ed", "url": "mailto:ed@old.example"},
    "items": [
        {"id": 7, "url": "https://old.example/7", "title": "Seven",
         "content_text": "line one\nline <two>", "summary": "a <short> one",
         "date_published": "2020-02-03T04:05:06+01:00", "tags": ["x", 3, "y"],
         "image": "https://old.example/7.png",
         "attachments": [{"url": "https://old.example/7.mp3", "mime_type": "audio/mpeg",
                          "size_in_bytes": 123}, {"title": "no url"}]},
        "not an item",
    ],
}  # fmt: skip


def test_json_feed_1_0_is_read() -> None:
    """1.0's ``author``, a numeric id, ``content_text`` escaped as HTML, a plain summary,
    tags (strings only), image, attachments (one without a url left out, and warned about),
    an item that is no object left out and warned about."""
    feed = parse_document(json.dumps(JSON_10).encode(), "old.json")
    assert (feed.title, feed.link) == ("Old style", "https://old.example/")
    assert feed.authors == (Person("Ed", email="ed@old.example"),)
    (entry,) = feed.entries
    assert (entry.id, entry.title, entry.link) == ("7", "Seven", "https://old.example/7")
    assert entry.content == "line one<br>\nline &lt;two&gt;"
    assert entry.summary == "a &lt;short&gt; one"
    assert entry.published == datetime(2020, 2, 3, 3, 5, 6, tzinfo=UTC) == entry.updated
    assert [c.term for c in entry.categories] == ["x", "3", "y"]
    assert entry.media == (Media("thumbnail", "https://old.example/7.png"),)
    assert [k.href for k in entry.links if k.rel == "enclosure"] == ["https://old.example/7.mp3"]
    assert len(feed.warnings) == 2


def test_json_feed_1_1_round_trips_through_atom() -> None:
    """feedfix's own JSON Feed, converted to Atom and back to JSON Feed, is the same."""
    out = run_feedfix("convert", DATA / "atom10.atom.xml", "--format", "json").stdout
    atom = run_feedfix("convert", "-", stdin=out).stdout
    again = run_feedfix("convert", "-", "--format", "json", stdin=atom).stdout
    assert json.loads(again)["items"] == json.loads(out)["items"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "title": ', "not well-formed JSON"),
        (b'{"title": "x", "items": []}', "not a JSON Feed"),
        (b'{"version": 1, "items": []}', "not a JSON Feed"),
        (b'{"a": ' + b"[" * 100000, "not well-formed JSON"),
    ],
)
def test_json_that_is_no_json_feed_is_one_clear_line(
    data: bytes, message: str, tmp_path: Path
) -> None:
    """Broken JSON, JSON that is no JSON Feed, nesting that would recurse: exit 2 and one
    line naming the input and the problem."""
    path = tmp_path / "in.json"
    path.write_bytes(data)
    done = run_feedfix("convert", path)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and message in lines[0], lines
