"""The pure mending core: spans, front matter styles, the tokenizer, and properties.

Properties (hypothesis) over generated posts: only URL spans differ, mending twice is mending
once, and the text outside the URLs is identical, whatever the quoting, entities, line
endings, encoding and BOM.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mendcheck import FULL_PATH, UNWRAP_ONLY, UNWRAPPER, mend_text

from atomcheck import WRAPPER_RE, unwrap
from feedfix.core.errors import InputError
from feedfix.core.mend import BodyRules, decode_exactly, mend
from feedfix.core.mend.edits import Edit, OverlappingEdits, splice
from feedfix.core.mend.markup import tags
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DropEmptyJunk


def test_only_posts_and_html_pages_are_mended() -> None:
    """Front matter makes a post; without it only a file named .html/.htm is a page."""
    wrapped = b'<p><img src="https://cors.zfour.workers.dev/?http://a.example/x.jpg"></p>\n'
    assert mend(wrapped, UNWRAP_ONLY, html_file=True).changed
    with pytest.raises(InputError, match="not a post"):
        mend(wrapped, UNWRAP_ONLY, html_file=False)


def test_splice_applies_edits_and_refuses_overlaps() -> None:
    """Edits are spliced by offset; overlapping ones are a bug and raise."""
    assert splice("abcdef", [Edit(4, 6, "X", "r"), Edit(0, 1, "", "r")]) == "bcdX"
    with pytest.raises(OverlappingEdits):
        splice("abcdef", [Edit(0, 3, "", "r"), Edit(2, 4, "", "r")])


def test_decode_refuses_what_it_cannot_give_back() -> None:
    """Bytes that no codec round-trips (a truncated UTF-16 file) are an InputError."""
    with pytest.raises(InputError, match="without loss"):
        decode_exactly(b"\xff\xfe" + "abc".encode("utf-16-le") + b"\x00")
    text, bom, codec = decode_exactly(b"\xef\xbb\xbfabc")
    assert (text, bom, codec) == ("abc", b"\xef\xbb\xbf", "utf-8")


def test_tokenizer_ignores_scripts_comments_and_autolinks() -> None:
    """A ``<`` in a script, a tag in a comment and a Markdown autolink are not tags."""
    text = "<script>if (a<b) x('<img src=1>')</script><!-- <img src=2> --><https://a/> <p x='>'>"
    found = [(t.kind, t.name) for t in tags(text, 0, len(text))]
    assert found == [("start", "script"), ("end", "script"), ("comment", ""), ("start", "p")]


def test_a_stray_quote_does_not_swallow_the_next_tag() -> None:
    """As in a browser, a quote opens a value only after ``=``: a third quote is text."""
    wrapped = "https://cors.zfour.workers.dev/?http://a.example/{}.jpg"
    text = f'<img src="{wrapped.format(1)}" alt=""">\n<img src="{wrapped.format(2)}">'
    assert mend_text(text) == (
        '<img src="http://a.example/1.jpg" alt=""">\n<img src="http://a.example/2.jpg">'
    )


def test_a_repeated_attribute_is_ignored_as_browsers_do() -> None:
    """The first ``src`` counts; a second one, wrapped, is left alone on both paths, and the
    attribute after it is still mended."""
    wrapped = "https://cors.zfour.workers.dev/?http://a.example/{}.jpg"
    text = f'<img src="a.jpg" src="{wrapped.format(1)}" data-x="{wrapped.format(2)}">'
    expected = f'<img src="a.jpg" src="{wrapped.format(1)}" data-x="http://a.example/2.jpg">'
    assert mend_text(text) == expected
    assert mend_text(text, FULL_PATH) == expected


def test_a_url_in_text_ends_where_a_parser_ends_it() -> None:
    """``&lt;`` after a URL in text is a ``<``, which ends it, as convert reads it; ``&b=2``
    in a query is no reference and stays part of the URL."""
    text = (
        "<p>see https://cors.zfour.workers.dev/?http://a.example/x.jpg&lt;&amp;</p>\n"
        "<p>and https://cors.zfour.workers.dev/?http://a.example/y.jpg?a=1&b=2 too</p>\n"
    )
    assert mend_text(text) == (
        "<p>see http://a.example/x.jpg&lt;&amp;</p>\n"
        "<p>and http://a.example/y.jpg?a=1&b=2 too</p>\n"
    )


def test_lazy_image_repair_is_for_images_only() -> None:
    """fix-lazy-images touches img tags alone: a link's lazy class stays, as in convert."""
    rules = BodyRules(unwrapper=UNWRAPPER, lazy=FixLazyImages())
    text = '<a class="lazy" href="https://cors.zfour.workers.dev/?http://a.example/p">p</a>\n'
    assert mend(text.encode(), rules, html_file=True).after == (
        '<a class="lazy" href="http://a.example/p">p</a>\n'
    )


def test_junk_selectors_mean_what_they_mean_in_convert() -> None:
    """fix-posts takes drop-empty-junk's selectors as convert does (cssselect): combinators,
    attributes and pseudo-classes too, and only what matches and is empty goes."""
    rules = BodyRules(junk=DropEmptyJunk(selectors=["div.post > p:empty", "span[data-ad]"]))
    text = (
        '<div class="post"><p>keep</p><p></p><div><p></p></div></div>'
        '<span data-ad="1"> </span><span data-ad="2">text</span><p></p>\n'
    )
    assert mend(text.encode(), rules, html_file=True).after == (
        '<div class="post"><p>keep</p><div><p></p></div></div>'
        '<span data-ad="2">text</span><p></p>\n'
    )


def test_nested_deeper_than_the_limit_still_converges_to_one_step() -> None:
    """Three wrappers deep, HTML-escaped: unwrapped in one run, nothing left for a second."""
    url = (
        "https://cors.zfour.workers.dev/?https://images.weserv.nl/?url="
        "https%3A%2F%2Fi0.wp.com%2Fa.example%2Fdeep.jpg%3Fssl%3D1&amp;w=10"
    )
    once = mend_text(f'<p><img src="{url}"></p>')
    assert once == '<p><img src="https://a.example/deep.jpg"></p>'
    assert mend_text(once) == once


def test_lazy_rule_on_spans_matches_the_tree_rule() -> None:
    """fix-lazy-images as spans: a wrapped src with data-original becomes the real src."""
    rules = BodyRules(unwrapper=UNWRAPPER, lazy=FixLazyImages())
    text = (
        '<img class="lazy" data-original="http://a.example/1.jpg" '
        'src="https://cors.zfour.workers.dev/?http://a.example/1.jpg" data-width="9">'
    )
    assert mend_text(text, rules) == '<img src="http://a.example/1.jpg" width="9">'


def test_lazy_srcset_moved_into_srcset_is_unwrapped_per_candidate() -> None:
    """data-srcset becomes srcset over an empty one; each wrapped candidate is unwrapped."""
    rules = BodyRules(unwrapper=UNWRAPPER, lazy=FixLazyImages())
    wrapped = "https://cors.zfour.workers.dev/?http://a.example/{}.jpg"
    text = f'<img srcset="" data-srcset="{wrapped.format(1)} 1x, {wrapped.format(2)} 2x">'
    assert mend_text(text, rules) == (
        '<img srcset="http://a.example/1.jpg 1x, http://a.example/2.jpg 2x">'
    )


# ---- properties -------------------------------------------------------------------------

INNER = st.sampled_from(
    [
        "http://zkres1.myzaker.com/202206/62a1973a_1024.jpg",
        "http://img.example.com/a.png?w=600&h=400",
        "https://img.example.com/%E5%9B%BE.jpg",
        "http://img.example.com/p/q.webp",
    ]
)
WRAP = st.sampled_from(
    [
        "https://cors.zfour.workers.dev/?{raw}",
        "//cors.zfour.workers.dev/?{raw}",
        "https://images.weserv.nl/?url={encoded}",
        "https://wsrv.nl/?url={encoded}",
        "https://cors.zfour.workers.dev/?https://images.weserv.nl/?url={encoded}",
    ]
)
CLEAN_URL = st.sampled_from(["https://example.com/x.jpg", "http://example.org/?a=1&b=2"])
TEXT = st.lists(
    st.sampled_from([*"abc 正文，。 \t;#:-_'\"", "&amp;", "&#123;", "&nbsp;"]), max_size=12
).map("".join)


@st.composite
def wrapped_urls(draw: st.DrawFn) -> str:
    from urllib.parse import quote  # noqa: PLC0415

    inner = draw(INNER)
    return draw(WRAP).format(raw=inner, encoded=quote(inner, safe=""))


def _html_escape(url: str) -> str:
    return url.replace("&", "&amp;")


@st.composite
def posts(draw: st.DrawFn) -> str:
    url = st.one_of(wrapped_urls(), CLEAN_URL)
    lines = ["---", f"title: '{draw(st.sampled_from(['标题', 'A title', 'x: y']))}'"]
    for key in draw(st.lists(st.sampled_from(["headimg", "thumbnail", "cover"]), max_size=3)):
        style = draw(st.sampled_from(["'{}'", '"{}"', "{}", "{}   # c"]))
        lines.append(f"{key}: {style.format(draw(url))}")
    if draw(st.booleans()):
        lines += ["images:", *(f"  - '{draw(url)}'" for _ in range(draw(st.integers(1, 3))))]
    if draw(st.booleans()):
        lines.append(f"# a comment with {draw(url)}")
    lines.append("---")
    body: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        u = draw(url)
        piece = draw(
            st.sampled_from(
                [
                    '<img src="{h}" alt="{t}">',
                    "<img data-original='{h}' class=lazy src=\"{h}\">",
                    '<img data-src="{h}" src="data:image/gif;base64,R0lGOD" data-width=3>',
                    '<a href="{h}">{t}</a>',
                    '<source srcset="{h} 1x, {h} 2x">',
                    "<p>{t} {h} {t}</p>",
                    "![{t}]({u})",
                    '[{t}]({u} "title")',
                    "[r]: {u}",
                    "<!-- {h} -->",
                    "<p>{t}</p>",
                ]
            )
        )
        body.append(piece.format(h=_html_escape(u), u=u, t=draw(TEXT)))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + newline + newline.join(body) + newline


_URL_TOKEN = re.compile(r"(?:https?:)?//[^\s\"'<>()\[\]]+")


def _outside_urls(text: str) -> list[str]:
    return _URL_TOKEN.split(text)


@st.composite
def encoded_posts(draw: st.DrawFn) -> bytes:
    text = draw(posts())
    codec = draw(st.sampled_from(["utf-8", "gbk", "utf-16"]))
    bom = draw(st.booleans()) and codec == "utf-8"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(codec)


@settings(max_examples=150, deadline=None)
@given(encoded_posts())
def test_only_url_spans_change_and_twice_is_once(data: bytes) -> None:
    """Each edit replaces a wrapped URL by its unwrapping; outside the edits nothing differs;
    the encoding, BOM and line endings stay; a second run changes nothing."""
    result = mend(data, UNWRAP_ONLY)
    assert splice(result.before, result.edits) == result.after
    for edit in result.edits:
        old = result.before[edit.start : edit.end]
        assert WRAPPER_RE.search(old), f"an edit outside a wrapped URL: {old!r}"
        assert not WRAPPER_RE.search(edit.new)
        assert edit.new.replace("&amp;", "&").replace("''", "'") == unwrap(old)
    assert result.before.count("\r\n") == result.after.count("\r\n")
    # Byte-exact: both files are the BOM and the texts in one codec (the input's).
    assert data == result.bom + result.before.encode(result.encoding)
    assert result.data == result.bom + result.after.encode(result.encoding)
    assert not mend(result.data, UNWRAP_ONLY).changed


@settings(max_examples=150, deadline=None)
@given(posts())
def test_text_outside_urls_is_identical(text: str) -> None:
    """Cut both texts at URL-like tokens: the pieces between are the same, in the same order,
    and no wrapper survives anywhere except in comments."""
    after = mend_text(text)
    assert _outside_urls(after) == _outside_urls(text)
    kept = re.sub(r"<!--.*?-->|^# .*$", "", after, flags=re.M | re.S)
    assert not WRAPPER_RE.search(kept), kept


@settings(max_examples=100, deadline=None)
@given(posts())
def test_fast_and_full_tokenizer_paths_agree(text: str) -> None:
    """Locating only the tags that hold a wrapper gives the same result as the full scan."""
    data = text.encode("utf-8")
    assert mend(data, UNWRAP_ONLY).data == mend(data, FULL_PATH).data


SNIPPETS = st.sampled_from(
    [
        "---\n", "<", ">", "'", '"', "=", "<img src=", "<a href='", "<!--", "-->", "<script>",
        "</script>", "&amp;", "](", "[", "\n", "\r\n", "# ", "- ", ": ", "|\n", "[a, ",
        "https://cors.zfour.workers.dev/?http://a.example/x.jpg",
        "//i0.wp.com/a.example/y.png", "https://images.weserv.nl/?url=a.example%2Fz.gif",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(SNIPPETS, st.text(max_size=5)), max_size=30).map("".join))
def test_any_text_is_mended_or_refused_never_crashes(text: str) -> None:
    """Whatever the text, mending either works (and only wrapped URLs changed, once is
    enough) or is refused with an InputError; no other exception escapes."""
    for html_file in (False, True):
        try:
            result = mend(text.encode("utf-8", "surrogatepass"), FULL_PATH, html_file=html_file)
        except InputError:
            continue
        for edit in result.edits:
            assert WRAPPER_RE.search(result.before[edit.start : edit.end])
        assert not mend(result.data, FULL_PATH, html_file=html_file).changed
        fast = mend(text.encode("utf-8", "surrogatepass"), UNWRAP_ONLY, html_file=html_file)
        assert fast.data == result.data


ALL_RULES = BodyRules(
    unwrapper=UNWRAPPER,
    lazy=FixLazyImages(),
    junk=DropEmptyJunk(),
)
JUNK_PIECES = st.sampled_from(
    [
        '<div id="recommend_bottom"></div>',
        '<div id="article_bottom">\n  <span> &nbsp; </span><!-- c --></div>',
        '<div id="recommend_bottom"><p>相关推荐</p></div>',
        '<div id="article_bottom"><img src="x.jpg"></div>',
        '<div class="x"><div id="recommend_bottom"><div></div></div></div>',
    ]
)


@settings(max_examples=150, deadline=None)
@given(posts(), st.lists(JUNK_PIECES, max_size=4))
def test_with_all_rules_only_urls_junk_and_lazy_attributes_change(
    text: str, junk: list[str]
) -> None:
    """Every edit is a wrapped URL unwrapped, an empty junk element removed whole, or a
    lazy-load attribute inside an img tag; a second run changes nothing."""
    result = mend((text + "".join(junk)).encode(), ALL_RULES)
    for edit in result.edits:
        old = result.before[edit.start : edit.end]
        if edit.rule == "drop-empty-junk":
            assert old.startswith("<div") and old.endswith("</div>") and edit.new == ""
            assert "相关推荐" not in old and "<img" not in old
        elif edit.rule == "fix-lazy-images":
            opening = result.before.rfind("<", 0, edit.start)
            assert result.before.startswith("<img", opening), old
        else:
            assert WRAPPER_RE.search(old), old
    assert not mend(result.data, ALL_RULES).changed
