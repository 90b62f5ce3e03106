"""What the pages say, worked out from the catalog, the config and the poll history.

Plain functions of their arguments (the time is one): the words for a feed's state and what
to do about it, why the next poll comes when it does, and the poll-history chart as SVG
numbers. The templates only lay these out.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from markupsafe import Markup, escape

from feedfix.config import FeedConfig, PollConfig
from feedfix.core.pipeline import NOTE_UNITS, Report
from feedfix.core.rules import RULES
from feedfix.service.catalog import Status
from feedfix.service.state import PollRecord

CHART_WIDTH = 600
CHART_HEIGHT = 120
OUTCOME_WORDS = {"ok": "ok (200)", "not_modified": "not modified (304)", "error": "error"}


@dataclass(frozen=True)
class State:
    """A feed's state: a short key (for styling), its words, and what to do about it."""

    key: str  # ok, stale, failing, waiting
    words: str
    advice: str


_ADVICE: tuple[tuple[str, str], ...] = (
    (r"HTTP 40[13]\b", "the upstream refuses feedfix: check the feed's credentials "
                       "(its key or token, its headers)"),
    (r"HTTP 404\b|HTTP 410\b", "the upstream has no such feed: check the feed's url"),
    (r"HTTP 429\b", "the upstream is rate-limiting: feedfix waits as it asks; consider a "
                    "longer interval"),
    (r"HTTP 5\d\d\b", "the upstream is failing: feedfix retries with backoff; nothing to do "
                      "unless it lasts"),
    (r"within [\d.]+ s", "the upstream is slow or unreachable: check it, or raise the "
                         "feed's timeout"),
    (r"cannot connect|connect|refused|resolve", "the upstream cannot be reached: check its "
                                                 "host name and that it is up"),
    (r"redirect", "the upstream redirects somewhere feedfix will not follow: check the url"),
    (r"cap\b|too large", "the upstream's answer is larger than the feed's max_size: raise it"),
    (r"^storage", "feedfix cannot write its database: check the disk and [storage] path"),
)  # fmt: skip
_DEFAULT_ADVICE = "the upstream sent something that is not a good feed: open its url to see"


def advice_for(error: str) -> str:
    """What to do about a failure, from its message."""
    for pattern, advice in _ADVICE:
        if re.search(pattern, error, re.I):
            return advice
    return _DEFAULT_ADVICE


def state_of(status: Status) -> State:
    """The feed's state in words: ok, stale since when and why, failing and why, waiting."""
    if status.ok:
        return State("ok", "ok", "")
    if status.state.last_error is None:
        return State("waiting", "waiting for its first poll", "nothing to do yet")
    advice = status.advice or advice_for(status.state.last_error)  # the poller's, when it has one
    if status.state.stale_since is not None:
        since = when(status.state.stale_since)
        serving = when(status.state.last_success) if status.state.last_success else "an earlier run"
        words = f"stale since {since}: {status.state.last_error}; serving the copy from {serving}"
        return State("stale", words, advice)
    if status.state.last_success is None:
        return State("failing", f"failing: {status.state.last_error}", advice)
    return State("failing", f"failing: {status.state.last_error}", advice)


def when(epoch: float | None) -> str:
    """A time as the pages show it: ``2026-12-01 07:45 UTC``."""
    if not epoch:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def ago(epoch: float | None, now: float) -> str:
    """How long before (or after) ``now``: ``3 min ago``, ``in 5 s``."""
    if not epoch:
        return ""
    delta = now - epoch
    text = duration(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def duration(seconds: float) -> str:
    """``850 ms``, ``12 s``, ``4 min``, ``2 h 5 min``, ``3 d``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"
    return f"{seconds / 86400:.0f} d"


def size(count: int) -> str:
    """``512 B``, ``14.2 kB``, ``3.1 MB``."""
    if count < 1000:
        return f"{count} B"
    if count < 1000**2:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1000**2:.1f} MB"


def next_poll_reason(
    status: Status, feed: FeedConfig, poll: PollConfig, last: PollRecord | None
) -> str:
    """Why the next poll comes when it does: the interval, the upstream's hints, backoff."""
    interval = duration(feed.interval)
    if status.state.next_poll is None or last is None:
        return "the first poll after a start, spread over its first seconds"
    waited = status.state.next_poll - (last.started + last.duration)
    slack = 1 + poll.jitter
    failures = status.state.failures
    if failures:
        backoff = min(feed.interval * 2 ** (failures - 1), max(poll.max_backoff, feed.interval))
        if waited > backoff * slack + 1:
            return "the upstream's Retry-After (it asked feedfix to wait)"
        return (
            f"backoff after {failures} failed poll{'s' if failures > 1 else ''}: "
            f"the interval ({interval}) doubled per failure, at most "
            f"{duration(max(poll.max_backoff, feed.interval))}"
        )
    if waited > feed.interval * slack + 1:
        return (
            f"the upstream asked for longer than the interval ({interval}): its "
            "Cache-Control max-age or RSS ttl"
        )
    return f"the feed's interval ({interval}, ±{poll.jitter:.0%} jitter)"


@dataclass(frozen=True)
class Bar:
    """One poll in the history chart."""

    x: float
    y: float
    width: float
    height: float
    outcome: str
    label: str


def chart(records: list[PollRecord]) -> list[Bar]:
    """Bars for the poll history, oldest on the left, height by duration (an error is a
    full-height bar, its outcome said in its label and marked with a cross as well)."""
    ordered = list(reversed(records))
    if not ordered:
        return []
    longest = max(r.duration for r in ordered) or 1.0
    step = CHART_WIDTH / max(len(ordered), 1)
    bars = []
    for index, record in enumerate(ordered):
        share = 1.0 if record.status == "error" else max(record.duration / longest, 0.03)
        height = share * (CHART_HEIGHT - 14)
        label = f"{when(record.started)}: {OUTCOME_WORDS[record.status]}, " + duration(
            record.duration
        )
        bars.append(
            Bar(
                index * step + step * 0.1,
                CHART_HEIGHT - height,
                step * 0.8,
                height,
                record.status,
                label,
            )
        )
    return bars


_ONE = {  # a rule's unit (plural, as --explain prints it) for a count of one
    "urls": "url",
    "images": "image",
    "elements": "element",
    "elements and attributes": "element or attribute",
    "entries dropped": "entry dropped",
    "entries": "entry",
    "changes": "change",
    "feeds": "feed",
    "polls": "poll",
    "requests": "request",
}


def counted(count: float, plural: str) -> str:
    """``1 url``, ``2 urls``, ``0 images``: a count with its noun in the right number."""
    number = int(count) if float(count).is_integer() else count
    return f"{number:,} {_ONE.get(plural, plural) if number == 1 else plural}"


def explain(report: Report) -> str:
    """The ``--explain`` report of ``feedfix convert``, as text, in words that agree with
    their counts (``1 url in 1 entry``)."""
    lines = [
        f"{name}: {counted(count.changes, _unit(name))} in {counted(count.entries, 'entries')}"
        for name, count in report.counts.items()
    ]
    return "\n".join([*lines, f"entries: {report.entries}"])


def _unit(name: str) -> str:
    """What a report line counts: a rule's unit, or a note's (unsafe URLs, limits)."""
    cls = RULES.get(name)
    return cls.unit if cls is not None else NOTE_UNITS.get(name, "dropped")


def unit(rule: str, count: float = 2) -> str:
    """What a rule's count counts (``urls``, ``images``…), singular for a count of one."""
    plural = _unit(rule) if rule in RULES or rule in NOTE_UNITS else "changes"
    return _ONE.get(plural, plural) if count == 1 else plural


def described(rule: str) -> str:
    """A rule's one-line description (the first line of its help, as ``feedfix rules``)."""
    cls = RULES.get(rule)
    return cls.help().split("\n", 1)[0] if cls is not None else ""


def with_code(text: str | None) -> Markup:
    """Plain advice with its `backticked` names as ``<code>`` (escaped first)."""
    escaped = str(escape(text or ""))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))  # noqa: S704 (escaped above)


@dataclass(frozen=True)
class ImageCache:
    """The image cache's figures, for the index and its JSON."""

    entries: int
    bytes: int
    hits: int
    requests: int

    @property
    def hit_rate(self) -> float | None:
        """Hits per request answered from the cache or fetched (None before any)."""
        return self.hits / self.requests if self.requests else None

    def summary(self) -> str:
        """``Image cache: 1 image, 156 B; hit rate 50% of 2 requests.``"""
        rate = f"{self.hit_rate:.0%}" if self.hit_rate is not None else "—"
        return (
            f"Image cache: {counted(self.entries, 'images')}, {size(self.bytes)}; "
            f"hit rate {rate} of {counted(self.requests, 'requests')}."
        )
