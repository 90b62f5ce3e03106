"""Atom content that RFC 4287 (4.1.3.3) says is base64: a ``type`` that is neither text,
HTML, XHTML, an XML media type nor ``text/*``. Text-like types are decoded and shown as
text; anything else (an image, audio, a PDF) cannot be shown in a reader and is left out,
with a warning that names its type and size.
"""

from __future__ import annotations

import base64
import binascii
import html
import re

from feedfix.core.html import xml_chars

_XML_OR_TEXT = re.compile(r"^(?:text|html|xhtml)$|^text/|[/+]xml(?:;|$)")
_TEXT_LIKE = re.compile(
    r"^application/(?:json|(?:x-)?javascript|ecmascript|(?:x-)?sh|sql|(?:x-)?yaml|toml|"
    r"x-tex|x-httpd-php|x-python|x-perl|x-ruby)(?:;|$)|^application/[\w.-]+\+json(?:;|$)"
)
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CHARSET = re.compile(r";\s*charset=[\"']?([\w.:-]+)", re.I)


def is_base64_type(kind: str) -> bool:
    """True when an ``atom:content`` of this ``type`` holds base64 (RFC 4287 4.1.3.3)."""
    return bool(kind) and _XML_OR_TEXT.search(kind) is None


def decode_content(value: str, kind: str) -> tuple[str | None, str | None]:
    """Base64 content as ``(html, problem)``: text-like types (and an octet stream that is
    plain UTF-8 text) decoded into a ``<pre>`` block, others left out with the reason."""
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None, f"content of type {kind!r} is not valid base64; left it out"
    charset = _CHARSET.search(kind)
    try:
        text = raw.decode(charset.group(1) if charset else "utf-8")
    except (UnicodeDecodeError, LookupError):
        text = None
    octets = kind.split(";", maxsplit=1)[0].strip() == "application/octet-stream"
    if text is not None and (_TEXT_LIKE.search(kind) or octets) and not _UNPRINTABLE.search(text):
        return f"<pre>{html.escape(xml_chars(text), quote=False)}</pre>", None
    return (
        None,
        f"content of type {kind!r} ({len(raw)} bytes of base64) cannot be shown; left it out",
    )
