"""Reading inputs: dates, posts, encodings, damaged feeds and the model they produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from atomcheck import assert_valid_atom, entries
from feedfix.core.errors import DamagedInput, InputError
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.parse.dates import parse_date
from feedfix.core.parse.post import body_html, parse_post
from feedfix.core.pipeline import convert

CST = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wed, 10 Aug 2022 23:54:00 GMT", datetime(2022, 8, 10, 23, 54, tzinfo=UTC)),
        ("10 Aug 2022 23:54:00 +0800", datetime(2022, 8, 10, 15, 54, tzinfo=UTC)),
        ("Wed, 10 Aug 2022 23:54:00 -0000", datetime(2022, 8, 10, 23, 54, tzinfo=UTC)),
        ("2021-08-07T02:22:05+08:00", datetime(2021, 8, 6, 18, 22, 5, tzinfo=UTC)),
        ("2021-08-07T02:22:05Z", datetime(2021, 8, 7, 2, 22, 5, tzinfo=UTC)),
        ("2022年8月10日 08:30", datetime(2022, 8, 10, 8, 30, tzinfo=UTC)),
        ("Wed, 10 Aug 2022 23:54:00 EDT", datetime(2022, 8, 11, 3, 54, tzinfo=UTC)),
    ],
)
def test_dates(text: str, expected: datetime) -> None:
    """RFC 822, ISO 8601, Chinese and named-zone dates all come out in UTC."""
    assert parse_date(text) == expected


def test_bare_date_takes_the_default_zone() -> None:
    """``YYYY-MM-DD HH:MM:SS`` without a zone is read in the zone given (--timezone)."""
    assert parse_date("2021-08-07 02:22:05", CST) == datetime(2021, 8, 6, 18, 22, 5, tzinfo=UTC)
    assert parse_date("2021-08-07 02:22:05") == datetime(2021, 8, 7, 2, 22, 5, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "  ", "not a date", "Mon, 99 Foo 2022", "0000-00-00"])
def test_unreadable_dates_are_none(text: str) -> None:
    """A date that cannot be read is missing, never an exception or the current time."""
    assert parse_date(text) is None


POST = """
---
title: '一篇文章'
categories:
 - 新媒体
 - [ZAKER, channel]
tags: [科技, 硬件]
headimg: 'https://cors.zfour.workers.dev/?http://zkres2.myzaker.com/x_1024.jpg'
author: ZAKER
date: 2021-08-07 02:22:05
---

<div>
<p>正文第一段。</p>
</div>
"""


def test_post_front_matter() -> None:
    """Title, date, nested categories, tags, author and the header image are read."""
    entry = parse_post(POST, "post.txt", CST)
    assert entry.title == "一篇文章"
    assert entry.published == datetime(2021, 8, 6, 18, 22, 5, tzinfo=UTC)
    assert [c.term for c in entry.categories] == ["新媒体", "ZAKER", "channel", "科技", "硬件"]
    assert [c.scheme for c in entry.categories] == [None] * 5  # category@scheme must be an IRI
    assert [p.name for p in entry.authors] == ["ZAKER"]
    assert [m.url for m in entry.media] == [
        "https://cors.zfour.workers.dev/?http://zkres2.myzaker.com/x_1024.jpg"
    ]
    assert entry.content is not None and "<p>正文第一段。</p>" in entry.content
    assert entry.id is not None and entry.id.startswith("urn:feedfix:post:")


def test_post_converts_with_unwrapped_thumbnail() -> None:
    """A post becomes valid Atom whose media:thumbnail points at the origin."""
    out = convert(POST.encode("utf-8")).atom
    root = assert_valid_atom(out)
    assert b"cors.zfour.workers.dev" not in out
    assert b'media:thumbnail url="http://zkres2.myzaker.com/x_1024.jpg"' in out
    assert entries(root)[0].title == "一篇文章"


def test_post_id_is_stable_and_content_dependent() -> None:
    """The id of a post without permalink is a hash: same post, same id; other post, other id."""
    first = parse_post(POST, "a.md", UTC).id
    assert parse_post(POST, "b.md", UTC).id == first
    assert parse_post(POST.replace("一篇文章", "另一篇"), "a.md", UTC).id != first


def test_markdown_body_is_rendered() -> None:
    """A Markdown body becomes HTML; an HTML body is kept as it is."""
    assert body_html("Hello *world*\n\n- a\n- b") == (
        "<p>Hello <em>world</em></p>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>"
    )
    assert body_html("<div><p>x</p></div>") == "<div><p>x</p></div>"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("---\ntitle: [unclosed\n---\nbody", "not valid YAML"),
        ("---\n- just\n- a list\n---\nbody", "not a mapping"),
        ("---\ntitle: x\ndate: someday\n---\nbody", "not a date"),
    ],
)
def test_bad_front_matter(text: str, problem: str) -> None:
    """Broken front matter is an InputError that says what is wrong."""
    with pytest.raises(InputError, match=problem):
        parse_post(text, "bad.md", UTC)


RSS = """<?xml version="1.0" encoding="{enc}"?>
<rss version="2.0"><channel><title>频道</title><link>http://a.example/</link>
<item><title>标题&nbsp;一</title><link>http://a.example/1</link>
<description>&lt;p&gt;正文&lt;/p&gt;</description></item></channel></rss>"""


def test_html_entities_in_xml_are_repaired_with_a_warning() -> None:
    """``&nbsp;`` is not XML; the feed is still read, and the repair is reported (lossless,
    so --strict accepts it too)."""
    feed = parse_document(RSS.format(enc="UTF-8").encode(), "x")
    assert feed.entries[0].title == "标题\xa0一"
    assert any("entities" in w for w in feed.warnings)
    strict = parse_document(RSS.format(enc="UTF-8").encode(), "x", ParseOptions(strict=True))
    assert strict.entries[0].title == "标题\xa0一"


def test_wrong_declared_encoding_is_detected() -> None:
    """GBK bytes declared as UTF-8 are read correctly, with a warning naming both."""
    text = RSS.format(enc="UTF-8").replace("&nbsp;", " ") + "<!--" + "中文内容" * 50 + "-->"
    feed = parse_document(text.encode("gbk"), "x")
    assert feed.title == "频道"
    assert feed.entries[0].content == "<p>正文</p>"
    assert any("'utf-8'" in w for w in feed.warnings)


def test_gb2312_declaration_reads_gb18030_characters() -> None:
    """A feed declared GB2312 may hold characters only GB18030 has (a common mislabel)."""
    text = RSS.format(enc="GB2312").replace("&nbsp;", " ").replace("标题", "𠀀镕")
    feed = parse_document(text.encode("gb18030"), "x")
    assert feed.entries[0].title == "𠀀镕 一"
    assert feed.warnings == ()


def test_truncated_feed_keeps_complete_items() -> None:
    """A feed cut off mid-item yields the items before the cut, with a warning."""
    items = "".join(
        f"<item><title>t{i}</title><link>http://a.example/{i}</link></item>" for i in range(3)
    )
    data = f'<rss version="2.0"><channel><title>T</title>{items}<item><title>cut'.encode()
    feed = parse_document(data, "x")
    assert [e.title for e in feed.entries][:3] == ["t0", "t1", "t2"]
    assert feed.warnings and "not well-formed" in feed.warnings[0]
    with pytest.raises(DamagedInput):
        parse_document(data, "x", ParseOptions(strict=True))


def test_xml_base_and_item_link_resolve_relative_urls() -> None:
    """Relative URLs resolve against xml:base, else the item link, else the feed link."""
    data = b"""<rss version="2.0"><channel><title>T</title><link>http://site.example/blog/</link>
    <item><title>a</title><link>http://site.example/blog/2022/post.html</link>
    <description>&lt;img src="img/a.jpg"&gt;&lt;a href="/about"&gt;x&lt;/a&gt;</description></item>
    <item xml:base="http://cdn.example/base/"><title>b</title>
    <description>&lt;img src="b.jpg"&gt;</description></item>
    <item><title>c</title><description>&lt;img src="c.jpg"&gt;</description></item>
    </channel></rss>"""
    root = assert_valid_atom(convert(data).atom)
    srcs = [e.img_srcs for e in entries(root)]
    assert srcs == [
        ["http://site.example/blog/2022/img/a.jpg"],
        ["http://cdn.example/base/b.jpg"],
        ["http://site.example/blog/c.jpg"],
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (b"\x00\x01\x02binary", "binary"),
        (b"<!DOCTYPE html><html><body>Hi</body></html>", "HTML page"),
        (
            b'<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml">',
            "/feed.xml",
        ),
        (b"<?xml version='1.0'?><note><to>x</to></note>", "<note>"),
        (b"just some words", "neither XML"),
    ],
)
def test_not_a_feed(data: bytes, problem: str) -> None:
    """Inputs that are not feeds are refused with a message that says what they are."""
    with pytest.raises(InputError, match=problem):
        parse_document(data, "x")


def test_atom_xhtml_content_and_html_title() -> None:
    """Atom xhtml content becomes HTML; an html-typed title becomes plain text."""
    data = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>F</title><id>urn:f</id>
    <updated>2022-01-01T00:00:00Z</updated>
    <entry><id>urn:e</id><title type="html">A &lt;b&gt;bold&lt;/b&gt; move</title>
    <updated>2022-01-02T00:00:00Z</updated><author><name>N</name></author>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hi <b>there</b></p></div>
    </content></entry></feed>"""
    feed = parse_document(data, "x")
    assert feed.entries[0].title == "A bold move"
    assert feed.entries[0].content == "<p>Hi <b>there</b></p>"


def test_jekyll_date_without_time() -> None:
    """`date: 2024-01-01` (YAML reads a date, not a datetime) is midnight in the given zone."""
    entry = parse_post("---\ntitle: t\ndate: 2024-01-01\n---\nbody\n", "p.md", CST)
    assert entry.published == datetime(2023, 12, 31, 16, 0, tzinfo=UTC)
