"""Readers first (``service/readers_first.py``): when the verdict says readers are many, and how
long it holds. The clock is the test's, so every boundary is exact."""

from __future__ import annotations

from feedfix.service.readers_first import GiveWay, ReaderTraffic


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.at = 100.0

    def __call__(self) -> float:
        return self.at


def test_readers_come_first_above_the_rate_and_not_at_it() -> None:
    """Over each window: more than ``busy`` requests a second is busy, ``busy`` exactly is
    not; the verdict follows the rate down again."""
    traffic, clock = ReaderTraffic(), Clock()
    give_way = GiveWay(traffic, busy=100, window=1.0, clock=clock)
    assert not give_way.now()  # nothing measured yet
    for answered, busy in ((100, False), (101, True), (5000, True), (0, False), (99, False)):
        traffic.answered += answered
        clock.at += 1.0
        assert give_way.now() is busy, (answered, busy)


def test_the_verdict_holds_for_a_window_then_is_measured_again() -> None:
    """Looked at more often than once a window, the last verdict stands (a burst inside
    the window is counted at its end), so the count is read at most once a window."""
    traffic, clock = ReaderTraffic(), Clock()
    give_way = GiveWay(traffic, busy=100, window=1.0, clock=clock)
    traffic.answered = 1000
    clock.at += 0.5
    assert not give_way.now()  # half a window: not measured yet
    clock.at += 0.5
    assert give_way.now()  # 1000 in one second
    clock.at += 0.9
    assert give_way.now()  # nothing new, but the window is not over
    clock.at += 0.1
    assert not give_way.now()  # a whole second without a request


def test_a_long_quiet_spell_is_measured_as_a_rate_over_all_of_it() -> None:
    """Not looked at for a minute: the rate is over the minute (no division by a window
    that is not the one that passed)."""
    traffic, clock = ReaderTraffic(), Clock()
    give_way = GiveWay(traffic, busy=100, window=1.0, clock=clock)
    traffic.answered = 3000
    clock.at += 60
    assert not give_way.now()  # 50 a second
    traffic.answered += 7000
    clock.at += 60
    assert give_way.now()  # 116 a second
