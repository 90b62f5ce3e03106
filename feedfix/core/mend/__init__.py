"""Mending post sources in place: span-based rewrites that leave every other byte alone.

``mend(data, rules)`` takes a file's bytes and returns the mended bytes with the counts and
the edits; it never parses and re-serialises (no lxml tree, no YAML dump), so front matter
quoting, comments, attribute order, entity spelling, encoding, BOM and line endings survive.
Pure: no I/O; the shell (feedfix.files.mend) reads, diffs and writes.
"""

from __future__ import annotations

from feedfix.core.mend.body import JUNK, LAZY, UNWRAP, BodyRules
from feedfix.core.mend.document import Mended, decode_exactly, kind_of, mend
from feedfix.core.mend.edits import Edit

MENDING_RULES = (UNWRAP, LAZY, JUNK)

__all__ = [
    "JUNK",
    "LAZY",
    "MENDING_RULES",
    "UNWRAP",
    "BodyRules",
    "Edit",
    "Mended",
    "decode_exactly",
    "kind_of",
    "mend",
]
