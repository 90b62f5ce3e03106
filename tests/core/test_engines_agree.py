"""The two engines of the three twice-used rules agree: convert's tree and fix-posts' spans.

unwrap-proxies, fix-lazy-images and drop-empty-junk each make one decision (``url_kind`` and
the ``Unwrapper``, ``FixLazyImages.image_edits``, ``DropEmptyJunk.drop``) that ``convert``
carries out on a parsed tree and ``fix-posts`` as spans of the source text. Fed the same HTML,
the two must end with the same URLs in the same places and the same elements removed; only
spelling may differ (attribute order and quoting), so both outputs are read back with the
same parser before they are compared.
"""

from __future__ import annotations

import html

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from rulecheck import normalized

from feedfix.core.html import parse_fragment
from feedfix.core.mend import BodyRules, mend
from feedfix.core.pipeline import Report, clean_html
from feedfix.core.rules import RuleSet
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DropEmptyJunk
from feedfix.core.rules.unwrap_proxies import UnwrapProxies

UNWRAP, LAZY, JUNK = UnwrapProxies(), FixLazyImages(), DropEmptyJunk()
TREE = RuleSet((UNWRAP, LAZY, JUNK))
SPANS = BodyRules(unwrapper=UNWRAP.unwrapper, lazy=LAZY, junk=JUNK)
URL_NAMES = ("src", "href", "poster", "srcset", "data-original", "data-src", "data-srcset")

hosts = st.sampled_from(["zkres1.myzaker.com", "img.example.org", "cdn.example.net"])
names = st.text(alphabet="abcdef0123456789", min_size=1, max_size=6)
origins = st.builds(lambda h, n: f"http://{h}/{n}.jpg", hosts, names)
WRAPPERS = (
    lambda u: u,
    lambda u: "https://cors.zfour.workers.dev/?" + u,
    lambda u: "//cors.zfour.workers.dev/?" + u,
    lambda u: "https://images.weserv.nl/?url=" + u.replace(":", "%3A").replace("/", "%2F"),
    lambda u: "https://i2.wp.com/" + u.split("://", 1)[1] + "?ssl=1&resize=300",
    lambda u: "https://cors.zfour.workers.dev/?https://wsrv.nl/?url=" + u.replace("/", "%2F"),
)
urls = st.builds(lambda wrap, origin: wrap(origin), st.sampled_from(WRAPPERS), origins)
words = st.text(alphabet="abc 中文&<>", min_size=1, max_size=10).map(html.escape)


def attribute(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``name="value"`` (escaped) or nothing."""
    written = values.map(lambda v: f' {name}="{html.escape(v)}"')
    return st.one_of(st.just(""), written)


placeholders = st.sampled_from(["data:image/gif;base64,R0lGOD", "/static/blank.gif", "about:blank"])
images = st.builds(
    lambda *parts: "<img" + "".join(parts) + ">",
    attribute("src", st.one_of(urls, placeholders)),
    attribute("data-original", urls),
    attribute("data-src", urls),
    attribute("data-srcset", urls.map(lambda u: u + " 2x")),
    attribute("srcset", st.sampled_from(["small.jpg 1x", " "])),
    attribute("data-width", st.sampled_from(["640", "auto"])),
    attribute("data-height", st.sampled_from(["480", "auto"])),
    attribute("width", st.just("10")),
    attribute("class", st.sampled_from(["lazy opacity_0", "lazy wide", "wide", "lazyload"])),
    attribute("referrerpolicy", st.just("no-referrer")),
)
lazy_classes = attribute("class", st.sampled_from(["lazy", "opacity_0 note"]))
inline = st.one_of(
    words,
    images,
    st.builds(lambda u, c, w: f'<a href="{html.escape(u)}"{c}>{w}</a>', urls, lazy_classes, words),
    st.builds(
        lambda u, end: f"see {html.escape(u)}{end} here", urls, st.sampled_from(["", "]", "}"])
    ),
    st.builds(lambda u: f"SEE HTTPS:{html.escape(u.partition(':')[2])}", urls),
    st.builds(lambda c, w: f"<span{c}>{w}</span>", lazy_classes, words),
)
paragraphs = st.lists(inline, max_size=4).map(lambda parts: "<p>" + "".join(parts) + "</p>")
media = st.one_of(
    st.builds(lambda u: f'<picture><source srcset="{html.escape(u)} 1x"></picture>', urls),
    st.builds(lambda u: f'<video poster="{html.escape(u)}"></video>', urls),
)
junk_ids = st.sampled_from(['id="recommend_bottom"', 'id="article_bottom"', 'class="x"'])


def blocks(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A div (maybe a junk one) holding nothing, blank text, an empty script, or blocks."""
    filling = st.one_of(
        st.sampled_from(["", " &nbsp;\n", "<script></script>", '<hr id="article_bottom">']),
        inner,
        st.lists(inner, max_size=3),
    )
    return st.builds(
        lambda ident, body: (
            f"<div {ident}>{''.join(body) if isinstance(body, list) else body}</div>"
        ),
        junk_ids,
        filling,
    )


fragments = st.lists(
    st.recursive(st.one_of(paragraphs, media, images), blocks, max_leaves=6), max_size=6
).map("".join)


def urls_and_ids(markup: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Every URL attribute (tag, name, value) in document order, and every element id."""
    container = parse_fragment(markup)
    found = [
        (str(el.tag), name, el.get(name) or "")
        for el in container.iter(etree.Element)
        for name in URL_NAMES
        if el.get(name) is not None
    ]
    return found, [el.get("id") or "" for el in container.iter(etree.Element) if el.get("id")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fragments)
def test_tree_and_span_engines_agree(markup: str) -> None:
    """Same HTML through convert's tree and fix-posts' spans: the same URLs everywhere, the
    same elements removed, the same document once read back."""
    tree = clean_html(markup, TREE, None, Report())
    spans = mend(markup.encode(), SPANS, html_file=True).after
    assert urls_and_ids(spans) == urls_and_ids(tree)
    assert normalized(spans) == normalized(tree)
