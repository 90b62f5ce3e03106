"""drop-empty-junk and remove: take out elements chosen by CSS selectors.

``DropEmptyJunk.drop`` is drop-empty-junk's one decision, which elements go. ``convert`` makes
it on the parsed fragment; ``fix-posts`` on a tree built from a post's tokens, whose elements
it then cuts out of the text as spans (``feedfix.core.mend``): one selector engine (cssselect)
and one meaning of "empty" for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from lxml import etree

from feedfix.core.html import drop_trees
from feedfix.core.rules.base import Rule, string_list
from feedfix.core.rules.selectors import Selectors
from feedfix.core.rules.walk import Attributes, Visit

DEFAULT_JUNK = ("#recommend_bottom", "#article_bottom")
MEDIA_TAGS = frozenset(
    {"img", "picture", "video", "audio", "iframe", "svg", "object", "embed", "source", "canvas"}
)
MAX_PASSES = 64  # each pass removes at least one element, so nesting deeper than this is absurd


def compile_selectors(option: str, selectors: tuple[str, ...]) -> Selectors | None:
    """The selectors compiled once (ValueError naming a bad one); ``None`` for none."""
    return Selectors(option, selectors) if selectors else None


_BLANK = " \t\r\n\f\xa0\u3000\u200b"


def is_empty(el: etree._Element) -> bool:
    """No visible text and no media anywhere inside."""
    if not len(el):  # no children, as ZAKER's trailers: no generators to start
        return not (el.text or "").strip(_BLANK) and el.tag not in MEDIA_TAGS
    if "".join(el.itertext()).strip(_BLANK):
        return False
    return not any(isinstance(d.tag, str) and d.tag in MEDIA_TAGS for d in el.iter())


class DropEmptyJunk(Rule):
    """Remove empty trailer elements (#recommend_bottom, #article_bottom by default).

    An element matched by a selector goes only when it holds no text and no media; removal
    repeats until nothing more goes, so a trailer that is empty once its empty child is gone
    goes too. A non-empty one stays: nothing of the article is ever lost.
    """

    name = "drop-empty-junk"
    unit = "elements"
    default_on = True
    options: ClassVar[Mapping[str, str]] = {
        "selectors": "CSS selectors of elements to remove when empty"
    }

    def __init__(self, selectors: list[str] | None = None) -> None:
        chosen = string_list("selectors", selectors) if selectors is not None else DEFAULT_JUNK
        self.selector = compile_selectors("selectors", chosen)
        self._visit = _DropVisit(self)

    def visit(self) -> Visit:
        """Empty matches go, after the rules before it are done with the fragment. Selectors
        that are ids alone (as the defaults) are matched in the walk the rules share."""
        ids = self.selector.ids_only if self.selector is not None else None
        return _NotingDropVisit(self, ids) if ids is not None else self._visit

    def drop(
        self, container: etree._Element, candidates: list[etree._Element] | None = None
    ) -> list[etree._Element]:
        """Remove empty matches until a pass removes nothing; the removed elements, in the
        order they went (an element's removed descendants before it). ``candidates``: the
        fragment's matches in document order, when the walk has found them.

        After the first search, a pass looks only at the matching ancestors of what the last
        one removed: nothing else can have become empty. Searching the whole fragment again
        cost a ZAKER feed 0.03 s of its 0.85 s.
        """
        selector = self.selector
        if selector is None:
            return []
        removed: list[etree._Element] = []
        if candidates is None:
            candidates = selector.search(container)
        for _ in range(MAX_PASSES):
            empty = [el for el in candidates if el.getparent() is not None and is_empty(el)]
            if not empty:
                break
            above: dict[etree._Element, None] = {}
            for el in empty:
                for ancestor in el.iterancestors():
                    if ancestor is container:
                        break
                    above[ancestor] = None
            drop_trees(container, empty)
            removed.extend(empty)
            candidates = [el for el in above if el.getparent() is not None and selector.matches(el)]
        return removed


class _DropVisit(Visit):
    reshapes = True

    def __init__(self, rule: DropEmptyJunk) -> None:
        self.rule = rule

    def done(self, container: etree._Element) -> int:
        return len(self.rule.drop(container))


class _NotingDropVisit(Visit):
    """drop-empty-junk for selectors that are ids alone: the elements with one of the ids
    are noted in the walk, so that ``drop`` need not search the fragment again."""

    attributed = True
    observes = True
    reshapes = True

    def __init__(self, rule: DropEmptyJunk, ids: frozenset[str]) -> None:
        self.rule = rule
        self.ids = ids
        self.noted: list[etree._Element] = []

    def element(self, el: etree._Element, attributes: Attributes) -> int:
        for name, value in attributes:
            if name == "id":
                if value in self.ids:
                    self.noted.append(el)
                break
        return 0

    def forget(self) -> None:
        self.noted = []

    def done(self, container: etree._Element) -> int:
        """The walk hands it what is below the container; a search includes the container."""
        noted = self.noted
        if container.get("id") in self.ids:
            noted = [container, *noted]
        return len(self.rule.drop(container, noted))


class Remove(Rule):
    """Remove elements matched by CSS selectors, with their content (off unless configured).

    For site furniture that is not article: share bars, "related articles", ads.
    """

    name = "remove"
    unit = "elements"
    options: ClassVar[Mapping[str, str]] = {
        "selectors": "CSS selectors of elements to remove, content and all"
    }

    def __init__(self, selectors: list[str] | None = None) -> None:
        self.selector = compile_selectors("selectors", string_list("selectors", selectors or []))

    def is_active(self) -> bool:
        """Active once it has selectors."""
        return self.selector is not None

    def visit(self) -> Visit:
        """Every match goes, after the rules before it are done with the fragment."""
        return _RemoveVisit(self.selector)


class _RemoveVisit(Visit):
    reshapes = True

    def __init__(self, selector: Selectors | None) -> None:
        self.selector = selector

    def done(self, container: etree._Element) -> int:
        if self.selector is None:
            return 0
        matches = [el for el in self.selector.search(container) if el is not container]
        drop_trees(container, matches)
        return len(matches)
