"""Each cleaning rule on its own: one behaviour per case, HTML before and after.

Expected HTML is written by hand; both sides go through the same parser so that only the
meaning is compared, not attribute order or quoting.
"""

from __future__ import annotations

import pytest
from lxml import etree
from rulecheck import apply, normalized

from feedfix.core.errors import ConfigError
from feedfix.core.html import XMLText, parse_fragment, serialize_fragment
from feedfix.core.model import Entry, Feed, Link, Media
from feedfix.core.pipeline import Report, clean_html, convert
from feedfix.core.rules import build_ruleset
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DropEmptyJunk, Remove
from feedfix.core.rules.unwrap_proxies import UnwrapProxies

CORS = "https://cors.zfour.workers.dev/?"
ORIGIN = "http://zkres1.myzaker.com/202208/a_1024.jpg"


UNWRAP_CASES = [
    ("img src", f'<img src="{CORS}{ORIGIN}">', f'<img src="{ORIGIN}">', 1),
    (
        "inner query string kept whole",
        f'<img src="{CORS}http://a.example/x.jpg?w=1&amp;h=2#frag">',
        '<img src="http://a.example/x.jpg?w=1&amp;h=2#frag">',
        1,
    ),
    (
        "srcset keeps descriptors",
        f'<img srcset="{CORS}http://a.example/1.jpg 1x, {CORS}http://a.example/2.jpg 2x">',
        '<img srcset="http://a.example/1.jpg 1x, http://a.example/2.jpg 2x">',
        1,
    ),
    (
        "picture source",
        f'<picture><source srcset="{CORS}http://a.example/p.webp"><img src="x.jpg"></picture>',
        '<picture><source srcset="http://a.example/p.webp"><img src="x.jpg"></picture>',
        1,
    ),
    (
        "video src and poster",
        f'<video src="{CORS}http://a.example/v.mp4" poster="{CORS}http://a.example/p.jpg"></video>',
        '<video src="http://a.example/v.mp4" poster="http://a.example/p.jpg"></video>',
        2,
    ),
    (
        "a href",
        f'<a href="{CORS}http://a.example/page">x</a>',
        '<a href="http://a.example/page">x</a>',
        1,
    ),
    (
        "data attribute",
        f'<img data-original="{CORS}{ORIGIN}" src="{ORIGIN}">',
        f'<img data-original="{ORIGIN}" src="{ORIGIN}">',
        1,
    ),
    (
        "weserv query decoded once",
        '<img src="https://images.weserv.nl/?url=http%3A%2F%2Fa.example%2Fb%2520c.jpg&amp;w=300">',
        '<img src="http://a.example/b%20c.jpg">',
        1,
    ),
    (
        "wp.com host and path, ssl=1 means https",
        '<img src="https://i2.wp.com/a.example/wp/img.png?ssl=1&amp;resize=300">',
        '<img src="https://a.example/wp/img.png">',
        1,
    ),
    (
        "nested wrappers unwrap fully",
        f'<img src="{CORS}https://wsrv.nl/?url=https%3A%2F%2Fi0.wp.com%2Fa.example%2Fn.png">',
        '<img src="http://a.example/n.png">',
        1,
    ),
    (
        "protocol-relative wrapper",
        '<img src="//cors.zfour.workers.dev/?http://a.example/p.jpg">',
        '<img src="http://a.example/p.jpg">',
        1,
    ),
    (
        "URL written out as text",
        f"<p>see {CORS}http://a.example/t.jpg</p>",
        "<p>see http://a.example/t.jpg</p>",
        1,
    ),
    (
        "URLs in the fragment's leading text, in a tail and in nested text",
        f"{CORS}http://a.example/1.jpg <b>x</b> then {CORS}http://a.example/2.jpg"
        f"<p><i>{CORS}http://a.example/3.jpg</i></p>",
        "http://a.example/1.jpg <b>x</b> then http://a.example/2.jpg"
        "<p><i>http://a.example/3.jpg</i></p>",
        3,
    ),
    ("unwrapped URL untouched", f'<img src="{ORIGIN}">', f'<img src="{ORIGIN}">', 0),
    (
        "a wrapper that would yield javascript: is left alone",
        f'<a href="{CORS}javascript:alert(1)">x</a>',
        f'<a href="{CORS}javascript:alert(1)">x</a>',
        0,
    ),
]


@pytest.mark.parametrize(
    ("case", "before", "after", "count"), UNWRAP_CASES, ids=[c[0] for c in UNWRAP_CASES]
)
def test_unwrap_proxies_html(case: str, before: str, after: str, count: int) -> None:
    """unwrap-proxies takes every wrapper off URLs in HTML and counts each URL it changed."""
    result, changed = apply(UnwrapProxies(), before)
    assert result == normalized(after), case
    assert changed == count, case


def test_unwrap_proxies_entry_fields() -> None:
    """Enclosures, links and media:* lose their wrappers; other fields stay."""
    entry = Entry(
        id="x",
        links=(
            Link(href="https://a.example/post"),
            Link(
                href=f"{CORS}http://a.example/e.mp3", rel="enclosure", type="audio/mpeg", length=9
            ),
        ),
        media=(Media(kind="thumbnail", url=f"{CORS}http://a.example/t.jpg"),),
    )
    cleaned, changed = UnwrapProxies().entry(entry)
    assert changed == 2
    assert cleaned.links[1] == Link(
        href="http://a.example/e.mp3", rel="enclosure", type="audio/mpeg", length=9
    )
    assert cleaned.media[0].url == "http://a.example/t.jpg"
    assert cleaned.links[0] == entry.links[0]


def test_unwrap_proxies_feed_logo_and_icon() -> None:
    """The feed's logo and icon are unwrapped too."""
    feed = Feed(logo=f"{CORS}http://a.example/logo.png", icon="https://a.example/i.ico")
    cleaned, changed = UnwrapProxies().feed(feed)
    assert (cleaned.logo, cleaned.icon, changed) == ("http://a.example/logo.png", feed.icon, 1)


def test_unwrap_proxies_configured_wrapper() -> None:
    """A wrapper added in config (RSSHub template form) is recognised; defaults still apply."""
    rule = UnwrapProxies(extra_wrappers=["https://img.proxy.example/fetch?src=${href_ue}"])
    before = (
        '<img src="https://img.proxy.example/fetch?src=http%3A%2F%2Fa.example%2F1.jpg">'
        f'<img src="{CORS}http://a.example/2.jpg">'
    )
    result, changed = apply(rule, before)
    assert result == normalized(
        '<img src="http://a.example/1.jpg"><img src="http://a.example/2.jpg">'
    )
    assert changed == 2


def test_unwrap_proxies_rejects_unknown_template() -> None:
    """A wrapper template in none of the three forms is a config error naming it."""
    with pytest.raises(ConfigError, match="not a known form"):
        build_ruleset({"unwrap-proxies": {"wrappers": ["https://x.example/${whatever}"]}})


LAZY_CASES = [
    (
        "ZAKER: wrapped src, data-original, data sizes, lazy classes",
        f'<img class="lazy opacity_0 " data-original="{ORIGIN}" data-height="709" '
        f'data-width="1260" src="{CORS}{ORIGIN}" referrerpolicy="no-referrer">',
        f'<img src="{ORIGIN}" width="1260" height="709" referrerpolicy="no-referrer">',
    ),
    (
        "missing src",
        '<img data-src="http://a.example/1.jpg">',
        '<img src="http://a.example/1.jpg">',
    ),
    (
        "data: placeholder",
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-original="http://a.example/2.jpg">',
        '<img src="http://a.example/2.jpg">',
    ),
    (
        "about:blank placeholder",
        '<img src="about:blank" data-src="http://a.example/3.jpg">',
        '<img src="http://a.example/3.jpg">',
    ),
    (
        "1x1 gif placeholder",
        '<img src="/static/blank.gif" data-lazy-src="http://a.example/4.jpg">',
        '<img src="http://a.example/4.jpg">',
    ),
    (
        "other classes stay",
        '<img class="lazy wide" src="http://a.example/5.jpg">',
        '<img class="wide" src="http://a.example/5.jpg">',
    ),
    (
        "a real, different src is not replaced",
        '<img src="http://a.example/small.jpg" data-original="http://a.example/large.jpg">',
        '<img src="http://a.example/small.jpg" data-original="http://a.example/large.jpg">',
    ),
    (
        "data-srcset becomes srcset",
        '<img src="http://a.example/6.jpg" data-srcset="http://a.example/6@2x.jpg 2x">',
        '<img src="http://a.example/6.jpg" srcset="http://a.example/6@2x.jpg 2x">',
    ),
]


@pytest.mark.parametrize(("case", "before", "after"), LAZY_CASES, ids=[c[0] for c in LAZY_CASES])
def test_fix_lazy_images(case: str, before: str, after: str) -> None:
    """fix-lazy-images gives each image its real src, size and visible classes."""
    result, _ = apply(FixLazyImages(), before)
    assert result == normalized(after), case


def test_fix_lazy_images_counts_images_not_attributes() -> None:
    """One ZAKER image is one change, however many of its attributes moved."""
    _, changed = apply(FixLazyImages(), LAZY_CASES[0][1] * 3)
    assert changed == 3


JUNK_CASES = [
    (
        "ZAKER trailers",
        '<p>text</p><div id="recommend_bottom"></div><div id="article_bottom"></div>',
        "<p>text</p>",
    ),
    (
        "whitespace and nbsp count as empty",
        '<p>t</p><div id="article_bottom"> &nbsp;\n </div>',
        "<p>t</p>",
    ),
    (
        "empty once its empty child is gone",
        '<p>t</p><div id="article_bottom"><div id="recommend_bottom"><p></p></div></div>',
        "<p>t</p>",
    ),
    (
        "a trailer with text stays",
        '<p>t</p><div id="article_bottom">Related: <a href="/x">more</a></div>',
        '<p>t</p><div id="article_bottom">Related: <a href="/x">more</a></div>',
    ),
    (
        "a trailer with an image stays",
        '<div id="recommend_bottom"><img src="http://a.example/x.jpg"></div>',
        '<div id="recommend_bottom"><img src="http://a.example/x.jpg"></div>',
    ),
    (
        "other empty divs are not junk",
        '<div class="img_box"></div><p>t</p>',
        '<div class="img_box"></div><p>t</p>',
    ),
]


@pytest.mark.parametrize(("case", "before", "after"), JUNK_CASES, ids=[c[0] for c in JUNK_CASES])
def test_drop_empty_junk(case: str, before: str, after: str) -> None:
    """drop-empty-junk removes matched elements only when they hold no text and no media."""
    result, _ = apply(DropEmptyJunk(), before)
    assert result == normalized(after), case


def test_drop_empty_junk_configured_selectors() -> None:
    """Configured selectors replace the defaults."""
    rule = DropEmptyJunk(selectors=[".ad-slot"])
    result, changed = apply(rule, '<div class="ad-slot"></div><div id="article_bottom"></div>')
    assert result == normalized('<div id="article_bottom"></div>')
    assert changed == 1


def test_bad_selector_is_a_config_error() -> None:
    """A CSS selector that does not parse is reported with the selector."""
    with pytest.raises(ConfigError, match="bad CSS selector"):
        build_ruleset({"drop-empty-junk": {"selectors": ["div[["]}})


def test_remove_takes_content_with_it() -> None:
    """remove drops matched elements even when they hold text."""
    result, changed = apply(
        Remove(selectors=[".share"]), '<p>keep</p><div class="share">Share <b>me</b></div>'
    )
    assert (result, changed) == (normalized("<p>keep</p>"), 1)


def test_html_rules_leave_unrelated_markup_alone() -> None:
    """A clean article passes through every default rule unchanged."""
    article = (
        '<p>Hello <b>world</b> &amp; <a href="https://a.example/x">link</a></p>'
        '<figure><img src="https://a.example/y.jpg" alt="y"><figcaption>cap</figcaption></figure>'
        "<blockquote>q</blockquote><pre>code &lt;tag&gt;</pre>"
    )
    container = parse_fragment(article)
    total = sum(rule.html(container) for rule in build_ruleset().html_rules)
    assert total == 0
    assert normalized(serialize_fragment(container)) == normalized(article)
    assert isinstance(container, etree._Element)


def test_only_html_cleaned_without_character_references_skips_the_xml_check() -> None:
    """libxml2 keeps a control character a reference (&#1;) brings in, so only HTML cleaned
    from a source without one is marked XML-clean; the Atom never carries one either way."""
    rules = build_ruleset()
    marked = clean_html("<p>plain &amp; text</p>", rules, None, Report())
    referenced = clean_html("<p>a&#1;b&#xFFFE;c</p>", rules, None, Report())
    assert isinstance(marked, XMLText)
    assert not isinstance(referenced, XMLText)
    feed = (
        '<rss version="2.0"><channel><title>t</title><item><title>x</title>'
        "<link>http://a.example/1</link><description>&lt;p&gt;a&amp;#1;b&amp;#xFFFE;c&lt;/p&gt;"
        "</description></item></channel></rss>"
    )
    atom = convert(feed.encode()).atom
    assert b"\x01" not in atom and "\ufffe".encode() not in atom and b"&lt;p&gt;abc&lt;" in atom
