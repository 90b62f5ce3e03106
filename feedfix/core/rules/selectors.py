"""CSS selectors for drop-empty-junk and remove: cssselect's meaning, found cheaply.

cssselect reads the selectors and turns them into XPath. A list made only of simple selectors
(a tag, ``#id``s and ``.class``es, as the defaults ``#recommend_bottom, #article_bottom``) is
matched by reading each element's ``id`` and ``class`` instead, with the very tests cssselect's
XPath makes (``@id = 'x'``; ``' x '`` in the space-normalised class, never a name with a
space in it). drop-empty-junk over a ZAKER entry took 344 thousand instructions with the XPath
and takes 192 thousand this way (callgrind); ``tests/core/test_selectors.py`` holds the two
ways to the same answers.
"""

from __future__ import annotations

import functools
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


# A selector written as plainly as the defaults: a tag or ``*``, then ``#id``s and ``.class``es
# made of ASCII letters, digits, ``_`` and ``-`` (no escapes). cssselect parses it the obvious
# way (tests/core/test_selectors.py holds the two to the same answer), and importing cssselect
# (its parser compiles its patterns at import) cost every ``feedfix convert`` 3.5 ms of CPU.
_PLAIN = re.compile(r"(\*|[A-Za-z][A-Za-z0-9-]*)?((?:[#.][A-Za-z_][A-Za-z0-9_-]*)*)")
_PLAIN_PART = re.compile(r"([#.])([A-Za-z_][A-Za-z0-9_-]*)")
_CSS_SPACE = " \t\n\r\f"


def plain(selector: str) -> Simple | None:
    """A plainly written simple selector, read without cssselect; ``None`` for any other."""
    match = _PLAIN.fullmatch(selector.strip(_CSS_SPACE))
    if match is None or not any(match.groups()):
        return None
    tag = match.group(1)
    parts = _PLAIN_PART.findall(match.group(2))
    return Simple(
        None if tag in (None, "*") else tag,
        tuple(name for kind, name in parts if kind == "#"),
        tuple(name for kind, name in parts if kind == "."),
    )


class Selectors:
    """A list of CSS selectors, compiled once: which elements of a fragment match."""

    def __init__(self, option: str, selectors: tuple[str, ...]) -> None:
        found = [plain(selector) for selector in selectors]
        if not all(found):
            found = self._parse(option, selectors)
        self.simple: tuple[Simple, ...] | None = (
            tuple(s for s in found if s is not None) if all(found) else None
        )
        self._joined = ", ".join(selectors)
        tags = {s.tag for s in self.simple or ()}
        self._tags = tuple(tags) if self.simple and None not in tags else ()
        # Every selector names an id: an element without one of them cannot match.
        ids = [s.ids[0] for s in self.simple or () if s.ids]
        self._ids = frozenset(ids) if self.simple and len(ids) == len(self.simple) else None
        # Every selector is one #id and nothing else (as the defaults): an element matches
        # when its id is one of them, which its attributes tell.
        alone = bool(self.simple) and all(
            len(s.ids) == 1 and s.tag is None and not s.classes for s in self.simple or ()
        )
        self.ids_only: frozenset[str] | None = self._ids if alone else None

    @staticmethod
    def _parse(option: str, selectors: tuple[str, ...]) -> list[Simple | None]:
        """cssselect's reading of the selectors (ValueError naming a bad one)."""
        from cssselect import parse  # noqa: PLC0415 - only selectors written otherwise need it
        from lxml.cssselect import CSSSelector  # noqa: PLC0415

        parsed = []
        for selector in selectors:
            try:
                CSSSelector(selector)
                parsed.extend(parse(selector))
            except Exception as exc:  # cssselect raises its SelectorSyntaxError/ExpressionError
                raise ValueError(
                    f"option {option!r}: bad CSS selector {selector!r}: {exc}"
                ) from exc
        return [simple(p) for p in parsed]

    @functools.cached_property
    def _xpath(self) -> tuple[etree.XPath, etree.XPath]:
        """cssselect's XPath for the list: searching below an element, and testing one."""
        from lxml.cssselect import CSSSelector, LxmlTranslator  # noqa: PLC0415

        itself = LxmlTranslator().css_to_xpath(self._joined, prefix="self::")
        return CSSSelector(self._joined), etree.XPath(itself)

    def search(self, container: etree._Element) -> list[etree._Element]:
        """The container and the elements below it that match, in document order."""
        if self.simple is None:
            return list(self._xpath[0](container))
        found = container.iter(*self._tags) if self._tags else container.iter(etree.Element)
        if self._ids is not None:
            ids = self._ids
            return [el for el in found if el.get("id") in ids and self.matches(el)]
        return [el for el in found if self.matches(el)]

    def matches(self, el: etree._Element) -> bool:
        """Whether ``el`` matches one of the selectors."""
        if self.simple is None:
            return bool(self._xpath[1](el))
        return any(s.matches(el) for s in self.simple)
