"""The model step that keeps unsafe URLs out of what feedfix writes around the content
(feedfix/core/safe_urls.py)."""

from __future__ import annotations

from feedfix.core.model import Entry, Feed, Link, Media, Person
from feedfix.core.pipeline import ConvertOptions, convert
from feedfix.core.render import FORMATS
from feedfix.core.safe_urls import refuse_unsafe_urls, safe_id


def test_safe_urls_and_ids_come_back_as_the_same_objects() -> None:
    entry = Entry(id="tag:a.example,2026:1", links=(Link("https://a.example/1"), Link("/2")),
                  media=(Media("thumbnail", "http://a.example/t.png"),),
                  authors=(Person("a", uri="mailto:a@a.example"),))  # fmt: skip
    feed = Feed(id="urn:uuid:1", logo="https://a.example/l.png", entries=(entry,))
    assert refuse_unsafe_urls(feed) == (feed, 0, 0)
    assert refuse_unsafe_urls(feed)[0] is feed


def test_unsafe_urls_are_left_out_and_counted() -> None:
    entry = Entry(id="javascript:alert(1)",
                  links=(Link("java\tscript:x"), Link("https://a.example/1"),
                         Link("file:///etc/passwd", rel="enclosure")),
                  media=(Media("content", " JaVaScRiPt:x"), Media("thumbnail", "data:,x")),
                  authors=(Person("a", uri="vbscript:x"),))  # fmt: skip
    feed = Feed(id="data:,f", links=(Link("javascript:c"),), icon="vbscript:i",
                logo="data:image/png;base64,AAAA", entries=(entry, Entry(id="x")))  # fmt: skip
    safe, refused, entries = refuse_unsafe_urls(feed)
    assert (refused, entries) == (10, 1)
    assert safe.links == () and safe.logo is None and safe.icon is None
    first = safe.entries[0]
    assert first.links == (Link("https://a.example/1"),) and first.media == ()
    assert first.authors == (Person("a"),)
    assert first.id == "urn:feedfix:unsafe:javascript%3Aalert%281%29"
    assert safe.entries[1] is feed.entries[1]


def test_an_unsafe_id_stays_stable_and_distinct() -> None:
    assert safe_id("javascript:a") == safe_id("javascript:a") != safe_id("javascript:b")
    assert safe_id("https://a.example/1") == "https://a.example/1"
    assert safe_id("feed1") == "feed1"  # no scheme: made an id when ids are settled
    assert safe_id(None) is None


def test_no_format_writes_an_unsafe_url() -> None:
    """The step is the pipeline's, before any renderer: Atom, RSS 2.0 and JSON Feed alike."""
    rss = (
        b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t'
        b"</title><link>javascript:c</link><description>d</description><image><url>data:,x"
        b"</url><title>t</title><link>http://a.example/</link></image><item><title>i</title>"
        b"<link>javascript:l</link><guid>javascript:g</guid>"
        b'<enclosure url="vbscript:e" type="audio/mpeg" length="1"/>'
        b'<media:thumbnail url="data:image/svg+xml,x"/><description>safe</description>'
        b"</item></channel></rss>"
    )
    for name in FORMATS:
        result = convert(rss, "in.xml", ConvertOptions(format=name))
        text = result.atom.decode().replace("urn:feedfix:unsafe:", "")
        assert not any(s in text for s in ("javascript:", "vbscript:", "data:")), (name, text)
        assert "safe" in text and result.report.counts["unsafe-urls"].changes == 6
