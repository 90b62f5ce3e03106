"""Turn input bytes into text, in the XML specification's and feedparser's order.

The BOM; the declared encoding; the HTTP charset (the service passes it as
``ParseOptions.encoding_hint``); UTF-8; windows-1252 when the text reads as Western European
text in it; only then a statistical guess. Feeds lie about their encoding often enough (GBK
declared as UTF-8, GB2312 holding GB18030 characters, Latin-1 that is really cp1252) that each
of these is a candidate, used only when the bytes decode with it. Whatever is a guess says so
in its warning.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Declared names mapped to the superset a browser would use (WHATWG Encoding Standard).
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "big5": "big5hkscs",
    "cp950": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.I)
_XML_DECL_TEXT = re.compile(r"^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*[\"'][^\"']*[\"']", re.I)
DECLARATION = 512  # characters (bytes) of the input an XML declaration is looked for in
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)


@dataclass(frozen=True)
class Decoded:
    """Text plus what was learnt on the way (for warnings)."""

    text: str
    encoding: str
    declared: str | None
    mismatch: bool  # the declared encoding was wrong and another one was used
    guess: str | None = None  # how the encoding was guessed, when nothing named it

    @property
    def warning(self) -> str | None:
        """What to tell the user about how the text was decoded, if anything."""
        how = f" ({self.guess})" if self.guess else ""
        if self.mismatch and self.declared:
            return f"declared encoding {self.declared!r} is wrong; read as {self.encoding}{how}"
        if self.guess:
            return f"feed names no encoding and is not UTF-8; read as {self.encoding}{how}"
        return None


def sniff_bom(data: bytes) -> tuple[str | None, int]:
    """The encoding a byte-order mark names, and the BOM's length."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None, 0


def sniff_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM, recognised by ``<`` interleaved with NUL bytes."""
    head = data[:4]
    if head[:2] == b"<\x00" and head[3:4] == b"\x00":
        return "utf-16-le"
    if head[:2] == b"\x00<" and head[2:3] == b"\x00":
        return "utf-16-be"
    return None


def declared_encoding(data: bytes) -> str | None:
    """The encoding named by an XML declaration or an HTML meta tag, lower-cased."""
    match = _XML_DECL.match(data[:DECLARATION]) or _META_CHARSET.search(data[:2048])
    return match.group(1).decode("ascii").lower() if match else None


def _usable(name: str) -> str | None:
    name = _SUPERSETS.get(name.lower(), name.lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode(data: bytes, hint: str | None = None) -> Decoded:
    """Decode ``data``: BOM, the declaration, ``hint`` (an HTTP charset), UTF-8, windows-1252
    for Western text, then a statistical guess."""
    bom_enc, bom_len = sniff_bom(data)
    if bom_enc:
        return Decoded(data[bom_len:].decode(bom_enc, "replace"), bom_enc, bom_enc, False)
    utf16 = sniff_utf16(data)
    if utf16:
        return Decoded(data.decode(utf16, "replace"), utf16, utf16, False)
    declared = declared_encoding(data)
    for candidate in (declared, hint, "utf-8"):
        codec = _usable(candidate) if candidate else None
        if codec is None:
            continue
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        mismatch = declared is not None and _usable(declared) != codec
        return Decoded(text, codec, declared, mismatch)
    if looks_western(data):
        guess = "a guess: it reads as Western European text"
        return Decoded(data.decode("cp1252"), "cp1252", declared, declared is not None, guess)
    return _detect(data, declared)


_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
MAX_WESTERN_RUN = 3  # bytes in a row above ASCII: ``ção`` has two, a CJK word four or more
WESTERN_SHARE = 0.9  # of the non-ASCII bytes that must stand in such short runs


def looks_western(data: bytes) -> bool:
    """True when the bytes read as windows-1252 text: every byte defined there, and the
    non-ASCII ones alone or in pairs between ASCII letters (``très``, ``simulações``), as
    in Western European languages, not in the long runs of a double-byte CJK encoding or of
    a Cyrillic or Greek single-byte one."""
    sample = data[:200_000]
    if _CP1252_UNDEFINED.search(sample):
        return False
    runs = [len(m) for m in _HIGH_RUN.findall(sample)]
    total = sum(runs)
    if not total:
        return False
    short = sum(n for n in runs if n <= MAX_WESTERN_RUN)
    return short >= WESTERN_SHARE * total


def _detect(data: bytes, declared: str | None) -> Decoded:
    from charset_normalizer import from_bytes  # noqa: PLC0415 - only needed for mislabelled input

    best = from_bytes(data[:200_000]).best()
    codec = _usable(best.encoding) if best is not None else None
    if codec is None:
        codec = "cp1252"
    guess = "a statistical guess"
    return Decoded(data.decode(codec, "replace"), codec, declared, declared is not None, guess)


def without_encoding_declaration(text: str) -> str:
    """Drop ``encoding=`` from an XML declaration, so lxml can parse re-encoded UTF-8.

    Only the first ``DECLARATION`` characters are searched, as ``declared_encoding`` reads
    them: the pattern is tried at one place, and so never over a whole feed."""
    head = _XML_DECL_TEXT.sub(r"\1", text[:DECLARATION], count=1)
    return text if len(head) == min(len(text), DECLARATION) else head + text[DECLARATION:]
