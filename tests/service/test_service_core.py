"""The service's pure parts and its store: schedule, republish (archive, incremental), config,
and the SQLite store on a real file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomcheck import assert_valid_atom, entries
from feedfix.config import parse_config
from feedfix.core.archive import Archived
from feedfix.core.errors import DamagedInput, InputError
from feedfix.core.render import Rendering, render_atom
from feedfix.core.republish import republish
from feedfix.core.schedule import (
    Hints,
    first_delay,
    max_age_seconds,
    next_delay,
    retry_after_seconds,
)
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published
from feedfix.service.store import Store
from feedfix.service.store.memory import MemoryStore
from feedfix.service.store.redis import RedisStore
from feedfix.service.store.sqlite import SqliteStore
from redis_helpers import unique_prefix

NOW = 1_700_000_000.0


def _feed(items: range, *, ttl: str = "") -> bytes:
    body = "".join(
        f"<item><title>item {i}</title><guid>urn:item:{i}</guid>"
        f"<pubDate>Mon, {1 + i % 27:02d} Aug 2022 10:00:00 GMT</pubDate>"
        f'<description>&lt;img src="https://cors.zfour.workers.dev/?http://zkres1.myzaker.com/{i}.jpg"&gt;'
        f"&lt;p&gt;text {i}&lt;/p&gt;&lt;div id=&quot;article_bottom&quot;&gt;&lt;/div&gt;"
        "</description></item>"
        for i in items
    )
    return (
        f'<rss version="2.0"><channel><title>T</title><link>http://a.example/</link>{ttl}'
        f"{body}</channel></rss>"
    ).encode()


def _config(extra: str = "") -> str:
    return f'[[feeds]]\nname = "z"\nurl = "http://127.0.0.1:9/feed"\n{extra}'


# ---- schedule ------------------------------------------------------------------------------


def test_success_waits_the_interval_or_what_upstream_asks() -> None:
    """Success: the interval; a longer max-age or ttl is honoured, up to max_backoff."""

    def after_success(hints: Hints) -> float:
        return next_delay(
            interval=600, hints=hints, ok=True, failures=0, max_backoff=3600.0, jitter=0.0, draw=0.5
        )

    assert after_success(Hints()) == 600
    assert after_success(Hints(max_age=1800)) == 1800
    assert after_success(Hints(ttl=99999)) == 3600
    assert after_success(Hints(max_age=60)) == 600


def test_failures_back_off_exponentially_with_a_cap() -> None:
    """Each consecutive failure doubles the wait, capped; Retry-After is never undercut."""
    delays = [
        next_delay(
            interval=60, ok=False, failures=n, hints=Hints(), max_backoff=900, jitter=0.0, draw=0.5
        )
        for n in range(1, 7)
    ]
    assert delays == [60, 120, 240, 480, 900, 900]
    with_retry = next_delay(
        interval=60,
        ok=False,
        failures=1,
        hints=Hints(retry_after=300),
        max_backoff=900,
        jitter=0.0,
        draw=0.5,
    )
    assert with_retry == 300


def test_jitter_spreads_within_bounds() -> None:
    """Jitter moves a delay by at most its fraction, both ways."""
    low = next_delay(
        interval=100, ok=True, failures=0, hints=Hints(), max_backoff=1000, jitter=0.1, draw=0.0
    )
    high = next_delay(
        interval=100,
        ok=True,
        failures=0,
        hints=Hints(),
        max_backoff=1000,
        jitter=0.1,
        draw=0.999999,
    )
    assert low == pytest.approx(90) and high == pytest.approx(110, abs=0.01)


def test_first_polls_are_spread_and_stable() -> None:
    """100 feeds start at different, repeatable moments within the start-up spread."""
    delays = [first_delay(f"feed-{i}", None, NOW, 600) for i in range(100)]
    assert delays == [first_delay(f"feed-{i}", None, NOW, 600) for i in range(100)]
    assert all(0 <= d < 10 for d in delays)
    assert len({round(d, 3) for d in delays}) > 90
    assert first_delay("x", NOW + 120, NOW, 600) == 120


def test_retry_after_and_max_age_parsing() -> None:
    """Retry-After in seconds or as an HTTP date; max-age and s-maxage from Cache-Control."""
    assert retry_after_seconds("120", NOW) == 120
    assert retry_after_seconds("Tue, 14 Nov 2023 22:15:20 GMT", NOW) == pytest.approx(120)
    assert retry_after_seconds("soon", NOW) is None
    assert max_age_seconds("public, max-age=300") == 300
    assert max_age_seconds("s-maxage=60, public") == 60
    assert max_age_seconds("no-cache") is None


# ---- republish -----------------------------------------------------------------------------


def test_republish_cleans_and_reuses_unchanged_entries() -> None:
    """A second poll with one new entry cleans only that entry and reuses the rest."""
    feed = parse_config(_config()).feeds[0]
    first = republish(_feed(range(50)), feed, {}, NOW)
    assert (first.cleaned, first.reused) == (50, 0)
    root = assert_valid_atom(first.atom)
    assert b"cors.zfour.workers.dev" not in first.atom and b"article_bottom" not in first.atom
    assert len(entries(root)) == 50
    second = republish(_feed(range(1, 51)), feed, first.archive, NOW + 600)
    assert (second.cleaned, second.reused) == (1, 49)


def test_cached_entry_rendering_matches_a_full_render() -> None:
    """Reusing rendered entries gives exactly the bytes a full render of the feed gives."""
    feed = parse_config(_config()).feeds[0]
    first = republish(_feed(range(10)), feed, {}, NOW)
    second = republish(_feed(range(3, 14)), feed, first.archive, NOW + 60)
    assert second.reused == 7
    assert second.atom == render_atom(second.feed)
    assert first.atom == render_atom(first.feed)


DE = '<dc:language xmlns:dc="http://purl.org/dc/elements/1.1/">de</dc:language>'


def _mixed_feed(items: list[int], *, dated: frozenset[int], lang: str) -> bytes:
    """Items some with and some without a date, in a channel of language ``lang``; item 7
    carries a language of its own."""
    body = "".join(
        f"<item><title>item {i}</title><guid>urn:item:{i}</guid>"
        + (f"<pubDate>Mon, {1 + i % 27:02d} Aug 2022 10:00:00 GMT</pubDate>" if i in dated else "")
        + (DE if i == 7 else "")
        + f"<description>&lt;p&gt;text {i}&lt;/p&gt;</description></item>"
        for i in items
    )
    return (
        f'<rss version="2.0"><channel><title>T</title><link>http://a.example/</link>'
        f"<language>{lang}</language>{body}</channel></rss>"
    ).encode()


def test_rerendering_copies_unchanged_entries_and_matches_a_full_render() -> None:
    """With the last poll's rendering, one new dated entry is the only one rendered, and the
    bytes are exactly those of a full render."""
    feed = parse_config(_config()).feeds[0]
    first = republish(_feed(range(50)), feed, {}, NOW)
    assert first.rendering.rendered == 50
    second = republish(_feed(range(1, 51)), feed, first.archive, NOW + 60, last=first.rendering)
    assert second.rendering.rendered == 1
    assert second.atom == render_atom(second.feed)
    rules_changed = parse_config(_config("[feeds.rules.limit]\ncount = 20\n")).feeds[0]
    third = republish(_feed(range(1, 51)), rules_changed, second.archive, NOW + 120,
                      last=second.rendering)  # fmt: skip
    assert third.rendering.rendered == 20  # re-cleaned entries are new objects: rendered again
    assert third.atom == render_atom(third.feed)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sets(st.integers(0, 14), min_size=1, max_size=10),
            st.sets(st.integers(0, 14)),
            st.sampled_from(["zh-cn", "en", "de"]),
        ),
        min_size=2,
        max_size=5,
    )
)
def test_rerendering_always_equals_a_full_render(
    polls: list[tuple[set[int], set[int], str]],
) -> None:
    """Whatever comes and goes between polls (entries, dates, so the fallback date of
    undated entries, the feed's language), copying never changes a byte."""
    feed = parse_config(_config()).feeds[0]
    archive: dict[str, Archived] = {}
    last: Rendering | None = None
    for step, (items, dated, lang) in enumerate(polls):
        data = _mixed_feed(sorted(items), dated=frozenset(dated), lang=lang)
        made = republish(data, feed, archive, NOW + 60 * step, last=last)
        assert made.atom == render_atom(made.feed)
        archive, last = made.archive, made.rendering


def test_archive_keeps_rotated_entries_within_limits() -> None:
    """Entries that leave the upstream's window stay, up to keep_entries, newest first."""
    feed = parse_config(_config("keep_entries = 25\n")).feeds[0]
    first = republish(_feed(range(20)), feed, {}, NOW)
    second = republish(_feed(range(20, 40)), feed, first.archive, NOW + 60)
    ids = [e.id for e in second.feed.entries]
    assert len(ids) == 25
    assert {f"urn:item:{i}" for i in range(20, 40)} <= set(ids)
    assert second.window == 20


def test_archive_drops_entries_older_than_keep_days() -> None:
    """An archived entry older than keep_days is not republished."""
    feed = parse_config(_config("keep_days = 1\n")).feeds[0]
    first = republish(_feed(range(3)), feed, {}, NOW)
    later = republish(_feed(range(3, 4)), feed, first.archive, NOW + 2 * 86400)
    assert [e.id for e in later.feed.entries] == ["urn:item:3"]


def test_output_only_changes_when_an_entry_does() -> None:
    """The upstream's moving lastBuildDate alone does not change the published bytes."""
    feed = parse_config(_config()).feeds[0]
    one = _feed(range(5)).replace(
        b"<title>T</title>",
        b"<title>T</title><lastBuildDate>Mon, 01 Aug 2022 00:00:00 GMT</lastBuildDate>",
    )
    two = one.replace(b"01 Aug 2022 00:00:00", b"02 Aug 2022 00:00:00")
    first = republish(one, feed, {}, NOW)
    assert republish(two, feed, first.archive, NOW + 60).atom == first.atom


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"<html><body>Looks like something went wrong</body></html>", InputError),
        (_feed(range(3))[:-40], DamagedInput),
        (b"", InputError),
    ],
)
def test_republish_refuses_what_is_not_a_good_feed(data: bytes, error: type[Exception]) -> None:
    """Error pages, truncated XML and empty bodies raise: they never become the output."""
    feed = parse_config(_config()).feeds[0]
    with pytest.raises(error):
        republish(data, feed, {}, NOW)


# ---- config: see tests/test_config.py ---------------------------------------------------


# ---- store ---------------------------------------------------------------------------------


def _published(text: bytes) -> Published:
    """Bytes as the service makes them."""
    return Published.of(text, '"e"', NOW, 3)


@pytest.fixture(params=["sqlite", "memory", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each backend behind the same interface (Redis: a real server, a prefix per test)."""
    backend: Store
    if request.param == "memory":
        backend = MemoryStore()
    elif request.param == "redis":
        server = request.getfixturevalue("redis_server")
        backend = RedisStore(server.url, prefix=unique_prefix())
    else:
        backend = SqliteStore(str(tmp_path / "feedfix.db"))
    yield backend
    backend.close()


def test_store_round_trip(store: Store) -> None:
    """State, output, archive and history come back as they were saved."""
    feed = parse_config(_config()).feeds[0]
    made = republish(_feed(range(3)), feed, {}, NOW)
    state = FeedState(upstream_etag='"u1"', last_success=NOW, next_poll=NOW + 600)
    store.save(
        "z",
        state,
        PollRecord(started=NOW, status="ok", duration=0.1, changed=True),
        _published(made.atom),
        ArchiveUpdate(frozenset(made.archive), made.archive),
    )
    store.save("z", state, PollRecord(started=NOW + 1, status="error", duration=0.2, error="boom"))
    snap = store.load("z")
    assert snap.state == state
    assert snap.published is not None and snap.published.identity() == made.atom
    assert snap.archive == made.archive
    assert [r.status for r in store.history("z")] == ["error", "ok"]
    # A later poll sends only what changed: one entry gone, one new, the rest as they were.
    small = parse_config(_config("keep_entries = 3\n")).feeds[0]
    later = republish(_feed(range(1, 4)), small, made.archive, NOW + 60)
    new = {k: a for k, a in later.archive.items() if k not in made.archive}
    assert len(new) == 1 and len(later.archive) == 3
    store.save(
        "z",
        state,
        PollRecord(NOW + 60, "ok", 0.1),
        None,
        ArchiveUpdate(frozenset(later.archive), new),
    )
    assert store.load("z").archive == later.archive
    assert store.load_archive("z") == later.archive
    assert store.load("z", archive=False).archive == {}
    assert store.load("z", archive=False).published == store.load("z").published
    assert store.load("other").published is None


def test_sqlite_survives_reopen_and_keeps_old_copy_on_failed_write(tmp_path: Path) -> None:
    """A reopened file serves the last good output; a write that fails leaves it whole."""
    path = str(tmp_path / "f.db")
    first = SqliteStore(path)
    first.save("z", FeedState(), PollRecord(NOW, "ok", 0.1), _published(b"<feed>one</feed>"))
    blocker = sqlite3.connect(path, timeout=0.1)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    first._db.execute("PRAGMA busy_timeout = 100")
    with pytest.raises(Exception, match="cannot write"):
        first.save("z", FeedState(), PollRecord(NOW, "ok", 0.1), _published(b"<feed>two</feed>"))
    blocker.rollback()
    blocker.close()
    first.close()
    reopened = SqliteStore(path)
    snap = reopened.load("z")
    assert snap.published is not None and snap.published.identity() == b"<feed>one</feed>"


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    """A path holding something else is a clear StoreError, not a crash."""
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(Exception, match="cannot open the database"):
        SqliteStore(str(bad))
