"""What a value may be where it goes, and what a feed's header must know: shared by formats.

Every output format has a grammar for its values (a language tag, a media type, an email
address, a URL of sane length); a value that breaks it is left out and counted, so that a
valid document is written rather than an invalid one. Atom, RSS 2.0 and JSON Feed ask the same
questions, and ``common`` gives each of them the same links, URLs and dates, so that the three
formats of one feed say the same things.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from feedfix.core.model import Feed

FALLBACK_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
"""``updated`` for a feed and entries with no date anywhere: fixed, so output never drifts."""
MAX_URL = 64 * 1024  # longer "URLs" are junk, and would push a reader's parser past its limits
_LANG = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")
_MIME_WORD = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
_MEDIA_TYPE = re.compile(
    rf"{_MIME_WORD}/{_MIME_WORD}(?:\s*;\s*{_MIME_WORD}=(?:{_MIME_WORD}|\"[^\"]*\"))*"
)
_SHORT_TYPES = {"html": "text/html", "xhtml": "application/xhtml+xml", "text": "text/plain"}
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+")


def language_tag(value: str | None) -> str | None:
    """A BCP 47-shaped tag for ``xml:lang`` (``zh_CN`` becomes ``zh-CN``), else ``None``."""
    if not value:
        return None
    tag = value.strip().replace("_", "-")
    return tag if _LANG.match(tag) else None


def media_type(value: str | None) -> str | None:
    """A MIME type for ``link@type``: Atom's short forms (``html``, ``xhtml``, ``text``) as
    the media types they stand for, anything else that is not ``type/subtype`` ``None``."""
    if not value:
        return None
    value = value.strip()
    if _MEDIA_TYPE.fullmatch(value):
        return value
    return _SHORT_TYPES.get(value.lower())


def email_address(value: str | None) -> str | None:
    """An ``atom:email`` value (one ``@`` with no spaces or brackets around it), else ``None``."""
    if not value:
        return None
    value = value.strip()
    return value if _EMAIL.fullmatch(value) else None


class Dropped:
    """Counts the values left out because the place they go has a grammar they break (a
    ``link@type`` of ``mp3``, an ``hreflang`` of ``English``, a ``scheme`` of ``dmoz``):
    a valid document without them beats an invalid one with them."""

    def __init__(self) -> None:
        self.count = 0

    def check(self, value: str | None, valid: str | None) -> str | None:
        """``valid`` (the mended ``value``), counting a value that had to go."""
        if value and valid is None:
            self.count += 1
        return valid


class _Uncounted(Dropped):
    """For callers that do not ask what was dropped: shared, so it keeps no count."""

    def check(self, value: str | None, valid: str | None) -> str | None:
        """``valid``, uncounted."""
        return valid


UNCOUNTED = _Uncounted()


@dataclass(frozen=True)
class FeedFacts:
    """What the feed header needs to know about all entries, gathered before they stream."""

    updated: datetime
    needs_author: bool
    has_media: bool

    @classmethod
    def of(cls, feed: Feed) -> FeedFacts:
        """Facts from the (uncleaned or cleaned) feed: rules change neither dates nor authors."""
        dates = [e.date for e in feed.entries if e.date]
        return cls(
            updated=feed.updated or max(dates, default=FALLBACK_UPDATED),
            needs_author=not feed.authors and any(not e.authors for e in feed.entries),
            has_media=any(e.media for e in feed.entries),
        )


DropCounter = Callable[[int, bool], None]
"""Told how many values an element dropped, and whether that element was an entry."""
