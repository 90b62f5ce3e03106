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
_LINE = re.compile(r"[^\r\n]*")
_ITEM = re.compile(
    r"[ \t]*(?:-[ \t]+)*"
    r"(?:(?:'[^']*'|\"[^\"]*\"|[^#'\"\s\[\]{}][^\r\n]*?)[ \t]*:(?=[ \t]|$)[ \t]*)?"
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
    """A stretch of a value in one style."""

    start: int
    end: int
    style: str  # "plain" | "single" | "double" | "flow"


def segments(text: str, start: int, end: int) -> Iterator[Segment]:
    """The value stretches of the front matter ``text[start:end]``; keys and comments left out."""
    block_indent = -1  # inside a block scalar (| or >) whose key is indented this much
    for line in _LINE.finditer(text, start, end):
        l0, l1 = line.span()
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
        item = _ITEM.match(text, l0, l1)
        v0 = item.end() if item else l0 + indent
        first = text[v0 : v0 + 1]
        if first in ("|", ">"):
            block_indent = indent
            continue
        if first in {"'", '"'}:
            quoted = (_SINGLE if first == "'" else _DOUBLE).match(text, v0, l1)
            close = quoted.end() if quoted else l1
            yield Segment(
                v0 + 1, close - 1 if quoted else l1, "single" if first == "'" else "double"
            )
            continue
        comment = _COMMENT.search(text, v0, l1)
        stop = comment.start() if comment else l1
        yield Segment(v0, stop, "flow" if first in ("[", "{") else "plain")


@dataclass(frozen=True, slots=True)
class FrontMatterEdits:
    """The edits for one front matter and the URL pairs they stand for."""

    edits: list[Edit]
    pairs: dict[str, str]


def url_edits(
    text: str, start: int, end: int, unwrap: Callable[[str], str], rule: str
) -> FrontMatterEdits:
    """Edits that unwrap every wrapped URL in the front matter's values."""
    edits: list[Edit] = []
    pairs: dict[str, str] = {}
    for segment in segments(text, start, end):
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
    return FrontMatterEdits(edits, pairs)


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
