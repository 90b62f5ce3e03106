"""drop-empty-junk as spans: the outermost matched elements that hold no text and no media."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from feedfix.core.html import VOID_ELEMENTS
from feedfix.core.mend.markup import RAW_TEXT, Tag
from feedfix.core.rules.junk import MEDIA_TAGS

_SIMPLE_SELECTOR = re.compile(r"(?P<tag>[A-Za-z][A-Za-z0-9-]*)?(?P<rest>(?:[#.][\w-]+)*)")
_BLANK = " \t\r\n\f\xa0\u3000\u200b"


@dataclass(frozen=True, slots=True)
class Selector:
    """A simple CSS selector (``tag``, ``#id``, ``.class`` and their combinations)."""

    tag: str | None
    id: str | None
    classes: frozenset[str]

    @classmethod
    def parse(cls, selector: str) -> Selector:
        """ValueError for anything but a simple selector: spans cannot follow combinators."""
        match = _SIMPLE_SELECTOR.fullmatch(selector.strip())
        if match is None or not selector.strip():
            raise ValueError(
                f"fix-posts understands only simple selectors (tag, #id, .class): {selector!r}"
            )
        rest = match.group("rest")
        ids = re.findall(r"#([\w-]+)", rest)
        if len(ids) > 1:
            raise ValueError(f"selector {selector!r} names two ids")
        tag = match.group("tag")
        return cls(tag.lower() if tag else None, ids[0] if ids else None,
                   frozenset(re.findall(r"\.([\w-]+)", rest)))  # fmt: skip

    def matches(self, tag: Tag, text: str) -> bool:
        """Whether the start tag is one this selector picks."""
        if self.tag is not None and tag.name != self.tag:
            return False
        if self.id is None and not self.classes:
            return True
        attrs = {a.name: a.value for a in tag.attributes(text)}
        if self.id is not None and attrs.get("id") != self.id:
            return False
        return self.classes <= set((attrs.get("class") or "").split())


def junk_spans(
    text: str, tokens: list[Tag], selectors: tuple[Selector, ...]
) -> list[tuple[int, int]]:
    """Spans of the outermost matched elements that hold no text and no media."""
    spans: list[tuple[int, int]] = []
    for index, tag in enumerate(tokens):
        if tag.kind != "start" or tag.name in VOID_ELEMENTS or (spans and tag.start < spans[-1][1]):
            continue
        if not any(s.matches(tag, text) for s in selectors):
            continue
        close = _closing(tokens, index)
        if close is not None and _empty(text, tokens, index, close):
            spans.append((tag.start, tokens[close].end))
    return spans


def _closing(tokens: list[Tag], index: int) -> int | None:
    name, depth = tokens[index].name, 0
    for position in range(index, len(tokens)):
        tag = tokens[position]
        if tag.name != name:
            continue
        if tag.kind == "start":
            depth += 1
        elif tag.kind == "end":
            depth -= 1
            if depth == 0:
                return position
    return None


def _empty(text: str, tokens: list[Tag], open_index: int, close_index: int) -> bool:
    """No visible text and no media between the two tags (drop-empty-junk's ``is_empty``)."""
    inner = tokens[open_index + 1 : close_index]
    if any(t.kind == "start" and (t.name in MEDIA_TAGS or t.name in RAW_TEXT) for t in inner):
        return False
    position = tokens[open_index].end
    for tag in [*inner, tokens[close_index]]:
        chunk = text[position : tag.start]
        if chunk and (html.unescape(chunk) if "&" in chunk else chunk).strip(_BLANK):
            return False
        position = tag.end
    return True
