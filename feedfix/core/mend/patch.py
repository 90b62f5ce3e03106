"""A unified diff of one mended file, made from its edits rather than by comparing texts.

The edits already say which lines changed, so no sequence matching is needed; and lines are
cut at ``\\n`` only (as ``patch`` cuts them), never at the form feeds, ``\\u2028`` and other
separators that ``str.splitlines`` also breaks on.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate

from feedfix.core.mend.edits import Edit, splice

NO_NEWLINE = "\\ No newline at end of file\n"


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _blocks(starts: list[int], edits: Sequence[Edit]) -> list[tuple[int, int, list[Edit]]]:
    """Runs of changed lines ``(first, last, edits)``; an edit at a line end touches it only."""
    blocks: list[tuple[int, int, list[Edit]]] = []
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        first = bisect_right(starts, edit.start) - 1
        last = max(first, bisect_right(starts, max(edit.end - 1, edit.start)) - 1)
        if blocks and first <= blocks[-1][1]:
            old_first, old_last, group = blocks[-1]
            blocks[-1] = (old_first, max(old_last, last), [*group, edit])
        else:
            blocks.append((first, last, [edit]))
    return blocks


def unified_diff(
    before: str, edits: Sequence[Edit], old_name: str, new_name: str, context: int = 1
) -> Iterator[str]:
    """The ``--- / +++ / @@`` text of ``before`` with ``edits`` applied, ``context`` lines
    around each change; each line ends in ``\\n`` (a last line without one is marked)."""
    if not edits:
        return
    lines = _lines(before)
    starts = [0, *accumulate(len(line) for line in lines)]
    blocks = []
    for first, last, group in _blocks(starts, edits):
        offset = starts[first]
        shifted = [Edit(e.start - offset, e.end - offset, e.new, e.rule) for e in group]
        new_lines = _lines(splice("".join(lines[first : last + 1]), shifted))
        blocks.append((first, last, new_lines))
    yield f"--- {old_name}\n"
    yield f"+++ {new_name}\n"
    delta = 0  # lines added minus lines removed before the current hunk
    index = 0
    while index < len(blocks):
        end = index
        while end + 1 < len(blocks) and blocks[end + 1][0] - blocks[end][1] - 1 <= 2 * context:
            end += 1
        hunk = blocks[index : end + 1]
        top = max(0, hunk[0][0] - context)
        bottom = min(len(lines) - 1, hunk[-1][1] + context)
        body: list[str] = []
        new_count = 0
        position = top
        for first, last, new_lines in hunk:
            body.extend(" " + line for line in lines[position:first])
            body.extend("-" + line for line in lines[first : last + 1])
            body.extend("+" + line for line in new_lines)
            new_count += (first - position) + len(new_lines)
            position = last + 1
        body.extend(" " + line for line in lines[position : bottom + 1])
        new_count += bottom + 1 - position
        old_count = bottom + 1 - top
        new_top = top + delta
        yield f"@@ -{_range(top, old_count)} +{_range(new_top, new_count)} @@\n"
        for line in body:
            yield line if line.endswith("\n") else line + "\n" + NO_NEWLINE
        delta += new_count - old_count
        index = end + 1


def _range(top: int, count: int) -> str:
    """``start,count`` as unified diffs number lines (an empty range names the line before)."""
    if count == 0:
        return f"{top},0"
    return f"{top + 1}" if count == 1 else f"{top + 1},{count}"
