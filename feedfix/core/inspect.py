"""What each rule did to an entry: the rules run one at a time, each step diffed.

The inspector pages show an entry as received and as cleaned, and attribute every difference
to the rule that made it. Running the rules one at a time over the source (each over the
previous one's output, in the pipeline's order) gives each rule's own change: its count comes
from the rule's own report (``clean_entry``), its marks from a diff of the HTML before and
after it. Pure: an entry and rules in, text out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from feedfix.core.html import parse_fragment, serialize_fragment
from feedfix.core.model import Entry
from feedfix.core.pipeline import clean_entry
from feedfix.core.rules import RuleSet

MAX_HUNKS = 40  # differences listed per rule; the rest are counted, not shown
# Tokens (after the common beginning and end) past which the differing middle is shown as one
# change: difflib's SequenceMatcher grows faster than the square of them on repetitive HTML
# (``<p>`` runs: 1,000 tokens 0.18 s, 2,000 1.3 s, 7,500 69 s), and a hostile entry has
# tens of thousands.
MAX_DIFF_TOKENS = 1000
HUNK_TEXT = 300  # characters of a difference shown on either side
# A tag's name, each of its attributes, its end; or a run of text: a changed attribute is
# one difference, not the whole tag.
_TOKEN = re.compile(
    r"""</?[A-Za-z][^\s/>]*|\s+[^\s=/>]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?|\s*/?>|[^<]+|<"""
)


@dataclass(frozen=True)
class Hunk:
    """One difference: what was there (``old``) and what is there now (``new``)."""

    old: str
    new: str

    @property
    def kind(self) -> str:
        """In words: removed, added or changed."""
        if not self.new:
            return "removed"
        return "added" if not self.old else "changed"


@dataclass(frozen=True)
class Step:
    """One rule's turn: how many things its report says it changed, and the differences."""

    rule: str
    changes: int
    hunks: tuple[Hunk, ...]
    more: int  # differences past MAX_HUNKS


@dataclass(frozen=True)
class Inspection:
    """An entry as received, as cleaned by the chosen rules, and each rule's part in it."""

    title: str
    source: str  # the entry's HTML as received (content, else summary)
    cleaned: str  # the same after the chosen rules
    steps: tuple[Step, ...]  # every chosen rule, in running order

    @property
    def counts(self) -> dict[str, int]:
        """Changes per rule that changed something."""
        return {s.rule: s.changes for s in self.steps if s.changes}


def entry_html(entry: Entry) -> str:
    """The HTML an inspector shows for an entry: its content, else its summary."""
    return entry.content if entry.content is not None else (entry.summary or "")


def diff(old: str, new: str) -> tuple[tuple[Hunk, ...], int]:
    """The differences between two HTML texts, tag by tag and text run by text run
    (at most ``MAX_HUNKS``; the second value counts the rest)."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    start = 0  # the common beginning and end, skipped in one linear pass each
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start : len(a) - end], b[start : len(b) - end]
    if len(a) > MAX_DIFF_TOKENS or len(b) > MAX_DIFF_TOKENS:
        spans = [(0, len(a), 0, len(b))]  # one change: SequenceMatcher is quadratic
    else:
        matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        spans = [
            (i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
        ]
    hunks = [
        Hunk("".join(a[i1:i2])[:HUNK_TEXT], "".join(b[j1:j2])[:HUNK_TEXT])
        for i1, i2, j1, j2 in spans
        if i1 != i2 or j1 != j2
    ]
    return tuple(hunks[:MAX_HUNKS]), max(0, len(hunks) - MAX_HUNKS)


def without(rules: RuleSet, off: Iterable[str]) -> RuleSet:
    """The rule set with some rules switched off (a preview: the config is not touched)."""
    skip = set(off)
    return RuleSet(tuple(rule for rule in rules.rules if rule.name not in skip))


def inspect_entry(entry: Entry, rules: RuleSet, feed_base: str | None = None) -> Inspection:
    """Run ``rules`` over ``entry`` one at a time and say what each one changed."""
    steps: list[Step] = []
    current = entry
    base = feed_base
    before = serialize_fragment(parse_fragment(entry_html(entry)))  # as the rules see it
    for rule in rules.rules:
        current, report = clean_entry(current, RuleSet((rule,)), base)
        base = None  # the first step resolved the entry's relative URLs
        count = report.counts.get(rule.name)
        after = entry_html(current)
        hunks, more = diff(before, after)
        before = after
        steps.append(Step(rule.name, count.changes if count else 0, hunks, more))
    if not rules.rules:
        current, _ = clean_entry(entry, rules, feed_base)
    return Inspection(
        title=entry.title or entry.id or "(untitled)",
        source=entry_html(entry),
        cleaned=entry_html(current),
        steps=tuple(steps),
    )


__all__ = ["Hunk", "Inspection", "Step", "diff", "entry_html", "inspect_entry", "without"]
