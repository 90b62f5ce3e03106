"""The shell's own state types: what is served, what a poll remembers, what is stored.

Plain dataclasses with no behaviour, shared by the poller, the worker, the served feeds and
every store backend. Importing this module imports no lxml and no aiohttp.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from feedfix.core.archive import Archived


@dataclass(frozen=True)
class Published:
    """Bytes as served, with the validators computed once when they were made.

    Only the gzip is held: an Atom feed of cleaned HTML compresses about 5x, and most
    readers ask for gzip. The identity bytes are inflated when wanted (``identity``: about
    0.4 ms for 250 KB on the 2-core VM), as nginx's gunzip module does; the catalog keeps
    the most recently asked-for ones. 100 feeds of 50 entries: 5 MB held instead of 27 MB.
    """

    gzip: bytes
    etag: str  # strong, quoted
    last_modified: float  # epoch seconds when these bytes first appeared
    entries: int

    @classmethod
    def of(cls, body: bytes, etag: str, last_modified: float, entries: int) -> Published:
        """``body`` compressed once (``mtime`` 0: the same bytes always give the same gzip)."""
        return cls(gzip.compress(body, compresslevel=6, mtime=0), etag, last_modified, entries)

    def identity(self) -> bytes:
        """The bytes as served without gzip, inflated now (callers keep what they need)."""
        return zlib.decompress(self.gzip, wbits=31)


@dataclass
class FeedState:
    """What the poller remembers about one feed between polls and across restarts."""

    upstream_etag: str | None = None
    upstream_last_modified: str | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0
    next_poll: float | None = None
    stale_since: float | None = None
    permanent_redirect: str | None = None
    fingerprint: str | None = None  # url and rules the stored output was made with


PollStatus = Literal["ok", "not_modified", "error"]  # a 200 that cleaned, a 304, anything else


@dataclass(frozen=True)
class PollRecord:
    """One line of poll history."""

    started: float
    status: PollStatus
    duration: float
    error: str | None = None
    bytes: int = 0
    changed: bool = False
    http_status: int | None = None


@dataclass(frozen=True)
class ArchiveUpdate:
    """A feed's archive after a poll: the ids it keeps, and the entries new or changed since
    the rows last sent (all of them after a write that failed)."""

    kept: frozenset[str]
    changed: Mapping[str, Archived]


@dataclass
class Snapshot:
    """Everything stored for one feed, as loaded at start."""

    state: FeedState = field(default_factory=FeedState)
    published: Published | None = None
    archive: dict[str, Archived] = field(default_factory=dict)
