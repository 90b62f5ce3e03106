"""The unified diff fix-posts prints, made from a file's edits (feedfix/core/mend/patch.py)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from feedfix.core.mend.edits import Edit, splice
from feedfix.core.mend.patch import unified_diff

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@\n")


def _apply(before: str, diff: str) -> str:
    """Apply a unified diff the way patch(1) reads one (the test's own reader)."""
    lines = re.findall(r"[^\n]*\n|[^\n]+$", before)
    body = re.findall(r"[^\n]*\n", diff)[2:]
    out: list[str] = []
    position = index = 0
    while index < len(body):
        header = _HUNK.fullmatch(body[index])
        assert header, body[index]
        old_count = 1 if header.group(2) is None else int(header.group(2))
        start = int(header.group(1)) - (1 if old_count else 0)
        out += lines[position:start]
        position, index = start, index + 1
        while index < len(body) and not body[index].startswith("@@"):
            kind, content = body[index][0], body[index][1:]
            if index + 1 < len(body) and body[index + 1].startswith("\\ No newline"):
                content, index = content[:-1], index + 1
            if kind in " -":
                assert lines[position] == content, (lines[position], content)
                position += 1
            if kind in " +":
                out.append(content)
            index += 1
    return "".join(out + lines[position:])


LINES = st.lists(st.sampled_from(["a\n", "bb\n", "\n", "c\r\n", "d\u2028e\n", "f\x0cg\n"]))


@st.composite
def texts_and_edits(draw: st.DrawFn) -> tuple[str, list[Edit]]:
    text = "".join(draw(LINES)) + draw(st.sampled_from(["", "tail"]))
    edits: list[Edit] = []
    position = 0
    while position < len(text) and len(edits) < 6:
        start = draw(st.integers(position, len(text)))
        end = draw(st.integers(start, min(len(text), start + 5)))
        edits.append(Edit(start, end, draw(st.sampled_from(["", "X", "Y\n", "\nZ"])), "r"))
        position = end + 1
    return text, edits


@settings(max_examples=300, deadline=None)
@given(texts_and_edits())
def test_diff_from_edits_applies_to_give_the_mended_text(case: tuple[str, list[Edit]]) -> None:
    """Applying the diff to the old text gives the new one; lines break at \\n only."""
    before, edits = case
    after = splice(before, edits)
    diff = "".join(unified_diff(before, edits, "a/x", "b/x"))
    if after == before:
        return
    assert diff.startswith("--- a/x\n+++ b/x\n@@ ")
    assert _apply(before, diff) == after
