"""HTML (and the HTML inside Markdown) as tokens with offsets: tags, attributes, text.

A tokenizer over the decoded text rather than a parser: a parser would hand back a tree whose
serialisation differs from the input in quoting, entity spelling and attribute order, and the
point of mending is that nothing changes except the spans a rule asks for.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from feedfix.core.html import xml_chars
from feedfix.core.void_elements import VOID_ELEMENTS

# A comment, an end tag, or a start tag whose quoted values may hold ``>``; as in the HTML
# tokenizer, a quote opens a value only right after ``=`` (a stray one is text). The name must be
# followed by space, ``/`` or ``>``, so a Markdown autolink ``<https://…>`` is not a tag. One
# ``finditer`` over the text (possessive runs, a shared ``<``) is about four times faster than
# searching token by token. As in a browser, a comment or a start tag left open runs to the end
# of the text (``open``: the rest is then no tag at all): were they tried again at every ``<``
# after them, each to the end, thousands of unclosed ``<a `` or ``<!--`` cost quadratic time.
_TOKEN = re.compile(
    r"<(?:!--.*?(?:-->|\Z)"
    r"|/(?P<end>[A-Za-z][A-Za-z0-9:-]*)\s*+>"
    r"|(?P<name>[A-Za-z][A-Za-z0-9-]*(?::[A-Za-z][A-Za-z0-9-]*)?)(?=[\s/>])"
    r"(?P<attrs>(?:[^>=]++|=\s*+(?:\"[^\"]*+\"|'[^']*+')?+)*+)(?:>|(?P<open>\Z)))",
    re.S,
)
# The space before an attribute is part of its match, so deleting it is one span. A run of
# spaces before no name is a match of its own (group 1 empty), so that no run is read again
# from each of its spaces (quadratic).
_ATTR = re.compile(
    r"\s*+(?:([^\s\"'>/=]+)"
    r"(?:\s*+=\s*+(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?)?"
)
_QUOTES = ("none", "none", '"', "'", "")  # by the index of the group that matched
RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp"})


@dataclass(slots=True)
class Attribute:
    """One attribute and where its parts are in the text."""

    name: str  # lower-cased
    name_start: int
    name_end: int
    value_start: int  # inside the quotes; equal to name_end when there is no value
    value_end: int
    quote: str  # '"', "'", "" (unquoted) or "none" (no value at all)
    raw: str  # the value as written, entities and all
    cut_start: int  # where deleting this attribute starts (the space before it)

    @property
    def value(self) -> str:
        """The value as a browser reads it (entities decoded)."""
        return html.unescape(self.raw) if "&" in self.raw else self.raw


@dataclass(slots=True)
class Tag:
    """A start tag, an end tag or a comment (``kind``), with its span."""

    kind: str  # "start" | "end" | "comment"
    name: str  # lower-cased; "" for a comment
    start: int
    end: int
    attrs_start: int = 0
    attrs_end: int = 0

    def attributes(self, text: str, holding: list[int] | None = None) -> list[Attribute]:
        """The tag's attributes in order; a repeated name keeps its first (as browsers do).

        With ``holding`` (sorted positions), only the attributes that hold one of them are
        built: unwrapping needs those alone, and building the rest cost most of the time.
        """
        if holding is not None:
            return self._holding(text, holding)
        out: list[Attribute] = []
        seen: set[str] = set()
        for match in _ATTR.finditer(text, self.attrs_start, self.attrs_end):
            if match.group(1) is None:
                continue
            name = match.group(1).lower()
            if name in seen:
                continue
            seen.add(name)
            n0, n1 = match.span(1)
            group = match.lastindex or 1
            v0, v1 = match.span(group) if group > 1 else (n1, n1)
            out.append(Attribute(name, n0, n1, v0, v1, _QUOTES[group], text[v0:v1], match.start()))
        return out

    def _holding(self, text: str, positions: list[int]) -> list[Attribute]:
        out: list[Attribute] = []
        seen: set[str] = set()
        index = bisect_left(positions, self.attrs_start)
        count = len(positions)
        for match in _ATTR.finditer(text, self.attrs_start, self.attrs_end):
            if match.group(1) is None:
                continue
            start, end = match.span()
            while index < count and positions[index] < start:
                index += 1
            if index >= count or positions[index] >= self.attrs_end:
                break
            name = match.group(1).lower()
            if name in seen:  # a repeated attribute is ignored, as by browsers
                continue
            seen.add(name)
            if positions[index] >= end:
                continue
            n0, n1 = match.span(1)
            group = match.lastindex or 1
            v0, v1 = match.span(group) if group > 1 else (n1, n1)
            out.append(Attribute(name, n0, n1, v0, v1, _QUOTES[group], text[v0:v1], start))
        return out


def tags(text: str, start: int, end: int) -> Iterator[Tag]:
    """Every tag and comment in ``text[start:end]``, in order. Inside a raw-text element (a
    script, a style) nothing is a tag until its end tag; if that is never found, nothing more
    is, which leaves the rest alone rather than guess."""
    raw_until: str | None = None
    for match in _TOKEN.finditer(text, start, end):
        if match.group("open") is not None:
            return  # a start tag left open: the rest is no tag
        end_name = match.group("end")
        if end_name is not None:
            name = end_name.lower()
            if raw_until is not None and name != raw_until:
                continue
            raw_until = None
            yield Tag("end", name, match.start(), match.end())
        elif raw_until is not None:
            continue
        elif match.group("name") is not None:
            name = match.group("name").lower()
            yield Tag("start", name, match.start(), match.end(), *match.span("attrs"))
            if name in RAW_TEXT:
                raw_until = name
        else:
            yield Tag("comment", "", match.start(), match.end())


def text_regions(tokens: list[Tag], start: int, end: int) -> Iterator[tuple[int, int]]:
    """The spans between tags, leaving out raw-text element content (scripts, styles)."""
    position = start
    raw_until: str | None = None
    for tag in tokens:
        if raw_until is None and tag.start > position:
            yield position, tag.start
        if tag.kind == "start" and tag.name in RAW_TEXT:
            raw_until = tag.name
        elif tag.kind == "end" and tag.name == raw_until:
            raw_until = None
        position = tag.end
    if raw_until is None and end > position:
        yield position, end


_ATTR_UNSAFE_UNQUOTED = re.compile(r"[\s\"'=<>`]")


def attribute_value(new: str, attr: Attribute) -> str:
    """``new`` written for the attribute's place: its quoting, its way of spelling ``&``.

    ``&`` is written ``&amp;`` unless the author wrote bare ``&`` in this value; an unquoted
    value that would need quotes gets double quotes.
    """
    raw = attr.raw
    if "&amp;" in raw or "&" not in raw:
        new = new.replace("&", "&amp;")
    if attr.quote == '"':
        return new.replace('"', "&quot;")
    if attr.quote == "'":
        return new.replace("'", "&#39;")
    if _ATTR_UNSAFE_UNQUOTED.search(new):
        return '"' + new.replace('"', "&quot;") + '"'
    return new


_TEXT_UNSAFE = re.compile(r"[\s<>\"'()\[\]{}`]")


def text_url(new: str, raw: str, *, markdown: bool) -> str | None:
    """``new`` written where ``raw`` was in text; ``None`` when it cannot stand there as is."""
    if "&amp;" in raw or (not markdown and "&" not in raw):
        new = new.replace("&", "&amp;")
    return None if _TEXT_UNSAFE.search(new) else new


_RAW_TEXT_TAG = re.compile(r"<(?i:script|style|textarea|title|xmp)[\s/>]")


def locate(
    text: str, start: int, end: int, positions: list[int]
) -> tuple[list[Tag], list[tuple[int, int]]]:
    """The start tags and the text stretches that hold the sorted ``positions``.

    The same tokens as ``tags`` and ``text_regions`` give, without building the ones no
    position falls in: with a few URLs in a long post that is most of the cost.
    """
    found: list[Tag] = []
    texts: list[tuple[int, int]] = []
    track_raw = _RAW_TEXT_TAG.search(text, start, end) is not None
    raw_until: str | None = None
    index, count, previous = 0, len(positions), start
    for match in _TOKEN.finditer(text, start, end):
        if (index >= count and raw_until is None) or match.group("open") is not None:
            break  # (a start tag left open: the rest is no tag, so text as ``tags`` says)
        s, e = match.span()
        if index < count and positions[index] < s:
            if raw_until is None:
                texts.append((previous, s))
            while index < count and positions[index] < s:
                index += 1
        kind = match.lastgroup
        if index < count and positions[index] < e:
            if raw_until is None and kind == "attrs":
                name = match.group("name").lower()
                found.append(Tag("start", name, s, e, *match.span("attrs")))
            while index < count and positions[index] < e:
                index += 1
        if track_raw:
            if raw_until is not None:
                if kind == "end" and match.group("end").lower() == raw_until:
                    raw_until = None
            elif kind == "attrs" and match.group("name").lower() in RAW_TEXT:
                raw_until = match.group("name").lower()
        previous = e
    if index < count and raw_until is None:
        texts.append((previous, end))
    return found, texts


def element_tree(
    text: str, tokens: list[Tag]
) -> tuple[etree._Element, dict[etree._Element, tuple[int, int]]]:
    """The tokens as a tree (under a ``body``, as ``feedfix.core.html.parse_fragment`` gives
    one), for the rules' decisions that need elements; and each element's span, from its
    start tag to the end of its end tag (a void element: its start tag). An element closed by
    another's end tag, or never, has no span: it cannot be cut out as one. Text before the
    first tag is left out: it belongs to no element that could have a span."""
    root = etree.Element("body")
    spans: dict[etree._Element, tuple[int, int]] = {}
    open_: list[tuple[str, etree._Element, int]] = [("", root, 0)]  # name, element, start
    position = tokens[0].start if tokens else 0
    for tag in tokens:
        if tag.start > position:
            _add_text(open_[-1][1], text[position : tag.start])
        position = tag.end
        if tag.kind == "start":
            attributes = {
                a.name: xml_chars(a.value) for a in tag.attributes(text) if _NAME.fullmatch(a.name)
            }
            name = tag.name if _NAME.fullmatch(tag.name) else "x-unnamed"
            el = etree.SubElement(open_[-1][1], name, attributes)
            if tag.name in VOID_ELEMENTS:
                spans[el] = (tag.start, tag.end)
            else:
                open_.append((tag.name, el, tag.start))
        elif tag.kind == "end":
            depth = next((d for d in range(len(open_) - 1, 0, -1) if open_[d][0] == tag.name), 0)
            if depth:  # a stray end tag closes nothing; this one closes what is open inside
                _, el, start = open_[depth]
                del open_[depth:]
                spans[el] = (start, tag.end)
    return root, spans


def _add_text(parent: etree._Element, chunk: str) -> None:
    chunk = xml_chars(html.unescape(chunk) if "&" in chunk else chunk)
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + chunk
    else:
        parent.text = (parent.text or "") + chunk


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")  # names lxml takes (no ``:``: no namespaces)
