"""Model-level golden pairs: a small hand-written input and the whole ``Feed`` it must parse to.

The byte-level golden files (``test_golden.py``) check what is rendered; these check what the
parsers hand to the rules, field by field, compared with ``==`` so that a field dropped,
moved or mis-dated anywhere in the model shows up as a precise diff.
"""

from __future__ import annotations

from datetime import UTC, datetime

from feedfix.core.model import Category, Entry, Feed, Link, Media, Person
from feedfix.core.parse import parse_document

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:media="http://search.yahoo.com/mrss/">
<channel>
<title>ZAKER tech</title><link>http://www.myzaker.com/channel/13</link>
<description>ZAKER channel 13</description><language>zh-cn</language><ttl>10</ttl>
<item>
<title>A phone &amp; a tablet</title>
<link>http://www.myzaker.com/article/1</link>
<guid>http://www.myzaker.com/article/1</guid>
<dc:creator>Li Lei</dc:creator>
<category domain="http://www.myzaker.com/tags">tech</category>
<pubDate>Tue, 01 Dec 2026 08:30:00 +0800</pubDate>
<description><![CDATA[<p>Hello <img src="http://zkres1.myzaker.com/a.jpg"></p>]]></description>
<enclosure url="http://zkres1.myzaker.com/a.mp3" type="audio/mpeg" length="1234"/>
<media:thumbnail url="http://zkres1.myzaker.com/t.jpg" width="120" height="90"/>
</item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
<title type="text">Blog</title><id>tag:blog.example,2026:feed</id>
<link href="https://blog.example/"/><link rel="self" href="https://blog.example/atom.xml"/>
<updated>2026-11-30T10:00:00Z</updated>
<author><name>Han Meimei</name><email>han@blog.example</email></author>
<entry xml:lang="zh">
<title>Entry one</title><id>tag:blog.example,2026:1</id>
<link href="https://blog.example/1.html"/>
<published>2026-11-29T09:00:00+08:00</published><updated>2026-11-30T10:00:00Z</updated>
<summary>Short</summary>
<content type="html">&lt;p&gt;Long &lt;b&gt;text&lt;/b&gt;&lt;/p&gt;</content>
<category term="notes" label="Notes"/>
</entry></feed>"""


def test_rss2_item_parses_to_the_whole_model() -> None:
    """RSS 2.0: the description is the content, the pubDate (+08:00) becomes UTC and dates the
    entry both ways, the enclosure is a link, media:thumbnail and the category domain stay."""
    when = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    expected = Feed(
        title="ZAKER tech",
        links=(Link("http://www.myzaker.com/channel/13"),),
        subtitle="ZAKER channel 13",
        lang="zh-cn",
        ttl_minutes=10,
        entries=(
            Entry(
                id="http://www.myzaker.com/article/1",
                title="A phone & a tablet",
                links=(
                    Link("http://www.myzaker.com/article/1"),
                    Link("http://zkres1.myzaker.com/a.mp3", "enclosure", "audio/mpeg", 1234),
                ),
                content='<p>Hello <img src="http://zkres1.myzaker.com/a.jpg"></p>',
                authors=(Person("Li Lei"),),
                categories=(Category("tech", "http://www.myzaker.com/tags"),),
                published=when,
                updated=when,
                media=(Media("thumbnail", "http://zkres1.myzaker.com/t.jpg", None, None, 120, 90),),
            ),
        ),
    )
    assert parse_document(RSS, "zaker.rss") == expected


def test_atom_entry_parses_to_the_whole_model() -> None:
    """Atom 1.0: escaped HTML content unescaped once, summary apart, offsets to UTC, the
    entry's own xml:lang over the feed's, the self link kept with its rel."""
    expected = Feed(
        title="Blog",
        id="tag:blog.example,2026:feed",
        links=(
            Link("https://blog.example/"),
            Link("https://blog.example/atom.xml", "self"),
        ),
        updated=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
        authors=(Person("Han Meimei", "han@blog.example"),),
        lang="en",
        entries=(
            Entry(
                id="tag:blog.example,2026:1",
                title="Entry one",
                links=(Link("https://blog.example/1.html"),),
                content="<p>Long <b>text</b></p>",
                summary="Short",
                categories=(Category("notes", label="Notes"),),
                published=datetime(2026, 11, 29, 1, 0, tzinfo=UTC),
                updated=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
                lang="zh",
            ),
        ),
    )
    assert parse_document(ATOM, "blog.atom") == expected
