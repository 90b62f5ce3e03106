"""The pure poll decision, case by case: each row is a feed's memory and a poll's outcome, and
what the decision must say about state, record, write, delay and counting. No I/O: the whole
table runs in milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from feedfix.config import FeedConfig, PollConfig
from feedfix.core.archive import Archived
from feedfix.core.errors import FeedfixError, InputError
from feedfix.core.model import Entry
from feedfix.service.poll.decide import (
    Attempt,
    Decision,
    DecisionSettings,
    Memory,
    Write,
    decide,
    error_kind,
    fingerprint,
    on_config,
    request_for,
    settle,
)
from feedfix.service.poll.fetch_types import (
    BadResponse,
    BodyError,
    ConnectFailed,
    FetchError,
    FetchResult,
    FetchTimeout,
    HttpStatusError,
    NetworkError,
    RedirectRefused,
    TooLarge,
    TooManyRedirects,
)
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published

NOW = 1_700_000_000.0
INTERVAL = 600.0
SETTINGS = DecisionSettings(interval=INTERVAL, max_backoff=3600.0, jitter=0.1, fingerprint="fp-now")
MIDDLE = 0.5  # the draw that adds no jitter
OLD = Published(b"gz-old", '"old"', NOW - 3600, 3)  # the decision never reads bytes
NEW = Published(b"gz-new", '"new"', NOW, 4)
ROWS = ArchiveUpdate(
    frozenset({"a", "b"}), {"b": Archived("b", "h", Entry(id="b", title="B"), NOW)}
)
NO_ROWS = ArchiveUpdate(frozenset({"a"}), {})
KNOWN = FeedState(
    upstream_etag='"up-old"',
    upstream_last_modified="Mon, 01 Jan 2024 00:00:00 GMT",
    last_success=NOW - 600,
    fingerprint="fp-now",
)


@dataclass(frozen=True)
class Made:
    """What the cleaning worker made, as the decision sees it."""

    published: Published | None
    archive: ArchiveUpdate = field(default_factory=lambda: NO_ROWS)
    ttl_minutes: int | None = None


def answer(
    status: int = 200,
    body: bytes = b"<rss/>",
    *,
    etag: str | None = '"up-new"',
    last_modified: str | None = "Tue, 02 Jan 2024 00:00:00 GMT",
    cache_control: str | None = None,
    permanent_redirect: str | None = None,
) -> FetchResult:
    """An upstream answer as the fetcher returns it."""
    return FetchResult(
        status=status,
        body=body if status == 200 else b"",
        etag=etag,
        last_modified=last_modified,
        charset="utf-8",
        content_type="application/rss+xml",
        cache_control=cache_control,
        retry_after=None,
        final_url="http://127.0.0.1:9/feed",
        permanent_redirect=permanent_redirect,
        elapsed=0.1,
    )


def ok(
    made: Made | None = None,
    *,
    cache_control: str | None = None,
    permanent_redirect: str | None = None,
) -> Attempt:
    """A 200 and what it made."""
    result = answer(200, cache_control=cache_control, permanent_redirect=permanent_redirect)
    return Attempt(NOW - 1, 0.25, result, made or Made(NEW, ROWS))


def not_modified() -> Attempt:
    """A 304 (which carries no new validators here)."""
    return Attempt(NOW - 1, 0.05, answer(304, etag=None, last_modified=None))


def failed(error: FeedfixError, result: FetchResult | None = None) -> Attempt:
    """A poll that failed with ``error`` (after a 200 that did not clean, with ``result``)."""
    return Attempt(NOW - 1, 0.5, result, None, error)


def served(state: FeedState = KNOWN, published: Published | None = OLD, **flags: bool) -> Memory:
    """A feed being served (``published=None``: one never fetched well)."""
    return Memory(state, published, **flags)


def pick(decision: Decision, path: str) -> Any:
    """``decision.a.b.c`` by its dotted path."""
    value: Any = decision
    for part in path.split("."):
        value = getattr(value, part)
    return value


TIMEOUT = FetchTimeout("http://127.0.0.1:9/feed: no complete answer within 30 s")
CASES: list[tuple[str, Memory, Attempt, float, dict[str, Any]]] = [
    (
        "first good poll: output served and stored with its archive rows",
        served(FeedState(), None),
        ok(),
        MIDDLE,
        {
            "outcome": "ok",
            "changed": True,
            "error_kind": None,
            "delay": INTERVAL,
            "memory.published": NEW,
            "memory.state.upstream_etag": '"up-new"',
            "memory.state.fingerprint": "fp-now",
            "memory.state.last_success": NOW,
            "memory.state.next_poll": NOW + INTERVAL,
            "write.published": NEW,
            "write.archive": ROWS,
            "write.record": PollRecord(NOW - 1, "ok", 0.25, None, 6, True, 200),
        },
    ),
    (
        "200 with the same output: nothing new to serve or store",
        served(),
        ok(Made(None, NO_ROWS)),
        MIDDLE,
        {
            "outcome": "ok",
            "changed": False,
            "memory.published": OLD,
            "memory.state.upstream_etag": '"up-new"',
            "write.published": None,
            "write.archive": None,
        },
    ),
    (
        "200 with the same output but changed archive rows: the rows are stored",
        served(),
        ok(Made(None, ROWS)),
        MIDDLE,
        {"changed": False, "write.published": None, "write.archive": ROWS},
    ),
    (
        "304: the validators stay, the failures and the stale mark go",
        served(replace(KNOWN, failures=3, stale_since=NOW - 100)),
        not_modified(),
        MIDDLE,
        {
            "outcome": "not_modified",
            "changed": False,
            "delay": INTERVAL,
            "memory.state.upstream_etag": '"up-old"',
            "memory.state.failures": 0,
            "memory.state.stale_since": None,
            "memory.state.last_success": NOW,
            "write.published": None,
            "write.record": PollRecord(NOW - 1, "not_modified", 0.05, None, 0, False, 304),
        },
    ),
    (
        "304 while the served output is unstored: it is stored now",
        served(unsaved=True),
        not_modified(),
        MIDDLE,
        {"outcome": "not_modified", "write.published": OLD, "memory.unsaved": True},
    ),
    (
        "first failure with a copy: served as before, stale from now, retried after interval",
        served(),
        failed(TIMEOUT),
        MIDDLE,
        {
            "outcome": "error",
            "error_kind": "timeout",
            "changed": False,
            "delay": INTERVAL,
            "memory.published": OLD,
            "memory.state.failures": 1,
            "memory.state.stale_since": NOW,
            "memory.state.last_error": str(TIMEOUT),
            "memory.state.last_error_at": NOW,
            "memory.state.upstream_etag": '"up-old"',
            "write.published": None,
            "write.archive": None,
            "write.record.error": str(TIMEOUT),
            "write.record.http_status": None,
        },
    ),
    (
        "third failure: stale since the first, the delay doubled twice",
        served(replace(KNOWN, failures=2, stale_since=NOW - 1800)),
        failed(ConnectFailed("http://127.0.0.1:9/feed: cannot connect: Connection refused")),
        MIDDLE,
        {
            "error_kind": "connect",
            "delay": INTERVAL * 4,
            "memory.state.failures": 3,
            "memory.state.stale_since": NOW - 1800,
        },
    ),
    (
        "a long run of failures backs off no further than max_backoff",
        served(replace(KNOWN, failures=20)),
        failed(TIMEOUT),
        MIDDLE,
        {"delay": 3600.0, "memory.state.failures": 21},
    ),
    (
        "failure with nothing served: nothing is marked stale",
        served(FeedState(), None),
        failed(TIMEOUT),
        MIDDLE,
        {"memory.state.stale_since": None, "memory.published": None, "memory.state.failures": 1},
    ),
    (
        "429 with Retry-After: waited for, past the backoff",
        served(),
        failed(HttpStatusError("http://127.0.0.1:9/feed: HTTP 429", 429, "1200")),
        MIDDLE,
        {"error_kind": "http", "delay": 1200.0, "write.record.http_status": 429},
    ),
    (
        "Retry-After longer than max_backoff: capped",
        served(),
        failed(HttpStatusError("http://127.0.0.1:9/feed: HTTP 503", 503, "86400")),
        MIDDLE,
        {"delay": 3600.0, "write.record.http_status": 503},
    ),
    (
        "a 200 that is not a feed: a bad-feed failure, the output kept",
        served(),
        failed(InputError("an HTML page, not a feed"), answer(200, b"<html>oops</html>")),
        MIDDLE,
        {
            "outcome": "error",
            "error_kind": "bad-feed",
            "memory.published": OLD,
            "memory.state.upstream_etag": '"up-old"',
            "memory.state.fingerprint": "fp-now",
            "write.record.http_status": 200,
            "write.record.bytes": 17,
        },
    ),
    (
        "Cache-Control max-age longer than the interval is honoured",
        served(),
        ok(cache_control="public, max-age=1200"),
        MIDDLE,
        {"delay": 1200.0},
    ),
    (
        "RSS ttl longer than the interval is honoured",
        served(),
        ok(Made(NEW, ROWS, ttl_minutes=30)),
        MIDDLE,
        {"delay": 1800.0},
    ),
    (
        "the draw spreads the delay by the jitter: lowest draw",
        served(),
        ok(),
        0.0,
        {"delay": INTERVAL * 0.9, "memory.state.next_poll": NOW + INTERVAL * 0.9},
    ),
    (
        "the draw spreads the delay by the jitter: highest draw",
        served(),
        ok(),
        1.0,
        {"delay": pytest.approx(INTERVAL * 1.1)},
    ),
    (
        "a permanent redirect is remembered",
        served(),
        ok(permanent_redirect="http://127.0.0.1:9/new"),
        MIDDLE,
        {"memory.state.permanent_redirect": "http://127.0.0.1:9/new"},
    ),
    (
        "a good poll without the redirect forgets it",
        served(replace(KNOWN, permanent_redirect="http://127.0.0.1:9/new")),
        ok(),
        MIDDLE,
        {"memory.state.permanent_redirect": None},
    ),
    (
        "recovery: failures and the stale mark reset, the last error kept for the history",
        served(replace(KNOWN, failures=3, stale_since=NOW - 900, last_error="boom")),
        ok(),
        MIDDLE,
        {
            "memory.state.failures": 0,
            "memory.state.stale_since": None,
            "memory.state.last_error": "boom",
            "delay": INTERVAL,
        },
    ),
    (
        "the flags are carried, not decided: settle() clears them",
        served(unsaved=True, resend=True),
        ok(),
        MIDDLE,
        {"memory.unsaved": True, "memory.resend": True, "write.published": NEW},
    ),
]


@pytest.mark.parametrize(
    ("memory", "attempt", "draw", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(memory: Memory, attempt: Attempt, draw: float, expected: dict[str, Any]) -> None:
    """Each row: what the decision says about the feed after one poll."""
    decision = decide(memory, attempt, NOW, SETTINGS, draw)
    got = {path: pick(decision, path) for path in expected}
    assert got == expected
    assert decision.write.state == decision.memory.state  # what is stored is what is held


def test_decide_does_not_change_its_input() -> None:
    """The memory passed in is left as it was: the decision returns new values."""
    state = replace(KNOWN)
    memory = served(state)
    decide(memory, failed(TIMEOUT), NOW, SETTINGS, MIDDLE)
    assert memory == served(replace(KNOWN)) and state == KNOWN


def test_an_attempt_has_a_result_or_an_error() -> None:
    """An attempt with neither is a bug in the caller, refused at once."""
    with pytest.raises(ValueError, match="result, an error"):
        Attempt(NOW, 0.1)


WRITE_WITH_ROWS = Write(KNOWN, PollRecord(NOW, "ok", 0.1), NEW, ROWS)
WRITE_NO_ROWS = Write(KNOWN, PollRecord(NOW, "ok", 0.1), None, None)
SETTLE_CASES: list[tuple[str, Memory, Write, str | None, dict[str, Any]]] = [
    (
        "stored: nothing left unsaved, rows sent again no longer needed",
        served(unsaved=True, resend=True),
        WRITE_WITH_ROWS,
        None,
        {"unsaved": False, "resend": False, "state": KNOWN},
    ),
    (
        "stored without rows: rows still owed are still owed",
        served(resend=True),
        WRITE_NO_ROWS,
        None,
        {"unsaved": False, "resend": True},
    ),
    (
        "not stored: output and rows owed, validators forgotten, the error shown",
        served(),
        WRITE_WITH_ROWS,
        "disk I/O error",
        {
            "unsaved": True,
            "resend": True,
            "state.upstream_etag": None,
            "state.upstream_last_modified": None,
            "state.last_error": "storage: disk I/O error",
            "state.last_error_at": NOW,
            "published": OLD,
        },
    ),
    (
        "not stored, no rows in it: no rows owed",
        served(),
        WRITE_NO_ROWS,
        "database is locked",
        {"unsaved": True, "resend": False},
    ),
]


@pytest.mark.parametrize(
    ("memory", "write", "failure", "expected"),
    [case[1:] for case in SETTLE_CASES],
    ids=[case[0] for case in SETTLE_CASES],
)
def test_settle(
    memory: Memory, write: Write, failure: str | None, expected: dict[str, Any]
) -> None:
    """Each row: what the poller holds once the store answered."""
    settled = settle(memory, write, failure, NOW)
    got = {}
    for path in expected:
        value: Any = settled
        for part in path.split("."):
            value = getattr(value, part)
        got[path] = value
    assert got == expected


def test_on_config_forgets_validators_only_when_the_output_would_differ() -> None:
    """A new URL or new rules: the next poll is a full GET. The same: validators kept."""
    memory = served()
    assert on_config(memory, "fp-now") is memory
    changed = on_config(memory, "fp-other")
    assert (changed.state.upstream_etag, changed.state.upstream_last_modified) == (None, None)
    assert changed.published == OLD


def test_request_is_conditional_only_with_a_copy_to_keep() -> None:
    """With an output served, the stored validators are sent; without, a 304 would leave
    nothing to serve, so none are."""
    feed = FeedConfig(name="z", url="http://127.0.0.1:9/feed", headers=(("Cookie", "a=b"),))
    poll = PollConfig(max_redirects=2)
    request = request_for(served(), feed, poll)
    assert (request.etag, request.last_modified) == ('"up-old"', KNOWN.upstream_last_modified)
    assert request.headers == (("Cookie", "a=b"),) and request.max_redirects == 2
    bare = request_for(served(published=None), feed, poll)
    assert (bare.etag, bare.last_modified) == (None, None)


def test_settings_never_back_off_below_the_interval() -> None:
    """A feed polled less often than max_backoff backs off from its own interval."""
    feed = FeedConfig(name="z", url="http://127.0.0.1:9/feed", interval=7200.0)
    settings = DecisionSettings.of(feed, PollConfig(max_backoff=3600.0, jitter=0.2))
    assert (settings.interval, settings.max_backoff, settings.jitter) == (7200.0, 7200.0, 0.2)
    assert settings.fingerprint == fingerprint(feed)
    assert fingerprint(replace(feed, url="http://127.0.0.1:9/other")) != settings.fingerprint


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (FetchTimeout("t"), "timeout"),
        (ConnectFailed("c"), "connect"),
        (HttpStatusError("h", 500), "http"),
        (BadResponse("b"), "http"),
        (TooLarge("l"), "too-large"),
        (RedirectRefused("r"), "redirect"),
        (TooManyRedirects("m"), "redirects"),
        (BodyError("b"), "body"),
        (NetworkError("n"), "network"),
        (InputError("not a feed"), "bad-feed"),
        (FeedfixError("the cleaning worker died"), "bad-feed"),
    ],
)
def test_error_kinds_are_the_metric_labels(error: FeedfixError, kind: str) -> None:
    """Each failure class names its feedfix_poll_errors label; these values are what
    dashboards already count, so they are pinned here."""
    assert error_kind(error) == kind
    assert isinstance(error, FetchError) or kind == "bad-feed"
