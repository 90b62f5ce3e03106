"""The poll decision: what one poll's outcome means for a feed, decided without doing anything.

Given what the poller holds for a feed (``Memory``), what the poll brought back
(``Attempt``: the upstream's answer and what cleaning made of it, or the error), the time,
the feed's settings and a random draw, ``decide`` says what the feed's state becomes, which
poll record and output to store, when to poll next, and how the poll is counted. ``settle``
says what the poller holds after the store took the write, or failed to. The poller
(``poller.py``) does the I/O around these; no network, no disk, no clock, no event loop here
(an import-linter contract keeps it so), so tests check every case in a table, quickly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from feedfix.config import FeedConfig, PollConfig
from feedfix.core.errors import FeedfixError
from feedfix.core.republish import rules_fingerprint
from feedfix.core.schedule import Hints, max_age_seconds, next_delay, retry_after_seconds
from feedfix.service.poll.fetch_types import FetchError, FetchRequest, FetchResult
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, PollStatus, Published

NOT_A_FEED = "bad-feed"  # the error kind of an answer that fetched but did not clean


@dataclass(frozen=True)
class Memory:
    """What the poller holds for one feed between polls."""

    state: FeedState  # as stored (never changed in place: each decision makes a new one)
    published: Published | None  # the output being served
    unsaved: bool = False  # the served output is not in the store yet: write it with the next
    # the store was found without the served copy (Redis came back empty): the write that
    # puts it back, a restore's or a poll's, is counted as a restored copy
    lost: bool = False
    resend: bool = False  # archive rows went unstored: the worker must send every row again


class Made(Protocol):
    """What the cleaning worker made of a 200 (``worker.Cleaned`` is one)."""

    @property
    def published(self) -> Published | None:
        """New bytes to serve, when the output changed."""

    @property
    def archive(self) -> ArchiveUpdate:
        """The archive after this poll."""

    @property
    def ttl_minutes(self) -> int | None:
        """The feed's RSS ``<ttl>``."""


@dataclass(frozen=True)
class DecisionSettings:
    """The parts of the config a decision reads."""

    interval: float
    max_backoff: float  # never below the interval
    jitter: float
    fingerprint: str  # the URL and rules this poll's output is made with
    hints: bool = True  # heed the upstream's max-age and ttl (not a local file's own ttl)

    @classmethod
    def of(cls, feed: FeedConfig, poll: PollConfig) -> DecisionSettings:
        """A feed's settings under the ``[poll]`` limits."""
        return cls(
            interval=feed.interval,
            max_backoff=max(poll.max_backoff, feed.interval),
            jitter=poll.jitter,
            fingerprint=fingerprint(feed),
            hints=feed.url is not None,
        )


@dataclass(frozen=True)
class Attempt:
    """What one poll brought back: an answer (and what cleaning made of a 200), or an error.

    ``result`` with ``error`` is a 200 whose bytes did not clean (an HTML page, broken XML).
    """

    started: float  # wall clock when the poll began, for the history
    duration: float  # seconds from the request to now
    result: FetchResult | None = None
    made: Made | None = None
    error: FeedfixError | None = None

    def __post_init__(self) -> None:
        if self.result is None and self.error is None:
            raise ValueError("an Attempt has a result, an error, or both")


@dataclass(frozen=True)
class Write:
    """What one poll hands the store, to be kept all together or not at all."""

    state: FeedState
    record: PollRecord
    published: Published | None  # output to store: new, or served but not stored yet
    archive: ArchiveUpdate | None


@dataclass(frozen=True)
class Decision:
    """What a poll means: the outcome, what to hold and store, and when to come back."""

    outcome: PollStatus
    memory: Memory  # to hold from now on (``settle`` it once the store answers)
    write: Write
    delay: float  # seconds until the next poll
    changed: bool  # the poll made new bytes to serve
    error_kind: str | None  # the label of ``feedfix_poll_errors``, for a failed poll


def fingerprint(feed: FeedConfig) -> str:
    """What the published output depends on besides the upstream's bytes (the feed's own
    title, link, id and permalink only when set: a feed without them keeps its fingerprint)."""
    own = "".join(f"\x1f{k}={v}" for k, v in sorted(feed.own_metadata.items()))
    return f"{feed.source}\x1f{rules_fingerprint(feed)}{own}"


def error_kind(error: FeedfixError) -> str:
    """How a failed poll is counted: the fetch failure's kind, or "bad-feed"."""
    return error.kind if isinstance(error, FetchError) else NOT_A_FEED


def on_config(memory: Memory, feed_fingerprint: str) -> Memory:
    """After the URL or the rules change, a 304 must not keep the old output: the stored
    validators are forgotten, so the next poll fetches in full."""
    if memory.state.fingerprint == feed_fingerprint:
        return memory
    state = replace(memory.state, upstream_etag=None, upstream_last_modified=None)
    return replace(memory, state=state)


def request_for(memory: Memory, feed: FeedConfig, poll: PollConfig) -> FetchRequest:
    """The feed's GET: conditional only while there is an output a 304 would keep."""
    have_copy = memory.published is not None
    return FetchRequest(
        url=feed.source,
        etag=memory.state.upstream_etag if have_copy else None,
        last_modified=memory.state.upstream_last_modified if have_copy else None,
        timeout=feed.timeout,
        connect_timeout=feed.connect_timeout,
        max_size=feed.max_size,
        user_agent=feed.user_agent,
        headers=feed.headers,
        max_redirects=poll.max_redirects,
        allow_private_redirects=poll.allow_private_redirects,
    )


def decide(
    memory: Memory, attempt: Attempt, now: float, settings: DecisionSettings, draw: float
) -> Decision:
    """One poll's consequences (``draw`` in [0, 1) places the next poll within the jitter).

    A good answer resets the failures and the stale mark, and a 200's validators are kept for
    the next conditional GET. A failure counts one more failure, marks a served copy stale
    from now and backs off; nothing that is not a good feed replaces the output being served.
    """
    result, made, error = attempt.result, attempt.made, attempt.error
    state, published = memory.state, memory.published
    archive: ArchiveUpdate | None = None
    changed = False
    if error is None and result is not None:
        outcome: PollStatus = "not_modified" if result.status == 304 else "ok"
        state = replace(
            state,
            failures=0,
            last_success=now,
            stale_since=None,
            permanent_redirect=result.permanent_redirect,
        )
        if result.status == 200:
            state = replace(
                state,
                upstream_etag=result.etag,
                upstream_last_modified=result.last_modified,
                fingerprint=settings.fingerprint,
            )
        ttl = made.ttl_minutes * 60.0 if made is not None and made.ttl_minutes else None
        hints = Hints(max_age=max_age_seconds(result.cache_control), ttl=ttl)
        if not settings.hints:  # a local source is polled at its own interval
            hints = Hints()
        if made is not None:
            changed = made.published is not None
            published = made.published or memory.published
            archive = made.archive if changed or made.archive.changed else None
    else:
        outcome = "error"
        state = replace(
            state,
            failures=state.failures + 1,
            last_error=str(error),
            last_error_at=now,
            stale_since=now
            if memory.published is not None and state.stale_since is None
            else state.stale_since,
        )
        retry_after = error.retry_after if isinstance(error, FetchError) else None
        hints = Hints(retry_after=retry_after_seconds(retry_after, now))
    delay = next_delay(
        interval=settings.interval,
        ok=outcome != "error",
        failures=state.failures,
        hints=hints,
        max_backoff=settings.max_backoff,
        jitter=settings.jitter,
        draw=draw,
    )
    state = replace(state, next_poll=now + delay)
    record = PollRecord(
        started=attempt.started,
        status=outcome,
        duration=round(attempt.duration, 4),
        error=str(error) if error is not None else None,
        bytes=result.size if result is not None else 0,
        changed=changed,
        http_status=result.status if result is not None else getattr(error, "status", None),
    )
    to_store = published if changed else (memory.published if memory.unsaved else None)
    return Decision(
        outcome=outcome,
        memory=replace(memory, state=state, published=published),
        write=Write(state, record, to_store, archive),
        delay=delay,
        changed=changed,
        error_kind=error_kind(error) if error is not None else None,
    )


def settle(memory: Memory, write: Write, failure: str | None, now: float) -> Memory:
    """What to hold once the store took ``write`` (``failure`` None) or could not.

    An unstored write leaves its output to be stored with the next poll, its archive rows to
    be sent again, and the validators forgotten, so that the next poll fetches in full rather
    than being told "not modified" about bytes the store never got.
    """
    if failure is None:
        return replace(
            memory, unsaved=False, lost=False, resend=memory.resend and write.archive is None
        )
    state = replace(
        memory.state,
        last_error=f"storage: {failure}",
        last_error_at=now,
        upstream_etag=None,
        upstream_last_modified=None,
    )
    return replace(
        memory, state=state, unsaved=True, resend=memory.resend or write.archive is not None
    )
