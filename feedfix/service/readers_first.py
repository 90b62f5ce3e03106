"""Readers first: the requests the front answers, counted, and the verdict that background
work (the image archive) reads to give way while readers are many.

The archive fetches on the serving process's event loop and writes from its threads. At
rest that costs nobody anything; under a flood of readers it took 40-50% of their rate
(``benchmarks/bench_archive.py --parts serving``, 2026-12-08: 0.61x for the feed, 0.52x for
an image, against the archive paused). Most of that was a claim sorting every pending image
(``images/archive_schema.py``); the rest is not the archive's CPU (1.5 ms of the loop's an
image) but its threads taking the GIL from the loop some 20 times an image, each time
sending the loop's thread to the back of the CPU queue, where wrk's threads are: 10 images a
second still cost the feed 8% of its rate, 2 a second cost it nothing measurable. So while
the front answers more than ``BUSY`` requests a second, the archive takes one image at a
time, ``BUSY_GAP`` apart (it still goes on: a flood that never ends must not stop it), and
goes back to full speed once the rate falls. The HTTP wing counts, the images wing reads:
the two meet here, not in each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable

WINDOW = 0.5  # seconds over which the readers' rate is measured
BUSY = 100.0  # requests a second from which readers come first
BUSY_GAP = 0.5  # seconds between the archive's fetches while readers come first


class ReaderTraffic:
    """Requests answered so far (the front adds one per request: an attribute, the cheapest
    count there is, on the path that answers tens of thousands a second)."""

    __slots__ = ("answered",)

    def __init__(self) -> None:
        self.answered = 0


class GiveWay:
    """Whether readers come first now: more than ``busy`` requests a second over the last
    ``window`` (looked at no more than once a window; in between, the last verdict)."""

    def __init__(
        self,
        traffic: ReaderTraffic,
        *,
        busy: float = BUSY,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.traffic = traffic
        self.busy = busy
        self.window = window
        self.clock = clock
        self._since = clock()
        self._seen = traffic.answered
        self._verdict = False

    def now(self) -> bool:
        """True while readers come first."""
        at = self.clock()
        elapsed = at - self._since
        if elapsed >= self.window:
            answered = self.traffic.answered
            self._verdict = (answered - self._seen) / elapsed > self.busy
            self._since, self._seen = at, answered
        return self._verdict
