"""CSS selectors for drop-empty-junk and remove: cssselect's meaning, found cheaply.

cssselect parses every selector and turns it into XPath. A list made only of simple selectors
(a tag, ``#id``s and ``.class``es, as the defaults ``#recommend_bottom, #article_bottom``) is
matched by reading each element's ``id`` and ``class`` instead, with the very tests cssselect's
XPath makes (``@id = 'x'``; ``' x '`` in the space-normalised class, never a name with a
space in it). drop-empty-junk over a ZAKER entry took 344 thousand instructions with the XPath
and takes 192 thousand this way (callgrind); ``tests/core/test_selectors.py`` holds the two
ways to the same answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

_XPATH_SPACE = re.compile(r"[ \t\r\n]+")  # XPath's normalize-space() whitespace, no more
_CLASS_NAME = re.compile(r"[^ \t\r\n\f]+")  # a class name cssselect can match at all


@dataclass(frozen=True, slots=True)
class Simple:
    """One simple selector: an element name (``None``: any) with ids and classes."""

    tag: str | None
    ids: tuple[str, ...]
    classes: tuple[str, ...]

    def matches(self, el: etree._Element) -> bool:
        """Whether ``el`` is one this selector picks, as its XPath would decide."""
        if self.tag is not None and el.tag != self.tag:
            return False
        if self.ids:
            found = el.get("id")
            if any(found != wanted for wanted in self.ids):
                return False
        if self.classes:
            value = el.get("class")
            if value is None or not all(_CLASS_NAME.fullmatch(c) for c in self.classes):
                return False  # cssselect's XPath for a class name with a space is "0"
            spaced = f" {_XPATH_SPACE.sub(' ', value).strip(' ')} "
            return all(f" {c} " in spaced for c in self.classes)
        return True


def simple(selector: Any) -> Simple | None:
    """A parsed cssselect ``Selector`` as a ``Simple`` one; ``None`` when it is more."""
    if selector.pseudo_element is not None:
        return None
    tree = selector.parsed_tree
    ids: list[str] = []
    classes: list[str] = []
    while True:
        kind = type(tree).__name__
        if kind == "Hash":
            ids.append(tree.id)
        elif kind == "Class":
            classes.append(tree.class_name)
        elif kind == "Element" and tree.namespace is None:
            return Simple(tree.element, tuple(reversed(ids)), tuple(reversed(classes)))
        else:
            return None
        tree = tree.selector


class Selectors:
    """A list of CSS selectors, compiled once: which elements of a fragment match."""

    def __init__(self, option: str, selectors: tuple[str, ...]) -> None:
        from cssselect import parse  # noqa: PLC0415 - lxml.cssselect imports it anyway
        from lxml.cssselect import CSSSelector, LxmlTranslator  # noqa: PLC0415

        parsed = []
        for selector in selectors:
            try:
                CSSSelector(selector)
                parsed.extend(parse(selector))
            except Exception as exc:  # cssselect raises its SelectorSyntaxError/ExpressionError
                raise ValueError(
                    f"option {option!r}: bad CSS selector {selector!r}: {exc}"
                ) from exc
        found = [simple(p) for p in parsed]
        self.simple: tuple[Simple, ...] | None = (
            tuple(s for s in found if s is not None) if all(found) else None
        )
        joined = ", ".join(selectors)
        self._search = CSSSelector(joined)
        self._self = etree.XPath(LxmlTranslator().css_to_xpath(joined, prefix="self::"))
        tags = {s.tag for s in self.simple or ()}
        self._tags = tuple(tags) if self.simple and None not in tags else ()
        # Every selector names an id: an element without one of them cannot match.
        ids = [s.ids[0] for s in self.simple or () if s.ids]
        self._ids = frozenset(ids) if self.simple and len(ids) == len(self.simple) else None

    def search(self, container: etree._Element) -> list[etree._Element]:
        """The container and the elements below it that match, in document order."""
        if self.simple is None:
            return list(self._search(container))
        found = container.iter(*self._tags) if self._tags else container.iter(etree.Element)
        if self._ids is not None:
            ids = self._ids
            return [el for el in found if el.get("id") in ids and self.matches(el)]
        return [el for el in found if self.matches(el)]

    def matches(self, el: etree._Element) -> bool:
        """Whether ``el`` matches one of the selectors."""
        if self.simple is None:
            return bool(self._self(el))
        return any(s.matches(el) for s in self.simple)
