"""What a URL's scheme is: one pattern for the whole core (RFC 3986 section 3.1)."""

from __future__ import annotations

import re

SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def scheme_of(text: str) -> str | None:
    """The scheme ``text`` starts with, lowercased (``"HTTPS://x"`` gives ``"https"``)."""
    match = SCHEME.match(text)
    return match.group(1).lower() if match else None


def has_scheme(text: str) -> bool:
    """Whether ``text`` is a URI with a scheme and something after it: ``tag:a,2020:1`` is,
    ``Note: see below`` (a space after the colon) and a bare ``a:`` are not."""
    match = SCHEME.match(text)
    return match is not None and text[match.end() : match.end() + 1].strip() != ""
