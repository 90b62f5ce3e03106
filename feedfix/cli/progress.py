"""A one-line progress bar on stderr, shown only to a person watching a terminal."""

from __future__ import annotations

import time
from typing import TextIO

MIN_ITEMS = 200  # smaller jobs finish before a bar is worth drawing
WIDTH = 30


class TerminalProgress:
    """Callable as ``progress(done, total)``; draws at most ten times a second."""

    def __init__(self, stream: TextIO, label: str, min_items: int | None = None) -> None:
        self.stream = stream
        self.label = label
        self.min_items = MIN_ITEMS if min_items is None else min_items
        self.enabled = stream.isatty()
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int, note: str = "") -> None:
        """Redraw the bar if enough time passed (and always at the end); ``note`` follows
        the counts."""
        if not self.enabled or total < self.min_items:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        filled = WIDTH * done // max(total, 1)
        bar = "#" * filled + "-" * (WIDTH - filled)
        tail = f" {note}\x1b[K" if note else ""  # (erase what a longer note left)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}{tail}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line so that later messages start on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
