"""sanitize as an allowlist: what goes, what an article keeps, links, URL schemes, iframes.

Every case runs the whole rule as the pipeline runs it (``clean_html``: parse, the tree pass,
serialize, the final HTML5 pass) and reads the result back with lxml.html, as the other HTML
tests do. The article fixture is modelled on the shared corpus: a ZAKER image box, a blog
post with a responsive picture, a figure, video and audio with sources, a table and code.
"""

from __future__ import annotations

import html

import lxml.html
import pytest
from lxml import etree

from atomcheck import DATA
from feedfix.core.html import _VOID_END_TAGS, parse_fragment, serialize_fragment
from feedfix.core.pipeline import Report, clean_html
from feedfix.core.rules import RuleSet, build_ruleset
from feedfix.core.rules.sanitize import IFRAME_SANDBOX, Sanitize

LINK_REL = "noopener noreferrer"
BASE = "https://blog.example.org/2026/12/post.html"
ONLY_SANITIZE = RuleSet((Sanitize(),))


def sanitized(markup: str, rules: RuleSet = ONLY_SANITIZE, base: str | None = None) -> str:
    """The fragment after the sanitize rule, as the pipeline runs it."""
    return clean_html(markup, rules, base, Report())


def tree(markup: str) -> lxml.html.HtmlElement:
    """Markup parsed back (inside a wrapper div) to look at its elements."""
    return lxml.html.fragment_fromstring(markup, create_parent="div")


def tags(markup: str) -> set[str]:
    """The element names in a fragment."""
    return {el.tag for el in tree(markup).iterdescendants() if isinstance(el.tag, str)}


DROPPED = [
    ("plaintext", "<p>before</p><plaintext><p>after</p>", {"plaintext"}, ["before"]),
    ("xmp", "<xmp><b>code</b></xmp><p>after</p>", {"xmp"}, ["<b>code</b>", "after"]),
    ("title", "<p>a</p><title>Page title</title><p>b</p>", {"title"}, ["a", "b"]),
    ("noscript", "<noscript><p>fallback text</p></noscript>", {"noscript"}, ["fallback text"]),
    ("listing", "<listing>x = 1</listing>", {"listing"}, ["x = 1"]),
    ("empty svg shell", "<p>a</p><svg></svg><p>b</p>", {"svg"}, ["a", "b"]),
    ("empty math shell", "<p>a</p><math></math><p>b</p>", {"math"}, ["a", "b"]),
    ("svg with shapes", '<svg viewBox="0 0 1 1"><path d="M0 0"/></svg>t', {"svg", "path"}, ["t"]),
    ("math keeps its text", "<math><mi>x</mi><mo>+</mo><mn>1</mn></math>", {"math", "mi"}, ["x"]),
    ("unknown element", "<foo-bar>inside</foo-bar>", {"foo-bar"}, ["inside"]),
    ("marquee", "<marquee>scrolling</marquee>", {"marquee"}, ["scrolling"]),
    ("font and center", '<center><font color="red">old</font></center>', {"font"}, ["old"]),
    ("textarea", "<textarea>typed</textarea>", {"textarea"}, ["typed"]),
    ("dialog", "<dialog open>modal</dialog>", {"dialog"}, ["modal"]),
    ("template", "<template><p>hidden</p></template><p>b</p>", {"template"}, ["b"]),
    ("object", '<object data="https://a.example/x.swf">fallback</object>', {"object"}, []),
    ("form controls", '<form action="/x"><button>Go</button></form>', {"form", "button"}, []),
]


@pytest.mark.parametrize(("case", "markup", "gone", "texts"), DROPPED, ids=[c[0] for c in DROPPED])
def test_elements_outside_the_allowlist_are_dropped(
    case: str, markup: str, gone: set[str], texts: list[str]
) -> None:
    """plaintext, xmp, title, noscript, svg/math shells, unknown elements: gone; text stays."""
    out = sanitized(markup)
    assert not tags(out) & gone, f"{case}: {out!r}"
    shown = tree(out).text_content()
    for text in texts:
        assert text in shown, f"{case}: {text!r} lost: {out!r}"


def test_raw_text_elements_become_preformatted_text() -> None:
    """xmp and plaintext show their content as text, the way an HTML5 reader would."""
    out = sanitized("<xmp><b>bold</b></xmp>")
    assert tags(out) == {"pre"}
    assert tree(out).findtext("pre") == "<b>bold</b>"


UNKNOWN_ATTRIBUTES = [
    ("handler", '<p onclick="go()">t</p>', "p", "onclick"),
    ("bare ZAKER onclick", '<div class="img_box" onclick><p>t</p></div>', "div", "onclick"),
    ("made-up attribute", '<p frobnicate="1">t</p>', "p", "frobnicate"),
    ("formaction", '<p formaction="https://a.example/">t</p>', "p", "formaction"),
    ("ping on a link", '<a href="https://a.example/" ping="https://t.example/">t</a>', "a", "ping"),
    ("target on a link", '<a href="https://a.example/" target="_blank">t</a>', "a", "target"),
    ("usemap on an image", '<img src="https://a.example/i.jpg" usemap="#m">', "img", "usemap"),
    (
        "srcdoc on a player",
        '<iframe src="https://player.vimeo.com/v/1" srcdoc="x">',
        "iframe",
        "srcdoc",
    ),
    ("autoplay", '<video src="https://a.example/v.mp4" autoplay></video>', "video", "autoplay"),
    ("xmlns", '<p xmlns:x="urn:x">t</p>', "p", "xmlns:x"),
]


@pytest.mark.parametrize(
    ("case", "markup", "tag", "attribute"),
    UNKNOWN_ATTRIBUTES,
    ids=[c[0] for c in UNKNOWN_ATTRIBUTES],
)
def test_attributes_outside_the_allowlist_are_dropped(
    case: str, markup: str, tag: str, attribute: str
) -> None:
    """Handlers and every attribute the allowlist does not name are removed; the element stays."""
    out = sanitized(markup)
    elements = tree(out).findall(f".//{tag}")
    assert elements, f"{case}: <{tag}> lost: {out!r}"
    assert all(attribute not in el.attrib for el in elements), f"{case}: {out!r}"


ARTICLE = """
<h1>Title</h1><h2 id="s1">Section</h2><h3>a</h3><h4>b</h4><h5>c</h5><h6>d</h6>
<p>Text with <strong>bold</strong>, <em>em</em>, <b>b</b>, <i>i</i>, <u>u</u>, <s>s</s>,
<sub>2</sub>, <sup>3</sup>, <small>small</small>, <mark>mark</mark>, <abbr title="x">abbr</abbr>,
<time datetime="2026-12-01">today</time>, <q cite="https://a.example/">q</q>,
<kbd>Ctrl</kbd>, <span class="note">span</span><br>and a <a href="https://a.example/">link</a>.</p>
<div class="img_box" id="id_imagebox_0"><div class="content_img_div"><img id="img_0"
 src="http://zkres1.myzaker.com/202212/a_1024.jpg" width="926" height="604" alt="Photo"
 referrerpolicy="no-referrer"></div></div>
<picture><source srcset="https://cdn.example.org/i.avif" type="image/avif"
 media="(min-width: 600px)"><img src="https://cdn.example.org/i.jpg"
 srcset="https://cdn.example.org/i-1x.jpg 1x, https://cdn.example.org/i-2x.jpg 2x"
 sizes="(max-width: 600px) 100vw, 600px" loading="lazy" alt="Responsive"></picture>
<figure><img src="https://cdn.example.org/f.png" alt="Figure"><figcaption>Caption</figcaption>
</figure>
<video controls poster="https://cdn.example.org/poster.jpg" width="640" height="360">
<source src="https://media.example.org/clip.mp4" type="video/mp4">
<track src="https://media.example.org/clip.vtt" kind="subtitles" srclang="zh" label="中文">
</video>
<audio controls src="https://media.example.org/a.mp3"><source src="https://media.example.org/a.ogg"
 type="audio/ogg"></audio>
<table><caption>Results</caption><thead><tr><th scope="col">k</th><th>v</th></tr></thead>
<tbody><tr><td colspan="2" rowspan="1">cell</td></tr></tbody><tfoot><tr><td>f</td></tr></tfoot>
</table>
<ul><li>one</li></ul><ol start="3"><li>three</li></ol><dl><dt>term</dt><dd>def</dd></dl>
<pre><code class="language-python">print("hi")</code></pre>
<blockquote cite="https://a.example/">Quoted</blockquote><hr>
<details open><summary>More</summary>hidden</details>
<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ" width="560" height="315"
 allowfullscreen></iframe>
"""
KEPT_ELEMENTS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "strong", "em", "b", "i", "u", "s", "sub", "sup",
    "small", "mark", "abbr", "time", "q", "kbd", "span", "br", "a", "div", "img", "picture",
    "source", "figure", "figcaption", "video", "track", "audio", "table", "caption", "thead",
    "tbody", "tfoot", "tr", "th", "td", "ul", "ol", "li", "dl", "dt", "dd", "pre", "code",
    "blockquote", "hr", "details", "summary", "iframe",
}  # fmt: skip
KEPT_ATTRIBUTES = [
    ("img", "src"), ("img", "srcset"), ("img", "sizes"), ("img", "width"), ("img", "height"),
    ("img", "alt"), ("img", "referrerpolicy"), ("img", "loading"), ("img", "id"),
    ("source", "srcset"), ("source", "type"), ("source", "media"), ("source", "src"),
    ("video", "poster"), ("video", "controls"), ("video", "width"), ("track", "srclang"),
    ("track", "kind"), ("audio", "src"), ("audio", "controls"), ("td", "colspan"),
    ("th", "scope"), ("ol", "start"), ("blockquote", "cite"), ("code", "class"),
    ("time", "datetime"), ("abbr", "title"), ("h2", "id"), ("details", "open"),
    ("iframe", "width"), ("iframe", "allowfullscreen"), ("a", "href"), ("div", "class"),
]  # fmt: skip


def test_every_element_an_article_needs_is_kept() -> None:
    """Headings, text, images (responsive too), figures, media, tables, lists, code, quotes."""
    out = sanitized(ARTICLE)
    assert tags(out) >= KEPT_ELEMENTS, sorted(KEPT_ELEMENTS - tags(out))
    root = tree(out)
    missing = [(t, a) for t, a in KEPT_ATTRIBUTES if not root.xpath(f"//{t}[@{a}]")]
    assert not missing, f"attributes lost: {missing}"
    assert root.xpath("//img[@id='img_0']/@src") == ["http://zkres1.myzaker.com/202212/a_1024.jpg"]
    assert "中文" in out and 'print("hi")' in root.text_content()


def test_links_get_noopener_noreferrer() -> None:
    """Every link gets rel="noopener noreferrer", replacing whatever rel it had."""
    out = sanitized(
        '<a href="https://a.example/">a</a><a href="https://b.example/" rel="opener">b</a>'
    )
    assert tree(out).xpath("//a/@rel") == [LINK_REL, LINK_REL]


ALLOWED_URLS = [
    "http://a.example/x",
    "https://a.example/x?q=javascript:1",
    "mailto:editor@example.org",
    "tel:+86-10-1234-5678",
]
REFUSED_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java&#x09;script:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:image/svg+xml,<svg onload=alert(1)>",
    "ftp://a.example/x",
    "file:///etc/passwd",
    "blob:https://a.example/1",
    "intent://scan/#Intent;scheme=zxing;end",
    "about:blank",
]


@pytest.mark.parametrize("url", ALLOWED_URLS)
def test_allowed_schemes_are_kept(url: str) -> None:
    """http, https, mailto and tel URLs stay in links and images."""
    out = sanitized(f'<a href="{url}">l</a><img src="{url}">')
    root = tree(out)
    assert root.xpath("//a/@href") == [url] and root.xpath("//img/@src") == [url], out


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_other_schemes_are_dropped(url: str) -> None:
    """Every other scheme goes, data: images included; the element and its text stay."""
    out = sanitized(
        f'<a href="{url}">link text</a><img src="{url}" alt="i">'
        f'<video poster="{url}" controls></video><blockquote cite="{url}">q</blockquote>'
        f'<img srcset="{url} 1x, https://a.example/2x.jpg 2x">'
    )
    root = tree(out)
    urls = root.xpath("//@href | //@src | //@poster | //@cite | //@srcset")
    assert not urls, f"{url!r} kept: {out!r}"
    assert "link text" in root.text_content() and root.xpath("//img[@alt='i']"), out


def test_relative_urls_are_resolved_before_the_scheme_check() -> None:
    """A relative src or href is made absolute against the entry's base, then kept."""
    out = sanitized('<a href="../about.html">a</a><img src="/i.jpg">', base=BASE)
    root = tree(out)
    assert root.xpath("//a/@href") == ["https://blog.example.org/2026/about.html"]
    assert root.xpath("//img/@src") == ["https://blog.example.org/i.jpg"]


def test_data_attributes_stay_without_script_urls() -> None:
    """data-* stay (unwrap-proxies and readers' lazy loaders use them), minus script URLs."""
    out = sanitized(
        '<img src="https://a.example/i.jpg" data-full="https://a.example/f.jpg"'
        ' data-x="javascript:alert(1)" data-caption="Note: hi">'
    )
    img = tree(out).find(".//img")
    assert img is not None
    assert img.get("data-full") == "https://a.example/f.jpg"
    assert img.get("data-caption") == "Note: hi"
    assert "data-x" not in img.attrib


def test_style_keeps_only_listed_properties() -> None:
    """Typography stays; positioning, url() and script in CSS go."""
    out = sanitized(
        '<p style="color: red; position: fixed; top: 0">a</p>'
        '<p style="background: url(https://t.example/p.gif)">b</p>'
        '<p style="width: expression(alert(1))">c</p>'
    )
    styles = [style.replace(" ", "") for style in tree(out).xpath("//p/@style")]
    assert styles == ["color:red"], out


def test_allowed_iframe_is_sandboxed_and_emptied() -> None:
    """A player from an allowed host stays, sandboxed (its own sandbox replaced), content gone."""
    out = sanitized(
        '<iframe src="https://player.bilibili.com/player.html?bvid=1"'
        ' sandbox="allow-top-navigation"><p>fallback</p></iframe>'
    )
    frames = tree(out).findall(".//iframe")
    assert [f.get("sandbox") for f in frames] == [IFRAME_SANDBOX], out
    assert "fallback" not in out


def test_iframe_hosts_option_still_chooses_the_players() -> None:
    """rules.sanitize.iframe_hosts keeps its meaning: only the listed hosts' iframes stay."""
    markup = (
        '<iframe src="https://video.example.org/embed/1"></iframe>'
        '<iframe src="https://www.youtube.com/embed/x"></iframe>'
    )
    custom = build_ruleset({"sanitize": {"iframe_hosts": ["video.example.org"]}}, disabled=())
    srcs = tree(sanitized(markup, custom)).xpath("//iframe/@src")
    assert srcs == ["https://video.example.org/embed/1"]
    none = build_ruleset({"sanitize": {"iframe_hosts": []}})
    assert not tags(sanitized(markup, none)) & {"iframe"}


def test_parser_differential_noscript_cannot_smuggle_markup() -> None:
    """libxml2 reads noscript as markup, HTML5 readers as text: the title stays an attribute."""
    vector = '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>'
    out = sanitized(vector)
    assert not tree(out).xpath("//img"), out
    assert tree(out).xpath("//p/@title") == ["</noscript><img src=x onerror=alert(1)>"]


@pytest.mark.parametrize(
    "markup",
    [ARTICLE, *(case[1] for case in DROPPED), *(case[1] for case in UNKNOWN_ATTRIBUTES)],
)
def test_sanitize_is_idempotent(markup: str) -> None:
    """Sanitized output sanitized again is the same bytes (a reader may fetch it twice)."""
    once = sanitized(markup)
    assert sanitized(once) == once


def test_tree_pass_counts_what_it_removes() -> None:
    """--explain's count: each element and attribute the tree pass removed or changed."""
    report = Report()
    clean_html('<p onclick="x()">a</p><script>1</script><foo>b</foo>', ONLY_SANITIZE, None, report)
    assert report.counts["sanitize"].changes == 3


def test_whole_container_serializer_matches_the_per_child_one() -> None:
    """serialize_fragment's one-call form writes the same text as joining each child's."""

    def per_child(container: etree._Element) -> str:
        parts = [html.escape(container.text or "", quote=False)]
        parts.extend(etree.tostring(c, encoding="unicode", method="html") for c in container)
        return _VOID_END_TAGS.sub("", "".join(parts)).strip()

    lines = (DATA / "xss" / "vectors.txt").read_text(encoding="utf-8").splitlines()
    samples = [line for line in lines if line and not line.startswith("#")]
    samples += [ARTICLE, "text &amp; <b>b</b> tail", "<p>x</p></body></html>after"]
    for markup in samples:
        container = parse_fragment(markup)
        assert serialize_fragment(container) == per_child(container), markup


def test_unwrapping_keeps_text_in_order_and_drops_whole_subtrees() -> None:
    """Unknown elements leave their text where it was; a dropped svg takes its inside along."""
    report = Report()
    markup = "<foo>a<b>b</b>c</foo>d<svg><g><text>y</text></g></svg>e" + "<x-y>z</x-y>" * 3
    out = clean_html(markup, ONLY_SANITIZE, None, report)
    assert out == "a<b>b</b>cdezzz"
    assert report.counts["sanitize"].changes == 5  # foo, svg (not its g and text), three x-y
