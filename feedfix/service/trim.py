"""Hand freed memory back to the system after a burst of work: a republishing poll, the
image archive's fetches.

A poll that republishes reads its feed's archive (tens of KB-sized strings per entry),
parses, cleans and renders, then lets it all go. Those strings are allocated by the C
library's malloc, not Python's small-object allocator, and the holes they leave between
longer-lived objects stay in the process (resident) until glibc's ``malloc_trim`` returns
their pages. The archive's threads (its index, the image writes) each get a malloc arena of
their own, which kept 11-12 MB resident after 10,000 images were archived
(``bench_archive.py --parts memory``, 2026-12-08). Called at most once per ``EVERY``
seconds; where there is no glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

EVERY = 1.0  # seconds between trims at most


def _load() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    except OSError:
        return None
    return trim


_TRIM = _load()


class Trimmer:
    """Trims when asked, but not more often than every ``every`` seconds."""

    def __init__(self, every: float = EVERY) -> None:
        self.every = every
        self._last = 0.0

    def __call__(self) -> bool:
        """Trim now unless it was done lately; true when it trimmed."""
        now = time.monotonic()
        if _TRIM is None or now - self._last < self.every:
            return False
        self._last = now
        _TRIM(0)
        return True
