"""The pure mending core: spans, front matter styles, the tokenizer, and properties.

Properties (hypothesis) over generated posts: only URL spans differ, mending twice is mending
once, and the text outside the URLs is identical, whatever the quoting, entities, line
endings, encoding and BOM.
"""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from atomcheck import WRAPPER_RE, unwrap
from feedfix.core.errors import InputError
from feedfix.core.mend import BodyRules, decode_exactly, mend
from feedfix.core.mend.edits import Edit, OverlappingEdits, splice
from feedfix.core.mend.front_matter import FRONT_MATTER, locate_front_matter, segments
from feedfix.core.mend.markup import tags
from feedfix.core.parse.post import _FRONT_MATTER as POST_FRONT_MATTER
from feedfix.core.proxies import DEFAULT_TEMPLATES, Unwrapper
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DropEmptyJunk

UNWRAPPER = Unwrapper.from_templates(DEFAULT_TEMPLATES)
UNWRAP_ONLY = BodyRules(unwrapper=UNWRAPPER)
# A junk selector that never matches sends bodies down the full-tokenizer path.
FULL_PATH = BodyRules(unwrapper=UNWRAPPER, junk=DropEmptyJunk(selectors=["#never-there"]))


def _mend_text(text: str, rules: BodyRules = UNWRAP_ONLY) -> str:
    return mend(text.encode("utf-8"), rules, html_file=not text.startswith("---")).after


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


@pytest.mark.parametrize(
    "text",
    [
        "---\ntitle: a\n---\nbody",
        "\n\n---\ntitle: a\n...\nbody",
        "---\n---\nbody",
        "--- \ntitle: a\n---",
        "---\ntitle: a\n--\nbody",
        "title: a\n---\nbody",
        "---\nk: v\n----\n---\nbody",
        "---\na: 1\n---",
        "\n \n---\n\n---\n",
    ],
)
def test_front_matter_block_is_the_one_convert_reads(text: str) -> None:
    """On LF files the mender finds the same front matter block as convert's post parser."""
    ours, theirs = FRONT_MATTER.match(text), POST_FRONT_MATTER.match(text)
    assert (ours is None) == (theirs is None)
    located = locate_front_matter(text)
    assert (located is None) == (ours is None)
    if ours and theirs and located:
        assert ours.span(1) == theirs.span(1) == located[:2]
        assert ours.end() == theirs.end() == located[2]


def test_crlf_front_matter_is_found() -> None:
    """A CRLF file's closing ``---\\r\\n`` ends the block."""
    text = "---\r\ntitle: a\r\n---\r\nbody"
    match, located = FRONT_MATTER.match(text), locate_front_matter(text)
    assert match is not None and match.group(1) == "title: a"
    assert located == (*match.span(1), match.end())


def test_segments_leave_out_keys_and_comments() -> None:
    """Only values are scanned: not keys, not comments, not the text after a closing quote."""
    text = (
        "# c: //x\nk1: 'v1' # //c1\nk2: \"v2\"\nk3: plain # //c3\n- item\n"
        "k4: |\n  # in a block\nk5: [a, b]\n"
    )
    found = [(text[s.start : s.end], s.style) for s in segments(text, 0, len(text))]
    assert found == [
        ("v1", "single"),
        ("v2", "double"),
        ("plain", "plain"),
        ("item", "plain"),
        ("# in a block", "plain"),
        ("[a, b]", "flow"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("k: 'https://cors.zfour.workers.dev/?http://a.example/it''s.jpg'",
         "k: 'http://a.example/it''s.jpg'"),
        ('k: "https://cors.zfour.workers.dev/?http://a.example/x.jpg"',
         'k: "http://a.example/x.jpg"'),
        ("k: https://cors.zfour.workers.dev/?http://a.example/x.jpg#frag",
         "k: http://a.example/x.jpg#frag"),
        ("- https://i3.wp.com/a.example/x.jpg?ssl=1", "- https://a.example/x.jpg"),
    ],
    ids=["single-with-quote", "double", "plain-fragment", "list-item"],
)  # fmt: skip
def test_front_matter_values_keep_their_style(line: str, expected: str) -> None:
    """The unwrapped URL is written in the value's own style and reads back as that URL."""
    mended = _mend_text(f"---\n{line}\n---\nbody\n")
    assert mended == f"---\n{expected}\n---\nbody\n"
    assert yaml.safe_load(mended.split("---")[1]) == yaml.safe_load(expected)


def test_an_escape_next_to_the_url_is_kept() -> None:
    """In a double-quoted value the URL stops at a backslash escape, which stays as written."""
    text = '---\nk: "https://cors.zfour.workers.dev/?http://a.example/x.jpg\\x41"\n---\n'
    result = mend(text.encode(), UNWRAP_ONLY)
    assert result.after == '---\nk: "http://a.example/x.jpg\\x41"\n---\n'
    assert yaml.safe_load(result.after.split("---")[1]) == {"k": "http://a.example/x.jpgA"}


def test_front_matter_that_would_change_other_data_is_refused() -> None:
    """A wrapped URL used as a mapping key is not a value: the re-read check sees the data
    change in a way URL replacement does not explain and refuses the file."""
    text = "---\n? https://cors.zfour.workers.dev/?http://a.example/x.jpg\n: v\n---\nbody"
    with pytest.raises(InputError, match="without changing other values"):
        mend(text.encode(), UNWRAP_ONLY)


def test_invalid_yaml_is_an_input_error() -> None:
    """Front matter that is not YAML is reported, never half-mended."""
    text = "---\nk: [https://cors.zfour.workers.dev/?http://a.example/x.jpg\n---\nbody"
    with pytest.raises(InputError, match="not valid YAML"):
        mend(text.encode(), UNWRAP_ONLY)


def test_a_post_whose_front_matter_is_not_yaml_is_refused_even_if_only_its_body_changes() -> None:
    """Mending the body of a post convert cannot read would hide the real problem."""
    text = "---\ntitle: [x\n---\n<img src='//i0.wp.com/a.example/c.jpg'>\n"
    with pytest.raises(InputError, match="not valid YAML"):
        mend(text.encode(), UNWRAP_ONLY)
    assert not mend(b"---\ntitle: [x\n---\nnothing to mend\n", UNWRAP_ONLY).changed


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
    assert _mend_text(text) == (
        '<img src="http://a.example/1.jpg" alt=""">\n<img src="http://a.example/2.jpg">'
    )


def test_a_repeated_attribute_is_ignored_as_browsers_do() -> None:
    """The first ``src`` counts; a second one, wrapped, is left alone on both paths, and the
    attribute after it is still mended."""
    wrapped = "https://cors.zfour.workers.dev/?http://a.example/{}.jpg"
    text = f'<img src="a.jpg" src="{wrapped.format(1)}" data-x="{wrapped.format(2)}">'
    expected = f'<img src="a.jpg" src="{wrapped.format(1)}" data-x="http://a.example/2.jpg">'
    assert _mend_text(text) == expected
    assert _mend_text(text, FULL_PATH) == expected


def test_a_url_in_text_ends_where_a_parser_ends_it() -> None:
    """``&lt;`` after a URL in text is a ``<``, which ends it, as convert reads it; ``&b=2``
    in a query is no reference and stays part of the URL."""
    text = (
        "<p>see https://cors.zfour.workers.dev/?http://a.example/x.jpg&lt;&amp;</p>\n"
        "<p>and https://cors.zfour.workers.dev/?http://a.example/y.jpg?a=1&b=2 too</p>\n"
    )
    assert _mend_text(text) == (
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
    once = _mend_text(f'<p><img src="{url}"></p>')
    assert once == '<p><img src="https://a.example/deep.jpg"></p>'
    assert _mend_text(once) == once


def test_lazy_rule_on_spans_matches_the_tree_rule() -> None:
    """fix-lazy-images as spans: a wrapped src with data-original becomes the real src."""
    rules = BodyRules(unwrapper=UNWRAPPER, lazy=FixLazyImages())
    text = (
        '<img class="lazy" data-original="http://a.example/1.jpg" '
        'src="https://cors.zfour.workers.dev/?http://a.example/1.jpg" data-width="9">'
    )
    assert _mend_text(text, rules) == '<img src="http://a.example/1.jpg" width="9">'


def test_lazy_srcset_moved_into_srcset_is_unwrapped_per_candidate() -> None:
    """data-srcset becomes srcset over an empty one; each wrapped candidate is unwrapped."""
    rules = BodyRules(unwrapper=UNWRAPPER, lazy=FixLazyImages())
    wrapped = "https://cors.zfour.workers.dev/?http://a.example/{}.jpg"
    text = f'<img srcset="" data-srcset="{wrapped.format(1)} 1x, {wrapped.format(2)} 2x">'
    assert _mend_text(text, rules) == (
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
    after = _mend_text(text)
    assert _outside_urls(after) == _outside_urls(text)
    kept = re.sub(r"<!--.*?-->|^# .*$", "", after, flags=re.M | re.S)
    assert not WRAPPER_RE.search(kept), kept


@settings(max_examples=100, deadline=None)
@given(posts())
def test_fast_and_full_tokenizer_paths_agree(text: str) -> None:
    """Locating only the tags that hold a wrapper gives the same result as the full scan."""
    data = text.encode("utf-8")
    assert mend(data, UNWRAP_ONLY).data == mend(data, FULL_PATH).data


# ---- the diff made from edits ---------------------------------------------------------------

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@\n")


def _apply(before: str, diff: str) -> str:
    """Apply a unified diff the way patch(1) reads one (the test's own reader)."""
    lines = re.findall(r"[^\n]*\n|[^\n]+$", before)
    body = re.findall(r"[^\n]*\n", diff)[2:]
    out: list[str] = []
    position = index = 0
    while index < len(body):
        header = _HUNK.fullmatch(body[index])
        assert header, body[index]
        old_count = 1 if header.group(2) is None else int(header.group(2))
        start = int(header.group(1)) - (1 if old_count else 0)
        out += lines[position:start]
        position, index = start, index + 1
        while index < len(body) and not body[index].startswith("@@"):
            kind, content = body[index][0], body[index][1:]
            if index + 1 < len(body) and body[index + 1].startswith("\\ No newline"):
                content, index = content[:-1], index + 1
            if kind in " -":
                assert lines[position] == content, (lines[position], content)
                position += 1
            if kind in " +":
                out.append(content)
            index += 1
    return "".join(out + lines[position:])


LINES = st.lists(st.sampled_from(["a\n", "bb\n", "\n", "c\r\n", "d\u2028e\n", "f\x0cg\n"]))


@st.composite
def texts_and_edits(draw: st.DrawFn) -> tuple[str, list[Edit]]:
    text = "".join(draw(LINES)) + draw(st.sampled_from(["", "tail"]))
    edits: list[Edit] = []
    position = 0
    while position < len(text) and len(edits) < 6:
        start = draw(st.integers(position, len(text)))
        end = draw(st.integers(start, min(len(text), start + 5)))
        edits.append(Edit(start, end, draw(st.sampled_from(["", "X", "Y\n", "\nZ"])), "r"))
        position = end + 1
    return text, edits


@settings(max_examples=300, deadline=None)
@given(texts_and_edits())
def test_diff_from_edits_applies_to_give_the_mended_text(case: tuple[str, list[Edit]]) -> None:
    """Applying the diff to the old text gives the new one; lines break at \\n only."""
    from feedfix.core.mend.patch import unified_diff  # noqa: PLC0415

    before, edits = case
    after = splice(before, edits)
    diff = "".join(unified_diff(before, edits, "a/x", "b/x"))
    if after == before:
        return
    assert diff.startswith("--- a/x\n+++ b/x\n@@ ")
    assert _apply(before, diff) == after


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
