"""The limits on one fragment (feedfix/core/limits.py): the excess dropped and counted, the
rest kept as it was."""

from __future__ import annotations

import pytest
from lxml import etree

from feedfix.core.html import parse_fragment, serialize_fragment
from feedfix.core.limits import MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENTS, LimitHits


def _depth(container: etree._Element) -> int:
    """How deep the elements below ``container`` nest (its children: 1)."""
    return max(len(list(el.iterancestors(etree.Element))) for el in container.iter()) - 1


def test_an_ordinary_fragment_hits_no_limit() -> None:
    hits = LimitHits()
    html = '<p class="a">x <b>y</b></p>' * 300 + "<div>" * 200 + "z" + "</div>" * 200
    body = parse_fragment(html, hits)
    assert hits.counts() == {}
    assert serialize_fragment(body).count("<div>") == 200


def test_the_first_attributes_are_kept_and_the_rest_dropped() -> None:
    hits = LimitHits()
    attrs = " ".join(f'a{i}="v {i}"' for i in range(MAX_ATTRIBUTES + 50))
    body = parse_fragment(f'<img src="a.png" {attrs}><p title="t">after</p>', hits)
    img, p = list(body)
    assert len(img.attrib) == MAX_ATTRIBUTES
    assert img.get("src") == "a.png" and img.get("a0") == "v 0"
    assert p.get("title") == "t" and p.text == "after"
    assert hits.attributes == 51


def test_nesting_beyond_the_limit_is_flattened_and_nothing_after_it_lost() -> None:
    hits = LimitHits()
    deep = 3000
    body = parse_fragment("<p>before</p>" + "<div>" * deep + "deep" + "</div>" * deep
                          + "<p>after</p>", hits)  # fmt: skip
    html = serialize_fragment(body)
    assert "before" in html and "deep" in html and html.endswith("<p>after</p>")
    assert _depth(body) == MAX_DEPTH
    assert hits.depth == deep - MAX_DEPTH


def test_elements_beyond_the_limit_lose_their_tags_not_their_text() -> None:
    hits = LimitHits()
    body = parse_fragment("<p>x</p>" * (MAX_ELEMENTS + 10) + "<p>end &amp; more</p>", hits)
    assert sum(1 for _ in body.iterdescendants()) == MAX_ELEMENTS
    assert hits.elements == 11
    assert "".join(body.itertext()).endswith("xend & more")


def test_a_head_run_without_an_end_is_kept_as_libxml2_reads_it() -> None:
    html = "<title>t</title>" + "<head>" * 100 + "<p>text</p>"
    assert "text" in serialize_fragment(parse_fragment(html))
    whole = "<head><title>t</title></head><p>kept</p><head>x</head><p>too</p>"
    assert serialize_fragment(parse_fragment(whole)) == "<p>kept</p><p>too</p>"


def _names(k: int) -> str:
    return " ".join(f"b{i}" for i in range(k))


@pytest.mark.parametrize(
    "tag",
    [
        f'<img a=">" {_names(1000)}>',  # a quoted ">" does not end the tag
        f'<img a="<!--" {_names(1000)}>',  # nor a quoted "<" that looks like markup
        f'<img a="</x" {_names(1000)}>',
        '<img a="1"' + "".join(f'b{i}="x>"' for i in range(1000)) + ">",  # no spaces at all
    ],
    ids=["quoted >", "quoted comment", "quoted end tag", "no spaces"],
)
def test_no_disguise_hides_a_tags_attributes(tag: str) -> None:
    hits = LimitHits()
    body = parse_fragment(tag + "<p>after</p>", hits)
    assert len(body[0].attrib) == MAX_ATTRIBUTES and hits.attributes == 1001 - MAX_ATTRIBUTES
    assert body[1].text == "after"


def test_long_text_and_comments_are_not_attributes() -> None:
    hits = LimitHits()
    words = _names(1000)
    html = serialize_fragment(parse_fragment(f"<p>{words}</p><!-- {words} --><p>after</p>", hits))
    assert hits.counts() == {} and html == f"<p>{words}</p><p>after</p>"
