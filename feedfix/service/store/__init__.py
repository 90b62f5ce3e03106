"""Where the service keeps what it must not lose: the last good output, the upstream's
validators, a poll history and the entry archive.

A small ``Store`` interface with three backends: SQLite (the default, ``sqlite.py``), memory
(for tests and for running without a disk, ``memory.py``) and Redis (shared by replicas,
``redis.py``). The archive's entries stay in the store: a poll that needs them reads them
(``load_archive``), so a process holds only what it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from feedfix.config import StorageConfig, redacted_url
from feedfix.core.archive import Archived
from feedfix.core.errors import FeedfixError
from feedfix.core.model import Entry
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published, Snapshot

HISTORY_KEPT = 200  # poll records kept per feed
SOURCES_KEPT = 100  # entries of the last poll kept as received, per feed (for the inspector)
SOURCE_MAX_CHARS = 500_000  # an entry's HTML longer than this is not kept as a source


class StoreError(FeedfixError):
    """The store could not be opened or written (disk full, locked, not a database)."""


class Fenced(StoreError):
    """A write refused because another replica took the feed's lease since this one got it."""


class Store(Protocol):
    """The storage interface the service depends on."""

    def load(self, name: str, *, archive: bool = True) -> Snapshot:
        """Everything stored for a feed (empty when nothing is); without the archive's
        entries when ``archive`` is false."""

    def load_archive(self, name: str) -> dict[str, Archived]:
        """The feed's archived entries, for a poll that republishes."""

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
        *,
        fence: str | None = None,
    ) -> None:
        """Record one poll atomically: all of it is stored, or none of it.

        ``fence`` is the lease token the poll ran under (shared backends): the write is
        refused with ``Fenced`` when the feed's lease was granted to someone else since.
        """

    def history(self, name: str, limit: int = 20) -> list[PollRecord]:
        """The newest poll records of a feed, newest first."""

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """The value kept under ``name``; the first time, ``make()``'s, kept from then on.

        Atomic: when two processes (replicas) ask at once, both get the one value stored
        first (the image proxy's signing key: every replica must sign alike)."""

    def save_sources(self, name: str, sources: Sequence[Entry]) -> None:
        """Replace the feed's entries as last received (the inspector shows them); at most
        ``SOURCES_KEPT``, none longer than ``SOURCE_MAX_CHARS`` (``bounded_sources``)."""

    def sources(self, name: str, limit: int = SOURCES_KEPT) -> list[Entry]:
        """The feed's first ``limit`` entries as last received, in the upstream's order."""

    def close(self) -> None:
        """Release the backend."""


@runtime_checkable
class SharedStore(Store, Protocol):
    """What only a store that replicas share (Redis) does besides ``Store``'s."""

    def restore(self, name: str, state: FeedState, published: Published) -> bool:
        """Put a served copy back where the store has none (it came back empty); true when
        it was missing and is stored now."""


def bounded_sources(sources: Sequence[Entry]) -> list[Entry]:
    """What a store keeps of a poll's sources: the first ``SOURCES_KEPT`` that are not huge."""
    kept = [e for e in sources if len(e.content or "") + len(e.summary or "") <= SOURCE_MAX_CHARS]
    return kept[:SOURCES_KEPT]


def redacted(url: str) -> str:
    """A Redis URL without its password, for logs and messages."""
    return redacted_url(url)


def open_configured(storage: StorageConfig) -> Store:
    """The backend ``[storage]`` names: Redis at ``url``, else ``open_store(path)``."""
    if storage.backend == "redis" and storage.url:
        from feedfix.service.store.redis import RedisStore  # noqa: PLC0415

        return RedisStore(storage.url, storage.prefix)
    return open_store(storage.path)


def open_store(path: str) -> Store:
    """The backend a ``[storage] path`` names: ``:memory:`` for memory, else a SQLite file."""
    from feedfix.service.store.memory import MemoryStore  # noqa: PLC0415
    from feedfix.service.store.sqlite import SqliteStore  # noqa: PLC0415

    return MemoryStore() if path == ":memory:" else SqliteStore(path)
