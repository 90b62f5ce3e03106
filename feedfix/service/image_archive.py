"""The image archive as the rest of the service sees it: the hand-off from a poll (which
images each published entry points at) and what the pages show of it.

A poll that cleans entries knows them: the cleaning worker finds, in each entry it cleaned
anew, the signed ``/img/`` URLs the proxy step wrote (``entry_paths``), and the poll hands
them over after its write is stored (``ImageRefs.published``). The archive
(``images/archiver.py``) keeps them. The poll wing and the images wing never import each
other: they meet here and in ``app.py``.

The URLs are found by their exact shape (``{base_url}/img/v1/{sig}/{policy}/{url}``, all
base64url characters, which HTML never escapes), not by parsing the HTML again; a path
found here is fetched only once its signature verifies, so text that merely looks like one
costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol

from feedfix.core.archive import Archived
from feedfix.core.model import Entry, Feed

FEED_LEVEL = ""  # the "entry id" under which a feed's own logo and icon are referenced
MAX_IMAGES = 200  # images of one entry the archive keeps at most (the rest are only proxied)


@dataclass(frozen=True)
class EntryImages:
    """One poll's published entries and the images of those it cleaned anew.

    ``kept``: every entry id of the published feed, with when feedfix first saw it (the
    archive's age order). ``images``: for each entry cleaned anew (and ``FEED_LEVEL``), its
    signed image paths (``/img/v1/…``); an entry not named keeps the images it had.
    """

    feed: str
    now: float
    kept: Mapping[str, float]
    images: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class ImageRefs(Protocol):
    """Where a poll hands its published entries' images (the archiver is one)."""

    def published(self, refs: EntryImages) -> None:
        """A poll stored these entries; returns at once (the archive's work is queued, so
        publishing never waits for an image)."""


@lru_cache(maxsize=8)
def _pattern(base_url: str) -> re.Pattern[str]:
    return re.compile(
        re.escape(base_url.rstrip("/"))
        + r"(/img/v1/[A-Za-z0-9_-]+/(?:[no]|u\.[A-Za-z0-9_-]+)/[A-Za-z0-9_-]+)"
    )


def signed_paths(texts: Iterable[str | None], base_url: str) -> tuple[str, ...]:
    """The signed image paths of ``base_url``'s proxy in ``texts``, each once, in order."""
    pattern = _pattern(base_url)
    found: dict[str, None] = {}
    for text in texts:
        if text and "/img/v1/" in text:
            found.update(dict.fromkeys(pattern.findall(text)))
    return tuple(found)


def entry_paths(entry: Entry, base_url: str) -> tuple[str, ...]:
    """Every proxied image of an entry as cleaned (the first ``MAX_IMAGES``: a feed can't
    make the archive fetch without end): in its HTML (img ``src`` and ``srcset``, picture
    sources, video posters), its enclosures and its Media RSS."""
    texts = [entry.content, entry.summary]
    texts += [link.href for link in entry.links]
    texts += [item.url for item in entry.media]
    return signed_paths(texts, base_url)[:MAX_IMAGES]


def ages(archive: Mapping[str, Archived]) -> dict[str, float]:
    """Each entry's age for the archive's "oldest first": its own date, else when feedfix
    first saw it (as the feed orders them)."""
    return {
        key: a.entry.date.timestamp() if a.entry.date else a.first_seen
        for key, a in archive.items()
    }


def feed_paths(feed: Feed, base_url: str) -> tuple[str, ...]:
    """The feed's own proxied images: its logo and icon."""
    return signed_paths((feed.logo, feed.icon), base_url)


State = Literal["archived", "pending", "retrying", "failed", "unpinned"]
STATE_WORDS: dict[str, str] = {
    "archived": "archived",
    "pending": "pending (not fetched yet)",
    "retrying": "failed, will be tried again",
    "failed": "could not be kept (given up)",
    "unpinned": "no longer kept: past archive_size (an ordinary cache entry now)",
}


@dataclass(frozen=True)
class ImageRow:
    """An image as the pages and ``feedfix images`` show it."""

    key: str
    url: str
    state: State
    size: int = 0
    reason: str | None = None  # the last failure in a word: 404, timeout, not an image…
    error: str | None = None  # … and in a sentence
    attempts: int = 0
    due: float | None = None  # the next try, while pending or retrying


@dataclass(frozen=True)
class ArchiveSummary:
    """How much the archive (or one feed's part of it) holds."""

    archived: int = 0
    bytes: int = 0
    pending: int = 0
    retrying: int = 0
    failed: int = 0
    unpinned: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)  # retrying and failed, by reason


def describe(summary: ArchiveSummary, limit: int | None) -> str:
    """The archive in words, for the index page."""
    lost = summary.failed
    words = (
        f"Image archive: {summary.archived} images kept, {summary.bytes / 1e6:.1f} MB"
        + (f" of {limit / 1e6:.0f} MB (archive_size)" if limit else "")
        + f"; {summary.pending} pending, {summary.retrying} to be tried again, "
        f"{lost} could not be kept."
    )
    if summary.unpinned:
        words += (
            f" The archive is full (archive_size): {summary.unpinned} images of the oldest "
            "entries are no longer kept for good, and go when the cache needs the room."
        )
    return words


def plain(summary: ArchiveSummary) -> dict[str, Any]:
    """A summary as JSON-ready data."""
    return {
        "archived": summary.archived,
        "bytes": summary.bytes,
        "pending": summary.pending,
        "retrying": summary.retrying,
        "failed": summary.failed,
        "unpinned": summary.unpinned,
        "reasons": dict(summary.reasons),
    }
