"""Explicit limits on one fragment of entry HTML: attributes, elements, depth (issue 18).

Without them libxml2 decided: it compares each attribute with every one before it (5,000
attributes on one ``<img>``: quadratic), it stops at depth 256 (2,048 with ``huge_tree``)
and silently drops everything after that point, and it builds half a million elements for
4 MB of ``<p>x</p>`` (over 200 bytes each, then paid again by every later stage). Here the
excess is dropped before libxml2 sees it, in one scan of the text, and counted for
``--explain``:

* ``MAX_ATTRIBUTES`` per element: the first ones are kept, the rest dropped;
* ``MAX_ELEMENTS`` per fragment: the tags after that many are dropped, their text kept;
* ``MAX_DEPTH``: elements nested deeper are flattened into their text (on the tree, after
  parsing; the text scan only keeps the nesting under libxml2's own cap of 2,048, so that
  nothing after a deep part is lost).

The scans run only when a cheap count says a limit may be near (``str.count`` of ``<``, one
regular expression for a long tag), so an ordinary entry pays two C-speed passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice

from lxml import etree

from feedfix.core.void_elements import VOID_ELEMENTS

MAX_ATTRIBUTES = 256
MAX_ELEMENTS = 50_000
MAX_DEPTH = 256
_TEXT_DEPTH = 1024  # the scan's bound on the text's nesting: libxml2 stops at 2,048

LIMIT_ATTRIBUTES = "limit-attributes"
LIMIT_DEPTH = "limit-depth"
LIMIT_ELEMENTS = "limit-elements"
UNITS = {
    LIMIT_ATTRIBUTES: f"attributes over the limit ({MAX_ATTRIBUTES} an element) dropped",
    LIMIT_DEPTH: f"elements nested deeper than the depth limit ({MAX_DEPTH}) flattened",
    LIMIT_ELEMENTS: f"elements over the limit ({MAX_ELEMENTS:,} an entry) dropped, text kept",
}

# Where a tag of more than MAX_ATTRIBUTES attributes may be: 512 characters without a "<"
# (2 an attribute at the least, a name and a separator), from any "<", even one inside a
# quoted value (a quoted "<" or ">" must not hide the rest of a tag). Literal "<" first and
# one character class: the 1,000 entries of bench_convert's feed in 2.9 ms, where counting
# the attributes of every tag with one pattern took 31.7 (5% of the whole conversion).
_LONG_RUN = re.compile(rf"<[^<]{{{2 * MAX_ATTRIBUTES}}}")
_TAG_NAME = re.compile(r"<[A-Za-z][^\s/<>]*")
_ATTRIBUTE = re.compile(r"""[\s/]*+[^\s/<>=]++(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s<>]*+))?+""")
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_.:-]*+)[^<>]*+>?")
_ANY_TAG = re.compile(r"<[^<>]*+>")
_START = re.compile(r"<[A-Za-z]")
_FLATTENED = "FeedfixFlattened"  # no parsed element has it: libxml2 lowercases names


@dataclass
class LimitHits:
    """What the limits dropped in one entry, for its report."""

    attributes: int = 0
    depth: int = 0
    elements: int = 0

    def __bool__(self) -> bool:
        return bool(self.attributes or self.depth or self.elements)

    def counts(self) -> dict[str, int]:
        """The report lines of the limits that were hit."""
        found = {LIMIT_ATTRIBUTES: self.attributes, LIMIT_DEPTH: self.depth}
        found[LIMIT_ELEMENTS] = self.elements
        return {name: count for name, count in found.items() if count}


def bound_markup(markup: str, hits: LimitHits, tags: int) -> str:
    """``markup`` with the excess attributes and elements dropped and its nesting kept under
    libxml2's cap; ``markup`` itself when no limit is near. ``tags``: its count of ``<``."""
    if len(markup) > 2 * MAX_ATTRIBUTES:
        markup = _trim_attributes(markup, hits)
    if tags > _TEXT_DEPTH:
        markup = _bound_tags(markup, hits)
    return markup


def _trim_attributes(markup: str, hits: LimitHits) -> str:
    """Every tag's attributes after the first ``MAX_ATTRIBUTES`` dropped; ``markup`` itself
    when none has that many.

    Each long run is traced back to the start tag it may be in (the last ``<`` and a letter
    before it, never further back than the run before), whose attributes are then counted
    as libxml2 reads them, quotes and all: every character is looked at a bounded number of
    times, so this is linear however the tags are built."""
    out: list[str] = []
    last = floor = 0
    for run in _LONG_RUN.finditer(markup):
        start = run.start()
        while start >= floor and not _starts_tag(markup, start):
            start = markup.rfind("<", floor, start)
        floor = run.start()
        if start < last:
            continue  # no start tag since the run before, or the tag just trimmed
        name = _TAG_NAME.match(markup, start)
        pos, kept, cut = name.end() if name else start + 1, 0, -1
        while (attribute := _ATTRIBUTE.match(markup, pos)) is not None:
            kept += 1
            if kept == MAX_ATTRIBUTES + 1:
                cut = pos
            pos = attribute.end()
        if cut >= 0:
            out.append(markup[last:cut])
            last = pos
            hits.attributes += kept - MAX_ATTRIBUTES
    if not out:
        return markup
    out.append(markup[last:])
    return "".join(out)


def _starts_tag(markup: str, at: int) -> bool:
    """Whether the ``<`` at ``at`` opens a start tag (a letter follows it)."""
    after = markup[at + 1 : at + 2]
    return after.isascii() and after.isalpha()


def _bound_tags(markup: str, hits: LimitHits) -> str:
    """Start tags after the ``MAX_ELEMENTS``-th dropped with every tag after them (their text
    kept), and tags nested deeper than ``_TEXT_DEPTH`` by a count of the text's own start and
    end tags (never less than libxml2's real depth) dropped with their end tags."""
    cut = len(markup)
    if markup.count("<") > MAX_ELEMENTS:
        beyond = next(islice(_START.finditer(markup), MAX_ELEMENTS, None), None)
        cut = beyond.start() if beyond is not None else cut
    out: list[str] = []
    last = depth = 0
    opened: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for tag in _TAG.finditer(markup, 0, cut):
        name = tag.group(2).lower()
        if name in VOID_ELEMENTS:
            continue
        if not tag.group(1):
            if depth < _TEXT_DEPTH:
                depth += 1
                opened[name] = opened.get(name, 0) + 1
                continue
            dropped[name] = dropped.get(name, 0) + 1
            hits.depth += 1
        elif dropped.get(name):
            dropped[name] -= 1
        else:
            if opened.get(name):
                opened[name] -= 1
                depth -= 1
            continue
        out.append(markup[last : tag.start()])
        last = tag.end()
    out.append(markup[last:cut])
    if cut < len(markup):
        rest = markup[cut:]
        text, tags = _ANY_TAG.subn("", rest)
        hits.elements += max(0, tags - rest.count("</") - rest.count("<!"))  # start tags
        out.append(text.replace("<", "&lt;"))
    return "".join(out)


_TOO_DEEP = etree.XPath("/".join(["*"] * (MAX_DEPTH + 1)))  # the elements one level too deep


def bound_depth(container: etree._Element, hits: LimitHits) -> None:
    """Elements nested deeper than ``MAX_DEPTH`` below ``container`` flattened into their
    text (their tags dropped, their text and what follows them kept)."""
    deep = _TOO_DEEP(container)
    if not isinstance(deep, list) or not deep:
        return
    for el in deep:
        if isinstance(el, etree._Element):
            hits.depth += sum(1 for _ in el.iter())
            etree.strip_tags(el, "*")
            el.tag = _FLATTENED
    etree.strip_tags(container, _FLATTENED)
