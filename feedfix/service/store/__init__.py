"""Where the service keeps what it must not lose: the last good output, the upstream's
validators, a poll history and the entry archive.

A small ``Store`` interface with two backends: SQLite (the default, ``sqlite.py``) and memory
(for tests and for running without a disk, ``memory.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from feedfix.core.errors import FeedfixError
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published, Snapshot

HISTORY_KEPT = 200  # poll records kept per feed


class StoreError(FeedfixError):
    """The store could not be opened or written (disk full, locked, not a database)."""


class Store(Protocol):
    """The storage interface the service depends on."""

    def load(self, name: str) -> Snapshot:
        """Everything stored for a feed (empty when nothing is)."""

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
    ) -> None:
        """Record one poll atomically: all of it is stored, or none of it."""

    def history(self, name: str, limit: int = 20) -> list[PollRecord]:
        """The newest poll records of a feed, newest first."""

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """The value kept under ``name``; the first time, ``make()``'s, kept from then on.

        Atomic: when two processes (replicas) ask at once, both get the one value stored
        first (the image proxy's signing key: every replica must sign alike)."""

    def close(self) -> None:
        """Release the backend."""


def open_store(path: str) -> Store:
    """The backend a ``[storage] path`` names: ``:memory:`` for memory, else a SQLite file."""
    from feedfix.service.store.memory import MemoryStore  # noqa: PLC0415
    from feedfix.service.store.sqlite import SqliteStore  # noqa: PLC0415

    return MemoryStore() if path == ":memory:" else SqliteStore(path)
