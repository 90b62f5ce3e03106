"""Only images pass: the declared media type must be allowed and the first bytes must match.

Both checks, because each alone is fooled: an HTML error page is often sent as
``image/png``, and a file that starts like a PNG may be declared ``text/html``. What is
served is the canonical type from the table below, never the origin's header verbatim.
"""

from __future__ import annotations

from collections.abc import Callable

# Aliases origins send, mapped to the type the proxy serves.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/vnd.microsoft.icon": "image/x-icon",
    "image/ico": "image/x-icon",
}
SVG = "image/svg+xml"
SNIFF_BYTES = 512  # enough for every signature below, and for an SVG's prologue


class MediaRefused(ValueError):
    """The answer is not an image the proxy serves; the message says why, briefly."""


def _avif(head: bytes) -> bool:
    if head[4:8] != b"ftyp":
        return False
    box = head[8 : max(16, min(len(head), int.from_bytes(head[:4], "big")))]
    brands = {box[i : i + 4] for i in range(0, len(box) - 3, 4)}
    return bool(brands & {b"avif", b"avis"})


def _svg(head: bytes) -> bool:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    prologue = text.startswith((b"<?xml", b"<!--", b"<!doctype svg"))
    return text.startswith(b"<svg") or (prologue and b"<svg" in text)


_MAGIC: dict[str, Callable[[bytes], bool]] = {
    "image/jpeg": lambda h: h.startswith(b"\xff\xd8\xff"),
    "image/png": lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/gif": lambda h: h.startswith((b"GIF87a", b"GIF89a")),
    "image/webp": lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP",
    "image/avif": _avif,
    "image/bmp": lambda h: h.startswith(b"BM"),
    "image/x-icon": lambda h: h.startswith(b"\x00\x00\x01\x00"),
    SVG: _svg,
}


def allowed_type(declared: str | None, svg: bool) -> str:
    """The canonical served type for a declared ``Content-Type``; MediaRefused otherwise."""
    base = (declared or "").split(";", 1)[0].strip().lower()
    base = _ALIASES.get(base, base)
    if base == SVG and not svg:
        raise MediaRefused("SVG is not served (images.svg is off)")
    if base not in _MAGIC:
        raise MediaRefused(f"not an image type: {base or 'none declared'}")
    return base


def matches(media_type: str, head: bytes) -> bool:
    """Whether the first bytes of a body are what ``media_type`` starts with."""
    return _MAGIC[media_type](head)
