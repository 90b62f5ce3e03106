"""Each cleaning rule on its own: one behaviour per case, HTML before and after.

Expected HTML is written by hand; both sides go through the same parser so that only the
meaning is compared, not attribute order or quoting.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from feedfix.core.errors import ConfigError
from feedfix.core.html import parse_fragment, serialize_fragment
from feedfix.core.model import Category, Entry, Feed, Link, Media
from feedfix.core.rules import RULES, build_ruleset
from feedfix.core.rules.base import Rule
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DropEmptyJunk, Remove
from feedfix.core.rules.sanitize import Sanitize, is_allowed_url, is_dangerous_style
from feedfix.core.rules.select import Filter, Limit
from feedfix.core.rules.unwrap_proxies import UnwrapProxies

CORS = "https://cors.zfour.workers.dev/?"
ORIGIN = "http://zkres1.myzaker.com/202208/a_1024.jpg"


def normalized(markup: str) -> str:
    """Markup as the parser reads it, attributes sorted, so equal meaning compares equal."""
    container = parse_fragment(markup)
    for el in container.iterdescendants(etree.Element):
        attributes = sorted(el.attrib.items())
        el.attrib.clear()
        for name, value in attributes:
            el.set(name, value)
    return serialize_fragment(container)


def apply(rule: Rule, markup: str) -> tuple[str, int]:
    """Run one rule's HTML hook over a fragment; the result comes back normalized."""
    container = parse_fragment(markup)
    changed = rule.html(container)
    return normalized(serialize_fragment(container)), changed


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


SANITIZE_CASES = [
    ("script", "<p>a</p><script>alert(1)</script><p>b</p>", "<p>a</p><p>b</p>"),
    ("style element", "<style>p{}</style><p>b</p>", "<p>b</p>"),
    (
        "bare onclick",
        '<div class="img_box" onclick><p>t</p></div>',
        '<div class="img_box"><p>t</p></div>',
    ),
    ("mixed-case handler", '<p OnMouseOver="x()">t</p>', "<p>t</p>"),
    ("javascript: href", '<a href="javascript:alert(1)">t</a>', "<a>t</a>"),
    ("entity-encoded javascript:", '<a href="&#106;avascript:alert(1)">t</a>', "<a>t</a>"),
    ("tab inside javascript:", '<a href="java&#9;script:alert(1)">t</a>', "<a>t</a>"),
    ("leading whitespace", '<a href="  \njavascript:alert(1)">t</a>', "<a>t</a>"),
    ("vbscript:", '<a href="VBScript:msgbox(1)">t</a>', "<a>t</a>"),
    ("data:text/html", '<a href="data:text/html;base64,PHNjcmlwdD4=">t</a>', "<a>t</a>"),
    ("data image goes", '<img src="data:image/png;base64,iVBORw0KGgo=">', "<img>"),
    ("form unwrapped, text kept", '<form action="/x">Name: <input name="n"></form>', "Name: "),
    ("object keeps fallback text", '<object data="x.swf">fallback</object>', "fallback"),
    ("embed", '<p>a</p><embed src="x.swf"><p>b</p>', "<p>a</p><p>b</p>"),
    ("unknown iframe", '<iframe src="https://evil.example/x"></iframe><p>b</p>', "<p>b</p>"),
    (
        "allowed iframe is sandboxed",
        '<iframe src="https://player.bilibili.com/player.html?bvid=1"></iframe>',
        '<iframe src="https://player.bilibili.com/player.html?bvid=1" '
        'sandbox="allow-scripts allow-same-origin allow-popups allow-presentation"></iframe>',
    ),
    (
        "srcdoc",
        '<iframe src="https://www.youtube.com/embed/x" srcdoc="<script>"></iframe>',
        '<iframe src="https://www.youtube.com/embed/x" '
        'sandbox="allow-scripts allow-same-origin allow-popups allow-presentation"></iframe>',
    ),
    ("style expression", '<p style="width: expression(alert(1))">t</p>', "<p>t</p>"),
    ("harmless style stays", '<p style="color: red">t</p>', '<p style="color: red">t</p>'),
    (
        "meta refresh",
        '<meta http-equiv="refresh" content="0;url=javascript:x"><p>t</p>',
        "<p>t</p>",
    ),
    ("base href", '<base href="https://evil.example/"><p>t</p>', "<p>t</p>"),
    (
        "svg animate to javascript",
        '<p>a</p><svg><animate attributeName="href" values="javascript:alert(1)"/></svg>',
        "<p>a</p>",
    ),
    (
        "referrerpolicy stays",
        '<img src="http://a.example/x.jpg" referrerpolicy="no-referrer">',
        '<img src="http://a.example/x.jpg" referrerpolicy="no-referrer">',
    ),
]


@pytest.mark.parametrize(
    ("case", "before", "after"), SANITIZE_CASES, ids=[c[0] for c in SANITIZE_CASES]
)
def test_sanitize(case: str, before: str, after: str) -> None:
    """sanitize's tree pass removes active content and keeps everything harmless."""
    result, _ = apply(Sanitize(), before)
    assert result == normalized(after), case


@pytest.mark.parametrize(
    "url",
    [
        "javascript:x",
        " JAVASCRIPT:x",
        "jav\tascript:x",
        "&#x6A;avascript:x",
        "&amp;#106;avascript:x",
        "vbscript:x",
        "data:text/html,x",
        "DATA:image/svg+xml,<svg onload=x>",
        "data:image/png;base64,AA==",
        "java\u200bscript:x",
        "ftp://a.example/x",
        "file:///etc/passwd",
    ],
)
def test_urls_outside_the_schemes(url: str) -> None:
    """Every scheme but http, https, mailto and tel is refused, in every disguise."""
    assert not is_allowed_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://a.example/javascript:x",
        "HTTPS://a.example/x",
        "/path?x=javascript:y",
        "x.jpg#a:b",
        "mailto:a@b.c",
        "tel:+86-10-1234",
    ],
)
def test_allowed_urls(url: str) -> None:
    """Ordinary URLs, relative ones and those that merely contain the words are kept."""
    assert is_allowed_url(url)


def test_dangerous_style_escapes() -> None:
    """CSS escapes and comments cannot hide expression() or javascript:."""
    assert is_dangerous_style("width: e\\78 pression(alert(1))")
    assert is_dangerous_style("background: url(java/**/script:alert(1))")
    assert not is_dangerous_style("margin: 0 auto; color: #333")


def _entry(title: str, day: int, content: str = "", categories: tuple[str, ...] = ()) -> Entry:
    return Entry(
        id=f"urn:x:{title}",
        title=title,
        content=content,
        categories=tuple(Category(term=c) for c in categories),
        published=datetime(2022, 1, day, tzinfo=UTC),
    )


def test_filter_drop_and_keep() -> None:
    """filter drops matches, or keeps only matches, over title/content/category."""
    feed = Feed(
        entries=(
            _entry("新品发布", 1),
            _entry("广告：优惠", 2),
            _entry("plain", 3, content="<p>内含广告</p>"),
            _entry("tagged", 4, categories=("广告",)),
        )
    )
    kept, dropped = Filter(drop="广告").feed(feed)
    assert [e.title for e in kept.entries] == ["新品发布"]
    assert dropped == 3
    kept, _ = Filter(keep="新品|plain").feed(feed)
    assert [e.title for e in kept.entries] == ["新品发布", "plain"]
    kept, _ = Filter(drop="广告", fields=["title"]).feed(feed)
    assert [e.title for e in kept.entries] == ["新品发布", "plain", "tagged"]


def test_filter_bad_regex_is_a_config_error() -> None:
    """An invalid regular expression names the option."""
    with pytest.raises(ConfigError, match="'drop'"):
        build_ruleset({"filter": {"drop": "(unclosed"}})


def test_limit_keeps_newest_in_original_order() -> None:
    """limit keeps the N newest entries; their order in the feed does not change."""
    feed = Feed(entries=(_entry("b", 2), _entry("d", 4), _entry("a", 1), _entry("c", 3)))
    kept, dropped = Limit(count=2).feed(feed)
    assert [e.title for e in kept.entries] == ["d", "c"]
    assert dropped == 2


def test_default_ruleset_and_disabling() -> None:
    """The first four rules are on by default; --no-rule and config switch them off."""
    assert build_ruleset().names == (
        "unwrap-proxies",
        "fix-lazy-images",
        "sanitize",
        "drop-empty-junk",
    )
    assert "sanitize" not in build_ruleset(disabled=["sanitize"]).names
    assert "limit" in build_ruleset({"limit": {"count": 3}}).names
    assert "sanitize" not in build_ruleset({"sanitize": {"enabled": False}}).names


def test_unknown_rule_and_option_are_errors() -> None:
    """A misspelt rule or option is an error naming it, never silently ignored."""
    with pytest.raises(ConfigError, match="unwrap-proxy"):
        build_ruleset(disabled=["unwrap-proxy"])
    with pytest.raises(ConfigError, match="selector"):
        build_ruleset({"drop-empty-junk": {"selector": ["#x"]}})


def test_every_rule_is_documented() -> None:
    """Each rule has a name, help text and documented options (its docstring is --help)."""
    for name, cls in RULES.items():
        assert cls.name == name
        assert len(cls.help().splitlines()[0]) > 20, name
        for option, text in cls.options.items():
            assert text, f"{name}.{option} has no help"


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
