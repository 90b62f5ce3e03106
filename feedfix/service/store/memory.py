"""A Store in a dict: for tests and for running without a disk."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict

from feedfix.core.archive import Archived
from feedfix.core.model import Entry
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published, Snapshot
from feedfix.service.store import HISTORY_KEPT, SOURCES_KEPT, bounded_sources


class MemoryStore:
    """A Store in a dict: nothing survives the process."""

    def __init__(self) -> None:
        self._feeds: dict[str, Snapshot] = {}
        self._history: dict[str, list[PollRecord]] = {}
        self._secrets: dict[str, str] = {}
        self._sources: dict[str, list[Entry]] = {}
        self._lock = threading.Lock()

    def load(self, name: str, *, archive: bool = True) -> Snapshot:
        """A copy of what is kept for ``name``."""
        with self._lock:
            snap = self._feeds.get(name)
            if snap is None:
                return Snapshot()
            entries = dict(snap.archive) if archive else {}
            return Snapshot(FeedState(**asdict(snap.state)), snap.published, entries)

    def load_archive(self, name: str) -> dict[str, Archived]:
        """A copy of the feed's archive."""
        with self._lock:
            snap = self._feeds.get(name)
            return dict(snap.archive) if snap is not None else {}

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
        *,
        fence: str | None = None,  # one process: nobody else can take the feed
    ) -> None:
        """Replace the feed's stored state in one step."""
        with self._lock:
            snap = self._feeds.setdefault(name, Snapshot())
            snap.state = FeedState(**asdict(state))
            if published is not None:
                snap.published = published
            if archive is not None:
                kept = {k: a for k, a in snap.archive.items() if k in archive.kept}
                snap.archive = {**kept, **archive.changed}
            rows = self._history.setdefault(name, [])
            rows.insert(0, record)
            del rows[HISTORY_KEPT:]

    def history(self, name: str, limit: int = 20) -> list[PollRecord]:
        """Newest first."""
        with self._lock:
            return list(self._history.get(name, [])[:limit])

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """Kept for the process's life only (``:memory:`` keeps nothing across restarts)."""
        with self._lock:
            if name not in self._secrets:
                self._secrets[name] = make()
            return self._secrets[name]

    def save_sources(self, name: str, sources: Sequence[Entry]) -> None:
        """Replace the feed's last sources (bounded)."""
        with self._lock:
            self._sources[name] = bounded_sources(sources)

    def sources(self, name: str, limit: int = SOURCES_KEPT) -> list[Entry]:
        """As last saved."""
        with self._lock:
            return list(self._sources.get(name, [])[:limit])

    def close(self) -> None:
        """Nothing to release."""
