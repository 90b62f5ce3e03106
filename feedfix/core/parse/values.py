"""Small field values that both parsers read the same way."""

from __future__ import annotations

MAX_DIGITS = 18  # a whole number longer than this is nonsense in a feed (and past int64)


def whole_number(value: object) -> int | None:
    """A non-negative whole number written in digits (a ttl, a width, a length), else None."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) <= MAX_DIGITS else None
