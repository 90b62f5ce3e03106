"""Which URLs of a post `--save-images` brings home (the images it shows, not its links),
and the one diff that unwrapping and pointing home make together."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st

from feedfix.cli.image_refs import compose, home_edits, image_refs, srcset_urls
from feedfix.core.mend import BodyRules, Edit, mend
from feedfix.core.mend.edits import splice
from feedfix.core.proxies import DEFAULT_TEMPLATES, Unwrapper
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.files.image_names import name_for

PREFIX = "/images/remote"


def _urls(text: str, *, html_file: bool = False) -> list[str]:
    refs = image_refs(text, html_file=html_file, prefix=PREFIX)
    for ref in refs:  # each span holds what it says
        assert ref.url == html.unescape(text[ref.start : ref.end]).strip()
    return [r.url for r in refs]


def test_front_matter_images_by_key_or_by_suffix() -> None:
    """headimg/thumbnail/cover in any quoting, a list under ``photos``, any key whose URL ends
    like an image; not a page link, not a URL inside a sentence, not a block scalar."""
    post = (
        "---\n"
        "title: 'A post'\n"
        "headimg: 'http://a.example/1.jpg'\n"
        'thumbnail: "http://a.example/2"\n'
        "cover: http://a.example/3?w=1  # a comment\n"
        "photos:\n  - http://a.example/4.png\n  - 'http://a.example/5.gif'\n"
        "banner-img: //a.example/6.webp\n"
        "link: https://a.example/page\n"
        "note: see http://a.example/7.jpg here\n"
        "desc: |\n  http://a.example/8.jpg\n"
        "og_image: /images/remote/a.example/9.jpg\n"
        "---\n\nbody\n"
    )
    assert _urls(post) == [
        "http://a.example/1.jpg",
        "http://a.example/2",
        "http://a.example/3?w=1",
        "http://a.example/4.png",
        "http://a.example/5.gif",
        "//a.example/6.webp",
    ]


def test_html_images_but_not_links_scripts_or_loose_sources() -> None:
    """img src, srcset (commas inside a URL kept), lazy data-* sources; a picture's sources;
    a video's poster. Not a link, an audio source, a script or a comment."""
    body = (
        '<p><a href="http://a.example/big.jpg"><img src=" http://a.example/1.jpg "'
        ' data-original="http://a.example/1.jpg"'
        ' srcset="http://a.example/w_1,h_2/2.jpg 1x, http://a.example/3.jpg 2x"></a></p>'
        '<picture><source srcset="http://a.example/4.webp" type="image/webp">'
        '<img src="http://a.example/5.jpg&amp;x=1"></picture>'
        '<audio><source src="http://a.example/a.mp3"></audio>'
        '<video poster="http://a.example/6.png"><source src="http://a.example/v.mp4"></video>'
        '<script>var s = "<img src=http://a.example/no.jpg>";</script>'
        '<!-- <img src="http://a.example/no2.jpg"> -->'
        '<img src="data:image/gif;base64,R0lGOD"><img src="/local/7.jpg">'
    )
    assert _urls("---\ntitle: t\n---\n" + body) == [
        "http://a.example/1.jpg",
        "http://a.example/1.jpg",
        "http://a.example/w_1,h_2/2.jpg",
        "http://a.example/3.jpg",
        "http://a.example/4.webp",
        "http://a.example/5.jpg&x=1",
        "http://a.example/6.png",
    ]


def test_markdown_images_and_their_reference_definitions() -> None:
    """``![](…)``, ``![](<…>)``, a title after the URL, ``![][id]`` and ``![id]`` with their
    definitions; not a plain link, not a definition only links use, nothing in fenced code
    (an img tag shown as code included)."""
    post = (
        "---\ntitle: t\n---\n\n"
        '![one](http://a.example/1.jpg "title") and ![two](<http://a.example/2.png>)\n'
        "[a link](http://a.example/page.jpg) ![ref][pic] ![Shortcut]\n\n"
        "```\n![code](http://a.example/code.jpg)\n<img src='http://a.example/c.png'>\n```\n\n"
        "![broken](http://a.example/(paren).jpg)\n\n"
        "[pic]: http://a.example/3.gif\n[shortcut]: <http://a.example/4.webp>\n"
        "[other]: http://a.example/5.jpg\n"
    )
    assert _urls(post) == [
        "http://a.example/1.jpg",
        "http://a.example/2.png",
        "http://a.example/3.gif",
        "http://a.example/4.webp",
    ]


def test_a_plain_html_page_has_no_markdown() -> None:
    """In an .html page ``![](…)`` is text; its img is still an image."""
    page = '<p>![x](http://a.example/1.jpg)</p><img src="http://a.example/2.jpg">'
    assert _urls(page, html_file=True) == ["http://a.example/2.jpg"]
    assert _urls(page) == [], "a .md file without front matter is not a post"


def test_srcset_urls_as_html_reads_them() -> None:
    """A URL runs to the next space (commas inside it are its own); trailing commas end the
    candidate, descriptors run to the next comma."""
    value = " a.jpg 1x,b,c.jpg 2x , d.jpg,, e.jpg,f.jpg"
    urls = [value[s:e] for s, e in srcset_urls(value)]
    assert urls == ["a.jpg", "b,c.jpg", "d.jpg", "e.jpg,f.jpg"]


def test_unwrapped_lazy_images_point_home_in_one_diff() -> None:
    """After unwrapping and fix-lazy-images (which moved data-original into src), pointing
    home composes with the mending: one set of edits of the original gives the final text."""
    wrapped = "https://cors.zfour.workers.dev/?http://zkres1.myzaker.com/2022/a_1024.jpg"
    post = (
        f"---\nheadimg: '{wrapped}'\n---\n\n<div>"
        f'<img class="lazy opacity_0" data-original="http://zkres1.myzaker.com/2022/a_1024.jpg"'
        f' src="{wrapped}" data-height="5"></div>\n'
    ).encode()
    rules = BodyRules(unwrapper=Unwrapper.from_templates(DEFAULT_TEMPLATES), lazy=FixLazyImages())
    mended = mend(post, rules)
    refs = image_refs(mended.after, html_file=False, prefix=PREFIX)
    home = {r.url: name_for(r.url).path_for() for r in refs}  # type: ignore[union-attr]
    edits = home_edits(refs, home, PREFIX)
    final = splice(mended.after, edits)
    assert final.count("/images/remote/zkres1.myzaker.com/2022/a_1024.jpg") == 2
    assert "zkres1.myzaker.com/2022" not in final.replace("/images/remote/zkres1", "")
    assert splice(mended.before, compose(mended.edits, edits, mended.after)) == final


@st.composite
def _two_rounds(draw: st.DrawFn) -> tuple[str, list[Edit], list[Edit]]:
    """A text, edits of it, and edits of what those edits make (empty spans included)."""
    text = draw(st.text(alphabet="abcxyz<>\n", max_size=40))

    def edits(of: str) -> list[Edit]:
        cuts = sorted(draw(st.lists(st.integers(0, len(of)), max_size=8)))
        spans = list(zip(cuts[::2], cuts[1::2], strict=False))
        return [Edit(s, e, draw(st.text(alphabet="PQ", max_size=4)), "r") for s, e in spans]

    first = edits(text)
    return text, first, edits(splice(text, first))


@given(_two_rounds())
def test_compose_does_what_both_rounds_do(case: tuple[str, list[Edit], list[Edit]]) -> None:
    """For any edits and any edits of their result, the composed edits of the original
    give the same text, and they never overlap."""
    text, first, second = case
    middle = splice(text, first)
    composed = compose(first, second, middle)
    assert splice(text, composed) == splice(middle, second)


def test_home_edits_write_the_prefix_and_the_encoded_path() -> None:
    """PREFIX + the path, percent-encoded, so it stands in YAML, HTML and Markdown."""
    text = "---\nheadimg: http://h.example/图 1.jpg\n---\n"
    refs = image_refs(text, html_file=False, prefix=PREFIX)
    assert len(refs) == 1
    home = {refs[0].url: "h.example/图 1.jpg"}
    new = splice(text, home_edits(refs, home, PREFIX))
    assert "headimg: /images/remote/h.example/%E5%9B%BE%201.jpg\n" in new
