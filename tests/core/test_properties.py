"""Properties of the whole pure pipeline, over feeds that hypothesis writes.

For any feed built from ZAKER-like pieces (wrapped and lazy images, empty trailers, handlers,
scripts, arbitrary text): output is schema-valid, the same every time, a fixed point of
feedfix itself, free of wrapper hosts, and keeps every piece of article text.
"""

from __future__ import annotations

import contextlib
import html
from dataclasses import dataclass

import lxml.html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atomcheck import WRAPPER_RE, assert_valid_atom, entries, normalise_space, visible_text
from feedfix.core.errors import FeedfixError
from feedfix.core.parse import parse_document
from feedfix.core.pipeline import convert

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CJK = "".join(chr(c) for c in range(0x4E00, 0x4E40))
WORD_CHARS = CJK + "abcdefghijklmnopqrstuvwxyzABC0123456789"
words = st.text(alphabet=WORD_CHARS, min_size=1, max_size=12)
sentence = st.lists(words, min_size=1, max_size=6).map(" ".join)
hosts = st.sampled_from(["zkres1.myzaker.com", "img.example.org", "cdn.example.net"])
paths = st.lists(
    st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), min_size=1, max_size=3
)
WRAPPERS = [
    lambda u: "https://cors.zfour.workers.dev/?" + u,
    lambda u: "//cors.zfour.workers.dev/?" + u,
    lambda u: "https://images.weserv.nl/?url=" + u.replace(":", "%3A").replace("/", "%2F"),
    lambda u: "https://i1.wp.com/" + u.split("://", 1)[1],
    lambda u: (
        "https://cors.zfour.workers.dev/?https://wsrv.nl/?url="
        + u.replace(":", "%3A").replace("/", "%2F")
    ),
]


@dataclass(frozen=True)
class Block:
    """A piece of an article: its HTML, the article text it carries, and its image origin."""

    markup: str
    text: str = ""
    image: str | None = None


@st.composite
def image_block(draw: st.DrawFn) -> Block:
    origin = f"http://{draw(hosts)}/{'/'.join(draw(paths))}.jpg"
    wrap = draw(st.sampled_from(WRAPPERS))
    lazy = draw(st.booleans())
    src = html.escape(wrap(origin))
    if lazy:
        markup = (
            '<div class="img_box" onclick><div class="content_img_div">'
            f'<img class="lazy opacity_0 " data-original="{origin}" data-height="10" '
            f'data-width="20" src="{src}" referrerpolicy="no-referrer"></div></div>'
        )
    else:
        markup = f'<p><img src="{src}"></p>'
    return Block(markup, image=origin)


text_block = sentence.map(lambda s: Block(f"<p>{html.escape(s)}</p>", text=s))
handler_block = sentence.map(lambda s: Block(f'<div onclick="go()">{html.escape(s)}</div>', text=s))
script_block = sentence.map(lambda s: Block(f"<script>var x = '{html.escape(s)}';</script>"))
trailer_block = st.just(
    Block('<p></p><div id="recommend_bottom"></div><div id="article_bottom"></div>')
)
blocks = st.lists(
    st.one_of(text_block, image_block(), handler_block, script_block, trailer_block), max_size=8
)


@st.composite
def feeds(draw: st.DrawFn) -> tuple[bytes, list[list[Block]]]:
    items, articles = [], []
    for index in range(draw(st.integers(0, 4))):
        body = draw(blocks)
        articles.append(body)
        title = html.escape(draw(sentence))
        guid = f"<guid>http://www.myzaker.com/article/{index}</guid>" if draw(st.booleans()) else ""
        day = draw(st.integers(1, 28))
        date = (
            f"<pubDate>Mon, {day:02d} Aug 2022 10:00:00 GMT</pubDate>"
            if draw(st.booleans())
            else ""
        )
        description = html.escape("".join(b.markup for b in body))
        items.append(
            f"<item><title>{title}</title>{guid}{date}"
            f"<link>http://www.myzaker.com/a/{index}</link>"
            f"<description>{description}</description></item>"
        )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{html.escape(draw(sentence))}</title><link>http://www.myzaker.com/channel/13</link>"
        f"{''.join(items)}</channel></rss>"
    )
    return xml.encode("utf-8"), articles


@SETTINGS
@given(feeds())
def test_pipeline_properties(case: tuple[bytes, list[list[Block]]]) -> None:
    """Valid, deterministic, idempotent, no wrappers left, no article text or image lost."""
    data, articles = case
    first = convert(data).atom
    root = assert_valid_atom(first)
    assert convert(data).atom == first, "the same input gave different output"
    assert convert(first).atom == first, "converting the output again changed it"
    assert WRAPPER_RE.search(first.decode("utf-8")) is None
    out = entries(root)
    assert len(out) == len(articles)
    for entry, body in zip(out, articles, strict=True):
        text = normalise_space(visible_text(entry.content_html))
        for block in body:
            if block.text:
                assert normalise_space(block.text) in text, "article text lost"
        expected_images = [b.image for b in body if b.image]
        assert entry.img_srcs == expected_images


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_feedfix_errors(data: bytes) -> None:
    """Whatever the bytes, parsing either succeeds or raises feedfix's own error."""
    with contextlib.suppress(FeedfixError):
        parse_document(data, "fuzz")


xmlish = st.text(alphabet="<>/=\"'&;![]?-abcitemrsfed \n\u4e2d\x00\x0b", max_size=300)


@SETTINGS
@given(xmlish)
def test_xml_like_text_converts_or_fails_cleanly(text: str) -> None:
    """Near-miss XML either converts to valid Atom or fails with feedfix's own error."""
    data = ('<rss version="2.0"><channel><item><title>' + text).encode("utf-8", "replace")
    try:
        result = convert(data)
    except FeedfixError:
        return
    assert_valid_atom(result.atom)


tags = st.sampled_from(["p", "div", "img", "a", "script", "svg", "iframe", "b", "picture",
                        "source", "embed", "form", "style", "wbr", "object"])  # fmt: skip
attributes = st.sampled_from([
    'src="https://cors.zfour.workers.dev/?http://a.example/x.jpg"', 'onclick', 'onerror="x()"',
    'href="javascript:alert(1)"', 'data-original="http://a.example/y.jpg"', 'class="lazy"',
    'id="article_bottom"', 'style="width:expression(1)"', 'srcset="//wsrv.nl/?url=a.example%2Fz"',
])  # fmt: skip
html_pieces = st.one_of(
    st.builds(lambda t, a, x: f"<{t} {a}>{x}", tags, attributes, words),
    st.builds(lambda t: f"</{t}>", tags),
    words,
    st.sampled_from(["&amp;", "&nbsp;", "&#106;", "<!--", "-->", "<![CDATA[", "]]>", "\x0b"]),
)


@SETTINGS
@given(st.lists(html_pieces, max_size=25).map("".join))
def test_rules_over_arbitrary_html_are_safe_and_idempotent(markup: str) -> None:
    """Any tag soup: valid Atom out, no handler or script survives, a second pass changes
    nothing."""
    data = (
        '<rss version="2.0"><channel><title>t</title><item><title>x</title>'
        f"<link>http://a.example/1</link><description>{html.escape(markup)}</description>"
        "</item></channel></rss>"
    ).encode()
    first = convert(data).atom
    root = assert_valid_atom(first)
    content = entries(root)[0].content_html
    if content.strip():
        tree = lxml.html.fragment_fromstring(content, create_parent="div")
        for el in tree.iter():
            assert el.tag not in {"script", "style", "iframe", "embed", "form"}, el.tag
            for name, value in el.attrib.items():
                assert not name.lower().startswith("on"), name
                assert not value.strip().lower().startswith("javascript:"), value
                assert "cors.zfour" not in value, value
    assert convert(first).atom == first
