"""Simple CSS selectors matched by reading attributes mean what cssselect's XPath means.

``feedfix.core.rules.selectors`` answers lists of simple selectors (a tag, ``#id``s,
``.class``es) without XPath; everything else goes to cssselect. Over hypothesis-made trees and
selectors, both ways must pick the same elements in the same order.
"""

from __future__ import annotations

import cssselect
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml.cssselect import CSSSelector, LxmlTranslator

from feedfix.core.rules.junk import DEFAULT_JUNK
from feedfix.core.rules.selectors import Selectors, plain, simple

TAGS = ["div", "p", "span", "DIV"]
IDS = ["a", "b", "a b", ""]
CLASSES = ["x", "x y", " x\ty\n", "xy", "x\u00a0y", "y x x", "", "X"]


@st.composite
def trees(draw: st.DrawFn) -> etree._Element:
    """A body with a few levels of elements carrying ids and classes (or not)."""
    root = etree.Element("body")
    parents = [root]
    for _ in range(draw(st.integers(0, 12))):
        parent = draw(st.sampled_from(parents))
        el = etree.SubElement(parent, draw(st.sampled_from(TAGS)))
        if draw(st.booleans()):
            el.set("id", draw(st.sampled_from(IDS)))
        if draw(st.booleans()):
            el.set("class", draw(st.sampled_from(CLASSES)))
        parents.append(el)
    return root


simple_selectors = st.builds(
    lambda tag, ids, classes: tag + "".join(ids) + "".join(classes) or "*",
    st.sampled_from(["", "div", "p", "*", "DIV"]),
    st.lists(st.sampled_from(["#a", "#b", r"#a\ b"]), max_size=2),
    st.lists(st.sampled_from([".x", ".y", ".xy", r".x\ y", ".X"]), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(trees(), st.lists(simple_selectors, min_size=1, max_size=3))
def test_simple_selectors_pick_what_cssselect_picks(
    root: etree._Element, selectors: list[str]
) -> None:
    """The same elements, in document order, and the same answer element by element."""
    compiled = Selectors("selectors", tuple(selectors))
    assert compiled.simple is not None, selectors
    joined = ", ".join(selectors)
    assert compiled.search(root) == CSSSelector(joined)(root)
    itself = etree.XPath(LxmlTranslator().css_to_xpath(joined, prefix="self::"))
    for el in root.iter(etree.Element):
        assert compiled.matches(el) == bool(itself(el)), (joined, etree.tostring(el))
        if compiled.ids_only is not None:  # what drop-empty-junk notes in the walk
            assert (el.get("id") in compiled.ids_only) == bool(itself(el)), joined


def test_the_defaults_take_the_simple_way_and_others_the_xpath() -> None:
    """ZAKER's trailers are found without XPath; combinators and pseudo-classes still work."""
    assert Selectors("selectors", DEFAULT_JUNK).simple is not None
    assert Selectors("selectors", DEFAULT_JUNK).ids_only == frozenset(
        {"recommend_bottom", "article_bottom"}
    )
    for more in ("div#a", "#a.x", "#a#b", ".x", "#a, p"):
        assert Selectors("selectors", ("#b", more)).ids_only is None, more
    complex_ = Selectors("selectors", ("div > p:empty", "a[href]"))
    assert complex_.simple is None
    root = etree.fromstring("<body><div><p></p><p>t</p></div><a href='x'>a</a><a>b</a></body>")
    assert [el.tag for el in complex_.search(root)] == ["p", "a"]


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True)
plain_selectors = st.builds(
    lambda space, tag, parts: space + tag + "".join(parts) + space,
    st.sampled_from(["", " ", "\t"]),
    st.one_of(
        st.just(""), st.just("*"), st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,5}", fullmatch=True)
    ),
    st.lists(st.builds(lambda kind, name: kind + name, st.sampled_from("#."), names), max_size=3),
).filter(lambda s: s.strip())


@settings(max_examples=500, deadline=None)
@given(plain_selectors)
def test_plainly_written_selectors_read_as_cssselect_reads_them(selector: str) -> None:
    """The selectors read without cssselect are read as cssselect reads them."""
    (parsed,) = cssselect.parse(selector)
    assert plain(selector) == simple(parsed)


def test_other_selectors_are_left_to_cssselect() -> None:
    """Escapes, combinators, attributes, pseudo-classes and lists are not read plainly."""
    for selector in (r"#a\:b", "div p", "a[href]", "p:empty", "#a, #b", "", "#1a", "\xa0#a"):
        assert plain(selector) is None, selector
