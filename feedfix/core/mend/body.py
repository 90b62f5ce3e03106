"""Edits for a post's body (HTML, or Markdown with HTML inside): unwrapped URLs, lazy images
repaired, empty junk elements removed, each as spans of the original text."""

from __future__ import annotations

import functools
import html
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from feedfix.core.html import SRCSET_ATTRIBUTES, URL_ATTRIBUTES, map_srcset
from feedfix.core.mend.edits import Edit
from feedfix.core.mend.junk import Selector, junk_spans
from feedfix.core.mend.lazy import Plan, plan_lazy_image
from feedfix.core.mend.markup import (
    TEXT_URL,
    Attribute,
    Tag,
    attribute_value,
    locate,
    tags,
    text_regions,
    text_url,
)
from feedfix.core.proxies import Unwrapper
from feedfix.core.rules.fix_lazy_images import FixLazyImages

UNWRAP, LAZY, JUNK = "unwrap-proxies", "fix-lazy-images", "drop-empty-junk"
_SRCSET_URL = re.compile(r"[^\s,][^\s]*")


class HostHits:
    """Where wrapper hosts occur, found in one pass, so each tag and text stretch is a lookup."""

    _patterns: ClassVar[dict[tuple[str, ...], re.Pattern[str]]] = {}

    def __init__(self, unwrapper: Unwrapper, text: str, start: int, end: int) -> None:
        hosts = tuple(sorted({w.host for w in unwrapper.wrappers}))
        pattern = self._patterns.get(hosts)
        if pattern is None:
            # ``//`` first and case-insensitivity only for the hosts: 40x faster than ``re.I``
            # on the whole alternation, which defeats the regex engine's literal-prefix scan.
            alternatives = "|".join(re.escape(h) for h in hosts) or "(?!)"
            pattern = re.compile(f"//(?i:{alternatives})")
            self._patterns[hosts] = pattern
        self.positions = [m.start() for m in pattern.finditer(text, start, end)]

    def __bool__(self) -> bool:
        return bool(self.positions)

    def within(self, start: int, end: int) -> bool:
        """Whether a host occurs in ``[start, end)``."""
        index = bisect_left(self.positions, start)
        return index < len(self.positions) and self.positions[index] < end


@dataclass(frozen=True)
class BodyRules:
    """What to do to a body: each part ``None``/empty when its rule is off."""

    unwrapper: Unwrapper | None = None
    lazy: FixLazyImages | None = None
    junk: tuple[Selector, ...] = ()


@dataclass
class BodyEdits:
    """The edits and how many things each rule changed."""

    edits: list[Edit] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def body_edits(
    text: str,
    start: int,
    end: int,
    rules: BodyRules,
    *,
    markdown: bool,
    hits: HostHits | None,
    unwrap: Callable[[str], str] | None = None,
) -> BodyEdits:
    """Every edit the rules make to ``text[start:end]``; ``hits`` are the wrapper hosts in it."""
    out = BodyEdits()
    unwrapper = rules.unwrapper
    wraps = hits is not None and bool(hits)
    if not wraps and rules.lazy is None and not rules.junk:
        return out
    if unwrap is None and unwrapper is not None:
        unwrap = memo(unwrapper)
    if rules.lazy is None and not rules.junk and hits is not None:
        found, texts = locate(text, start, end, hits.positions)
        for tag in found:
            _tag_edits(text, tag, rules, out, unwrap, holding=hits.positions)
        for r0, r1 in texts:
            _text_edits(text, (r0, r1), out, unwrap, markdown=markdown)
        return out
    tokens = list(tags(text, start, end))
    removed = junk_spans(text, tokens, rules.junk) if rules.junk else []
    for r0, r1 in removed:
        out.edits.append(Edit(r0, r1, "", JUNK))
    out.counts[JUNK] += len(removed)

    def inside_removed(position: int) -> bool:
        return any(r0 <= position < r1 for r0, r1 in removed)

    for tag in tokens:
        if tag.kind != "start" or (removed and inside_removed(tag.start)):
            continue
        lazy = rules.lazy is not None and tag.name == "img"
        tag_wraps = hits is not None and hits.within(tag.start, tag.end)
        if lazy or tag_wraps:
            _tag_edits(text, tag, rules, out, unwrap if tag_wraps else None)
    if hits:
        for r0, r1 in text_regions(tokens, start, end):
            if not (removed and inside_removed(r0)) and hits.within(r0, r1):
                _text_edits(text, (r0, r1), out, unwrap, markdown=markdown)
    return out


def memo(unwrapper: Unwrapper) -> Callable[[str], str]:
    """``unwrap`` remembering its answers for one file (headimg, thumbnail and the first
    image are usually the same URL)."""
    return functools.lru_cache(maxsize=256)(unwrapper.unwrap)


def _text_edits(
    text: str,
    span: tuple[int, int],
    out: BodyEdits,
    unwrap: Callable[[str], str] | None,
    *,
    markdown: bool,
) -> None:
    if unwrap is None:
        return
    for match in TEXT_URL.finditer(text, *span):
        old = match.group(0)
        new = unwrap(old)
        written = text_url(new, old, markdown=markdown) if new != old else None
        if written is not None:
            out.edits.append(Edit(match.start(), match.end(), written, UNWRAP))
            out.counts[UNWRAP] += 1


def _tag_edits(
    text: str,
    tag: Tag,
    rules: BodyRules,
    out: BodyEdits,
    unwrap: Callable[[str], str] | None,
    *,
    holding: list[int] | None = None,
) -> None:
    """Edits inside one start tag; with ``holding``, only attributes holding those positions
    are looked at (unwrapping alone, where the other attributes cannot change)."""
    attrs = tag.attributes(text, holding if rules.lazy is None else None)
    plans = {a.name: Plan() for a in attrs}
    by_name = {a.name: a for a in attrs}
    if rules.lazy is not None and plan_lazy_image(rules.lazy, by_name, plans):
        out.counts[LAZY] += 1
    unwrapper = rules.unwrapper
    for attr in attrs:
        plan = plans[attr.name]
        if plan.delete or unwrapper is None or unwrap is None:
            continue
        name = plan.rename or attr.name
        if name in SRCSET_ATTRIBUTES and plan.value is None:
            if unwrapper.might_wrap(attr.raw):
                out.counts[UNWRAP] += _srcset_edits(attr, unwrap, out.edits)
        elif (
            name in URL_ATTRIBUTES
            or name in SRCSET_ATTRIBUTES
            or name.startswith("data-")
            or (name == "content" and tag.name == "meta")  # og:image and friends
        ):
            current = attr.value if plan.value is None else plan.value
            if not unwrapper.might_wrap(current):
                continue
            # (a srcset here is one the lazy rule moved whole from data-srcset)
            new = map_srcset(current, unwrap) if name in SRCSET_ATTRIBUTES else unwrap(current)
            if new != current:
                plan.value = new
                out.counts[UNWRAP] += 1
    for attr in attrs:
        plan = plans[attr.name]
        if plan.delete:
            end = attr.value_end + (1 if attr.quote in ('"', "'") else 0)
            out.edits.append(Edit(attr.cut_start, end, "", LAZY))
            continue
        if plan.rename is not None:
            out.edits.append(Edit(attr.name_start, attr.name_end, plan.rename, LAZY))
        if plan.value is not None and plan.value != attr.value:
            written = attribute_value(plan.value, attr)
            rule = LAZY if plan.by_lazy else UNWRAP
            if attr.quote == "none":
                out.edits.append(Edit(attr.name_end, attr.name_end, f'="{written}"', rule))
            else:
                out.edits.append(Edit(attr.value_start, attr.value_end, written, rule))


def _srcset_edits(attr: Attribute, unwrap: Callable[[str], str], edits: list[Edit]) -> int:
    """Unwrap each URL of a srcset in place, keeping its commas, spaces and descriptors."""
    count = 0
    raw, offset = attr.raw, attr.value_start
    for piece in re.finditer(r"[^,]+", raw):
        match = _SRCSET_URL.search(raw, piece.start(), piece.end())
        if match is None:
            continue
        old = match.group(0)
        decoded = html.unescape(old) if "&" in old else old
        new = unwrap(decoded)
        if new != decoded:
            written = attribute_value(new, attr)
            edits.append(Edit(offset + match.start(), offset + match.end(), written, UNWRAP))
            count += 1
    return count
