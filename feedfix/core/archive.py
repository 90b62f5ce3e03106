"""An entry as the service's archive keeps it, between polls and across restarts.

Its own module so that the shell's state types can name it without importing lxml.
"""

from __future__ import annotations

from dataclasses import dataclass

from feedfix.core.model import Entry


@dataclass(frozen=True)
class Archived:
    """A cleaned entry as the archive keeps it."""

    id: str
    source_hash: str
    entry: Entry
    first_seen: float

    def sort_key(self) -> tuple[float, str]:
        """Newest first by the entry's own date, else by when feedfix first saw it."""
        when = self.entry.date.timestamp() if self.entry.date else self.first_seen
        return (-when, self.id)
