"""Edits as spans of the original text, and splicing them in.

Mending never re-serialises anything: every change is a ``(start, end, replacement)`` span of
the decoded text, so every character outside the spans is the input's own, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class Edit:
    """Replace ``text[start:end]`` with ``new``; ``rule`` is the rule that asked for it."""

    start: int
    end: int
    new: str
    rule: str


class OverlappingEdits(ValueError):
    """Two edits claim the same characters: a bug in a span finder, never silently merged."""


def splice(text: str, edits: Iterable[Edit]) -> str:
    """``text`` with every edit applied; the edits must not overlap."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    if not ordered:
        return text
    parts: list[str] = []
    position = 0
    for edit in ordered:
        if edit.start < position:
            raise OverlappingEdits(f"edits overlap at {edit.start} ({edit.rule})")
        parts.append(text[position : edit.start])
        parts.append(edit.new)
        position = edit.end
    parts.append(text[position:])
    return "".join(parts)
