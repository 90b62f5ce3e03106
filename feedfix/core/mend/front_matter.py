"""URL spans in YAML front matter, found without re-serialising the YAML.

A line scanner, not a YAML emitter: it knows the value styles (plain, single- and
double-quoted, block scalars, flow collections) and comments well enough to find the URLs in
values and to write a replacement that means the same in that style. Every mended front
matter is then parsed again and must equal the old one with only those URLs replaced, so a
case the scanner gets wrong fails loudly instead of corrupting a post.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from feedfix.core.errors import InputError
from feedfix.core.mend.edits import Edit

# The block feedfix.core.parse.post reads, except that a CRLF file's closing line is seen too
# (post.py's ``[ \t]*$`` stops at the ``\r``); tests/core/test_mend.py checks they agree on LF.
FRONT_MATTER = re.compile(
    r"\A(?:[ \t]*\r?\n)*---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*\r?$\n?",
    re.S | re.M,
)
_OPENING = re.compile(r"\A(?:[ \t]*\r?\n)*---[ \t]*\r?\n")
_CLOSING = re.compile(r"(?:\r?\n)?^(?:---|\.\.\.)[ \t]*\r?$\n?", re.M)


def locate_front_matter(text: str) -> tuple[int, int, int] | None:
    """``(start, end, body_start)`` of the block ``FRONT_MATTER`` matches, found with two
    anchored searches instead of its lazy ``.*?`` (ten times faster on a long post)."""
    opening = _OPENING.match(text)
    if opening is None:
        return None
    start = opening.end()
    closing = _CLOSING.search(text, start)
    if closing is None:
        return None
    return start, closing.start(), closing.end()


_LINE = re.compile(r"[^\r\n]*")
# A plain key runs to the first colon followed by a blank (the blanks before that colon need
# no pattern of their own: with one, a line of blanks was tried blank by blank, quadratic).
_ITEM = re.compile(
    r"[ \t]*(?:-[ \t]+)*"
    r"(?:(?:'[^']*'[ \t]*|\"[^\"]*\"[ \t]*|[^#'\"\s\[\]{}][^\r\n]*?):(?=[ \t]|$)[ \t]*)?"
)
_SINGLE = re.compile(r"'(?:[^']|'')*'")
_DOUBLE = re.compile(r"\"(?:[^\"\\]|\\.)*\"")
_COMMENT = re.compile(r"(?:^|[ \t])#")
_TOKENS = {
    "plain": re.compile(r"(?:https?:)?//\S+", re.I),
    "single": re.compile(r"(?:https?:)?//[^\s']+", re.I),
    "double": re.compile(r"(?:https?:)?//[^\s\"\\]+", re.I),
    "flow": re.compile(r"(?:https?:)?//[^\s'\",\[\]{}\\]+", re.I),
}
_UNSAFE = {
    "plain": re.compile(r"\s|:$"),
    "single": re.compile(r"[\r\n]"),
    "double": re.compile(r"[\r\n]"),
    "flow": re.compile(r"[\s'\",\[\]{}\\]|:$"),
}
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of a value in one style; ``whole`` when it is all of a ``key: value`` or
    ``- value`` line's scalar (quoted and closed on the line, or plain), nothing else."""

    start: int
    end: int
    style: str  # "plain" | "single" | "double" | "flow"
    whole: bool = False


def segments(
    text: str, start: int, end: int, wanted: Callable[[int, int], bool] | None = None
) -> Iterator[Segment]:
    """The value stretches of the front matter ``text[start:end]``; keys and comments left out.

    ``wanted(line_start, line_end)`` lets lines without anything of interest be skipped
    cheaply (they are still read for the start of a block scalar).
    """
    block_indent = -1  # inside a block scalar (| or >) whose key is indented this much
    for line in _LINE.finditer(text, start, end):
        l0, l1 = line.span()
        if l0 == l1:
            continue
        body = text[l0:l1]
        indent = len(body) - len(body.lstrip(" \t"))
        if block_indent >= 0:
            if not body.strip():
                continue
            if indent > block_indent:
                yield Segment(l0 + indent, l1, "plain")
                continue
            block_indent = -1
        if body[indent : indent + 1] in ("#", ""):
            continue
        if wanted is not None and not wanted(l0, l1) and "|" not in body and ">" not in body:
            continue
        item = _ITEM.match(text, l0, l1)
        v0 = item.end() if item else l0 + indent
        keyed = v0 > l0 + indent
        first = text[v0 : v0 + 1]
        if first in ("|", ">"):
            block_indent = indent
            continue
        if first in {"'", '"'}:
            quoted = (_SINGLE if first == "'" else _DOUBLE).match(text, v0, l1)
            close = quoted.end() - 1 if quoted else l1
            style = "single" if first == "'" else "double"
            yield Segment(v0 + 1, close, style, keyed and quoted is not None)
            continue
        comment = _COMMENT.search(text, v0, l1)
        stop = comment.start() if comment else l1
        while stop > v0 and text[stop - 1] in " \t":
            stop -= 1
        flow = first in ("[", "{")
        yield Segment(v0, stop, "flow" if flow else "plain", keyed and not flow)


@dataclass(frozen=True, slots=True)
class FrontMatterEdits:
    """The edits for one front matter, the URL pairs they stand for, and whether every one
    replaced a whole scalar (then the YAML cannot read differently, and is not re-read)."""

    edits: list[Edit]
    pairs: dict[str, str]
    whole_values: bool


def url_edits(
    text: str,
    span: tuple[int, int],
    unwrap: Callable[[str], str],
    rule: str,
    wanted: Callable[[int, int], bool] | None = None,
) -> FrontMatterEdits:
    """Edits that unwrap every wrapped URL in the front matter's values."""
    edits: list[Edit] = []
    pairs: dict[str, str] = {}
    whole_values = True
    for segment in segments(text, *span, wanted):
        for match in _TOKENS[segment.style].finditer(text, segment.start, segment.end):
            old = match.group(0)
            new = unwrap(old)
            if new == old or _UNSAFE[segment.style].search(new):
                continue
            written = new.replace("'", "''") if segment.style == "single" else new
            if segment.style == "double":
                written = new.replace("\\", "\\\\").replace('"', '\\"')
            edits.append(Edit(match.start(), match.end(), written, rule))
            pairs[old] = new
            whole_values &= segment.whole and match.span() == (segment.start, segment.end)
    return FrontMatterEdits(edits, pairs, whole_values)


def check_parses(raw: str) -> None:
    """InputError when the front matter is not YAML; the document is parsed, not built into
    Python values (twice as fast, and all a whole-scalar edit needs)."""
    try:
        yaml.compose(raw, Loader=_LOADER)
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"front matter is not valid YAML: {problem}") from exc


def load(raw: str) -> object:
    """The front matter's data; InputError when it is not YAML."""
    try:
        return yaml.load(raw, Loader=_LOADER) if raw.strip() else None  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"front matter is not valid YAML: {problem}") from exc


def _replaced(value: object, pairs: dict[str, str]) -> object:
    if isinstance(value, str):
        for old in sorted(pairs, key=len, reverse=True):
            value = value.replace(old, pairs[old])
        return value
    if isinstance(value, list):
        return [_replaced(v, pairs) for v in value]
    if isinstance(value, dict):
        return {k: _replaced(v, pairs) for k, v in value.items()}
    return value


def check_same_data(before: str, after: str, pairs: dict[str, str]) -> None:
    """The mended front matter must read as the old one with only the URLs replaced."""
    if _replaced(load(before), pairs) != load(after):
        raise InputError("front matter: cannot replace its URLs without changing other values")
