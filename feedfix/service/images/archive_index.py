"""The image archive's index: which published entries point at which cached images, and
where each image stands (archived, pending, failed and why).

An archived image is an ordinary cache entry that is *pinned*: the cache's eviction passes
it over while a published entry (or one that left less than ``archive_days`` ago) points at
it. Two tables (SQLite: ``archive_sqlite.py``; Redis, for replicas: ``redis_index.py``):

- ``image_refs (feed, entry, key, dated, left_at)``: one row per image of a published entry
  (``dated``: the entry's date, for "oldest first"; ``left_at``: when it left the feed);
- ``image_archive (key, …)``: one row per referenced image: the signed path to fetch it
  with, its state, the newest entry pointing at it, its size once archived, and the retry
  bookkeeping (next try, attempts, the first and last failure).

An image with no reference left loses its row: it is an ordinary cache entry again. Every
call is short and indexed; the archiver makes them on a thread of its own, never on the
event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from feedfix.core.errors import FeedfixError
from feedfix.service.image_archive import ArchiveSummary, ImageRow

FIRST_RETRY = 60.0  # seconds after a first failure; doubled after each, up to MAX_RETRY_GAP
MAX_RETRY_GAP = 6 * 3600.0


class ArchiveIndexError(FeedfixError):
    """The archive's index can't be read or written (names the store)."""


@dataclass(frozen=True)
class Ref:
    """One image of an entry: its cache key, the signed path to fetch it, its origin URL."""

    key: str
    path: str
    url: str


@dataclass(frozen=True)
class Claim:
    """A pending image handed to one archiver (no other takes it until ``hold`` passes)."""

    key: str
    path: str
    url: str
    attempts: int
    first_failure: float | None


class ArchiveIndex(Protocol):
    """The archive's index (SQLite here, Redis for replicas)."""

    def update(
        self,
        feed: str,
        now: float,
        kept: Mapping[str, float],
        refs: Mapping[str, Sequence[Ref]],
        keep_for: float,
    ) -> None:
        """A poll published ``kept`` (entry id -> its date); ``refs`` replaces the images of
        the entries it names. Entries of ``feed`` not kept leave: their references go at once
        (``keep_for`` 0) or ``keep_for`` seconds later (``expire``)."""
        ...

    def expire(self, now: float, keep_for: float, feeds: Sequence[str] | None = None) -> None:
        """Drop references that left more than ``keep_for`` seconds ago; with ``feeds``, the
        references of every other feed leave now (feeds removed from the config)."""
        ...

    def claim(self, now: float, limit: int, hold: float) -> list[Claim]:
        """Up to ``limit`` pending images due by ``now``, held ``hold`` seconds for the caller."""
        ...

    def archived(self, sizes: Mapping[str, int]) -> None:
        """These images (key: size) are in the cache: pinned, counted."""
        ...

    def failed(self, key: str, now: float, reason: str, error: str, next_try: float | None) -> None:
        """An attempt failed: try again at ``next_try``, or give up (None)."""
        ...

    def requeue(self, keys: Sequence[str], now: float) -> None:
        """These archived images' files are gone: fetch them again."""
        ...

    def fit(self, limit: int | None) -> None:
        """Keep the archived bytes within ``limit``: unpin the oldest entries' images past it
        (and pin again those that fit once more)."""
        ...

    def resume(self, now: float) -> None:
        """At start: images claimed by a process that stopped before trying them are due
        now (a store of its own; on a shared one, their claims run out instead)."""
        ...

    def next_due(self) -> float | None:
        """When the next pending image is due, if any."""
        ...

    def summary(self, feed: str | None = None) -> ArchiveSummary:
        """Counts and bytes, of one feed or of all."""
        ...

    def failures(self, feed: str | None = None, limit: int = 1000) -> list[ImageRow]:
        """Images whose last attempt failed (retrying or given up), most recent first."""
        ...

    def images(self, feed: str, entries: Sequence[str]) -> dict[str, list[ImageRow]]:
        """Each entry's images and their states."""
        ...

    def retry(self, feed: str | None, now: float) -> int:
        """Make failed images (of one feed, or all) pending again, due now; how many."""
        ...

    def backfilled(self, feed: str) -> bool:
        """Whether every published entry of ``feed`` was indexed once (``mark_backfilled``):
        else its references are read from the store's archive of entries."""
        ...

    def mark_backfilled(self, feed: str) -> None:
        """Every published entry of ``feed`` has its references."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
