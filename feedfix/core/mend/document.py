"""One file's bytes in, its mended bytes out: decode exactly, find spans, splice, encode.

The file keeps its encoding, its byte-order mark and its line endings because only the spans
change: the text is decoded with a codec that gives back the same bytes (checked), and the
mended text is encoded with that codec and the original BOM put back in front.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from feedfix.core.errors import InputError
from feedfix.core.mend.body import UNWRAP, BodyRules, HostHits, body_edits, memo
from feedfix.core.mend.edits import Edit, splice
from feedfix.core.mend.front_matter import (
    check_parses,
    check_same_data,
    locate_front_matter,
    url_edits,
)
from feedfix.core.parse import encoding

_FIRST_CHARACTER = re.compile(r"\S")


@dataclass(frozen=True)
class Mended:
    """A file before and after; ``data is original`` when nothing changed."""

    original: bytes
    data: bytes
    before: str
    after: str
    encoding: str
    bom: bytes = b""
    counts: Counter[str] = field(default_factory=Counter)
    edits: tuple[Edit, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether any byte differs."""
        return self.data != self.original


def decode_exactly(data: bytes) -> tuple[str, bytes, str]:
    """``(text, bom, codec)`` such that ``bom + text.encode(codec) == data``; InputError else."""
    bom_codec, bom_length = encoding.sniff_bom(data)
    if bom_codec is None:
        try:  # most posts: strict UTF-8 gives the bytes back by construction
            return data.decode("utf-8"), b"", "utf-8"
        except UnicodeDecodeError:
            pass
    decoded = encoding.decode(data)
    codec, bom = decoded.encoding, data[:bom_length] if bom_codec else b""
    try:
        exact = decoded.text.encode(codec) == data[len(bom) :]
    except UnicodeEncodeError:
        exact = False
    if not exact:
        raise InputError(f"cannot be decoded without loss (best guess {codec})")
    return decoded.text, bom, codec


def kind_of(text: str, *, html_file: bool) -> str | None:
    """``"post"`` (front matter), ``"html"`` (a plain HTML page, known by its name), or
    ``None``: a README.md that opens with ``<p align=center>`` is not a page to mend."""
    if locate_front_matter(text) is not None:
        return "post"
    return "html" if html_file else None


def mend(data: bytes, rules: BodyRules, *, html_file: bool = False) -> Mended:
    """Mend one file; InputError (naming the problem) when it cannot be read or mended safely."""
    text, bom, codec = decode_exactly(data)
    kind = kind_of(text, html_file=html_file)
    if kind is None:
        raise InputError("not a post (no front matter) and not an HTML page")
    edits: list[Edit] = []
    counts: Counter[str] = Counter()
    body_start = 0
    hits = HostHits(rules.unwrapper, text, 0, len(text)) if rules.unwrapper else None
    unwrap = memo(rules.unwrapper) if rules.unwrapper else None
    front = locate_front_matter(text) if kind == "post" else None
    checked = False  # whether the front matter has been read as YAML
    if front is not None:
        f0, f1, body_start = front
        if unwrap is not None and hits is not None and hits.within(f0, f1):
            found = url_edits(text, (f0, f1), unwrap, UNWRAP, hits.within)
            if found.edits and not found.whole_values:
                mended = splice(text[f0:f1], _shifted(found.edits, f0))
                check_same_data(text[f0:f1], mended, found.pairs)
                checked = True
            edits.extend(found.edits)
            counts[UNWRAP] += len(found.edits)
    opening = _FIRST_CHARACTER.search(text, body_start)
    markdown = kind == "post" and (opening is None or opening.group(0) != "<")
    found_body = body_edits(
        text, body_start, len(text), rules, markdown=markdown, hits=hits, unwrap=unwrap
    )
    edits.extend(found_body.edits)
    counts.update(found_body.counts)
    if not edits:
        return Mended(data, data, text, text, codec, bom)
    if front is not None and not checked:  # a post that is not YAML is reported, not mended
        check_parses(text[front[0] : front[1]])  # (whole scalars replaced: same if it reads)
    after = splice(text, edits)
    try:
        new = bom + after.encode(codec)
    except UnicodeEncodeError as exc:
        raise InputError(f"a mended URL cannot be written in {codec}") from exc
    return Mended(data, new, text, after, codec, bom, +counts, tuple(sorted(edits, key=_start)))


def _start(edit: Edit) -> int:
    return edit.start


def _shifted(edits: list[Edit], offset: int) -> list[Edit]:
    return [Edit(e.start - offset, e.end - offset, e.new, e.rule) for e in edits]
