"""When to poll next: intervals, the upstream's hints, backoff and jitter. Pure: the clock and
the random draw are arguments, so every decision can be tested exactly.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass

MIN_DELAY = 1.0
STARTUP_SPREAD = 10.0  # first polls after a start are spread over this many seconds
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.I)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:[=,]|$)", re.I)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def max_age_seconds(cache_control: str | None) -> float | None:
    """``Cache-Control: max-age`` (or ``s-maxage``) in seconds.

    ``no-cache`` or ``no-store`` anywhere in the header wins over a max-age beside it: the
    upstream asks to be asked again, so it gives no reason to wait longer than the interval.
    """
    if not cache_control or _NO_CACHE.search(cache_control):
        return None
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


@dataclass(frozen=True)
class Hints:
    """What the upstream said about when to come back."""

    retry_after: float | None = None  # seconds, from a 429/503
    max_age: float | None = None  # seconds, from Cache-Control
    ttl: float | None = None  # seconds, from RSS <ttl>


def next_delay(
    *,
    interval: float,
    ok: bool,
    failures: int,
    hints: Hints,
    max_backoff: float,
    jitter: float,
    draw: float,
) -> float:
    """Seconds until the next poll.

    Success: the interval, or longer when the upstream asks (max-age, ttl) up to
    ``max_backoff``. Failure: the interval doubled per consecutive failure, capped at
    ``max_backoff``. A Retry-After is honoured, up to ``max_backoff``. ``draw`` in [0, 1)
    spreads polls by +/- ``jitter`` of the delay so feeds that started together drift apart.
    """
    if ok:
        asked = max(hints.max_age or 0.0, hints.ttl or 0.0)
        base = max(interval, min(asked, max_backoff))
    else:
        base = min(interval * 2 ** max(failures - 1, 0), max(max_backoff, interval))
    if hints.retry_after is not None:
        base = max(base, min(hints.retry_after, max_backoff))
    return max(MIN_DELAY, base * (1 + jitter * (2 * draw - 1)))


def first_delay(name: str, next_poll: float | None, now: float, interval: float) -> float:
    """Seconds until the first poll after a start.

    A feed whose stored next poll is still ahead waits for it; any other is placed at a
    stable, name-derived point of the first few seconds, so a hundred feeds never fire at once.
    """
    if next_poll is not None and next_poll > now:
        return min(next_poll - now, interval)
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    return fraction * min(STARTUP_SPREAD, interval)
