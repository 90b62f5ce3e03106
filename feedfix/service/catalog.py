"""What the service is serving right now: each feed's responses (``served.py``), its status
row, and what this process saw of its polls.

Written by the poller, read by the HTTP front and the pages. A feed's RSS and JSON Feed are
rendered from its Atom when first asked for (``other_format``), by ``render`` (``app.py``
gives it the cleaning worker), once per change however many readers ask at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from feedfix.service.logs import log
from feedfix.service.served import IdentityBodies, ServedFeed
from feedfix.service.state import FeedState, Published

# Renders a feed (its name and Atom) in another format: off the event loop.
RenderFormat = Callable[[str, Published, str], Awaitable[Published]]


@dataclass
class Status:
    """A feed's row in the index and in /healthz: its name, where it comes from, the poller's
    state of it as it stands (``state``), the entries served and what to do about a failure."""

    name: str
    upstream: str
    state: FeedState = field(default_factory=FeedState)
    entries: int = 0
    advice: str | None = None  # what to do about the last failure (``advice.py``)

    @property
    def ok(self) -> bool:
        """A poll has succeeded, and none has failed since."""
        success, error_at = self.state.last_success, self.state.last_error_at
        if success is None:
            return False
        return error_at is None or success >= error_at


RECENT_POLLS = 4096  # poll start times kept for the "polls in the last hour" summary


@dataclass
class Activity:
    """What this process saw of a feed's polls (since it started): for the web pages."""

    outcomes: dict[str, int] = field(default_factory=dict)  # ok / not_modified / error
    rule_changes_last: dict[str, int] = field(default_factory=dict)  # the last 200's cleaning
    rule_changes_total: dict[str, int] = field(default_factory=dict)

    @property
    def not_modified_share(self) -> float | None:
        """Share of polls answered 304, None before the first poll."""
        total = sum(self.outcomes.values())
        return self.outcomes.get("not_modified", 0) / total if total else None


@dataclass
class Catalog:
    """The served responses and statuses, by feed name."""

    served: dict[str, ServedFeed] = field(default_factory=dict)
    status: dict[str, Status] = field(default_factory=dict)
    # Told the name of a feed whose responses were replaced or removed (caches drop theirs).
    listeners: list[Callable[[str], None]] = field(default_factory=list)
    store_error: str | None = None  # why the shared store does not answer (None: it does)
    identities: IdentityBodies = field(default_factory=IdentityBodies)
    activity: dict[str, Activity] = field(default_factory=dict)
    recent_polls: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_POLLS))
    render: RenderFormat | None = None  # the feed's other formats (``other_format``)

    def other_format(self, served: ServedFeed, fmt: str) -> ServedFeed | asyncio.Future[ServedFeed]:
        """``served`` (a feed's Atom replies) in format ``fmt``: its replies, or the render
        under way (started now if none is), which every request for it shares."""
        if fmt == served.fmt:
            return served
        others = served.others
        found = others.replies.get(fmt)
        if found is not None:
            return found
        published = others.published.get(fmt)
        if published is not None:
            return self._replies(served, fmt, published)
        pending = others.pending.get(fmt)
        if pending is None:
            pending = asyncio.ensure_future(self._render(served, fmt))
            others.pending[fmt] = pending
        return pending

    async def _render(self, served: ServedFeed, fmt: str) -> ServedFeed:
        """Render ``fmt`` and keep it with ``served`` (a feed whose bytes changed meanwhile
        has new replies, which render their own)."""
        if self.render is None:
            raise RuntimeError("the catalog renders no other format")
        started = time.monotonic()
        try:
            made = await self.render(served.name, served.published, fmt)
        except Exception as exc:
            log("render failed", logging.ERROR, feed=served.name, format=fmt, error=repr(exc))
            raise
        finally:
            served.others.pending.pop(fmt, None)
        served.others.published[fmt] = made
        waited = round((time.monotonic() - started) * 1000, 1)
        log("rendered", feed=served.name, format=fmt, bytes=len(made.gzip), duration_ms=waited)
        return self._replies(served, fmt, made)

    def _replies(self, served: ServedFeed, fmt: str, published: Published) -> ServedFeed:
        """The replies of ``served``'s format ``fmt`` (its bytes ``published``), made once
        with the Atom's headers and kept beside it."""
        found = ServedFeed.of(
            served.name,
            published,
            served.max_age,
            served.stale_since,
            self.identities,
            fmt=fmt,
        )
        served.others.replies[fmt] = found
        return found

    def record_poll(
        self, name: str, outcome: str, started: float, rule_changes: dict[str, int] | None
    ) -> None:
        """Count a poll (``rule_changes``: what cleaning changed, for a 200)."""
        activity = self.activity.setdefault(name, Activity())
        activity.outcomes[outcome] = activity.outcomes.get(outcome, 0) + 1
        self.recent_polls.append(started)
        if rule_changes is not None:
            activity.rule_changes_last = dict(rule_changes)
            for rule, changes in rule_changes.items():
                total = activity.rule_changes_total
                total[rule] = total.get(rule, 0) + changes

    def publish(self, name: str, served: ServedFeed | None, status: Status) -> None:
        """Replace a feed's response (when there is one) and its status."""
        if served is not None and self.served.get(name) is not served:
            self.served[name] = served
            self._changed(name)
        self.status[name] = status

    def remove(self, name: str) -> None:
        """Forget a feed that left the config."""
        self.served.pop(name, None)
        self.status.pop(name, None)
        self.activity.pop(name, None)
        self._changed(name)

    def _changed(self, name: str) -> None:
        self.identities.drop(name)
        for listener in self.listeners:
            listener(name)
