"""The image archive's index, on both backends: SQLite (the store's file) and a real Redis.

Each test drives the index and the cache's own index (``CacheMeta``) together, as the
archiver and the cache do: references in, claims out, pins that the cache's eviction obeys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from feedfix.service.image_archive import FEED_LEVEL
from feedfix.service.images.archive_index import ArchiveIndex, Ref
from feedfix.service.images.archive_sqlite import SQLiteArchiveIndex
from feedfix.service.images.meta import CACHE_SCHEMA, CacheEntry, CacheMeta, SQLiteMeta
from redis_helpers import RedisServer, unique_prefix

NOW = 1_800_000_000.0
DAY = 86400.0


@dataclass
class Parts:
    """The cache's index and the archive's, on one backend."""

    meta: CacheMeta
    index: ArchiveIndex


@pytest.fixture(params=["sqlite", "redis"])
def parts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Parts]:
    """Both indexes on SQLite (one file) or on the session's Redis (a prefix of their own)."""
    if request.param == "sqlite":
        meta = SQLiteMeta(tmp_path / "store.db")
        index: ArchiveIndex = SQLiteArchiveIndex(tmp_path / "store.db", CACHE_SCHEMA)
        yield Parts(meta, index)
        meta.close()
        index.close()
        return
    from feedfix.service.images import redis_index, redis_meta  # noqa: PLC0415

    server: RedisServer = request.getfixturevalue("redis_server")
    db = redis_meta.client(server.url)
    prefix = unique_prefix()
    yield Parts(redis_meta.RedisMeta(db, prefix), redis_index.RedisArchiveIndex(db, prefix))
    db.close()


def ref(name: str) -> Ref:
    """An image reference named ``name`` (its key, path and URL all made from it)."""
    return Ref(name * 4, f"/img/v1/sig/n/{name}", f"https://origin.example/{name}.jpg")


def cached(meta: CacheMeta, name: str, size: int = 100, used: float = NOW) -> None:
    """Put ``name``'s image in the cache's index, as a fetch does."""
    meta.put(CacheEntry(name * 4, "image/jpeg", size, '"e"', "u", used, used))


AGES = {"old": NOW - 300, "mid": NOW - 200, "new": NOW - 100}  # three entries' dates


def three_entries(parts: Parts, refs: dict[str, list[Ref]], limit: int) -> None:
    """Entries "old", "mid" and "new" of feed "f" pointing at ``refs``, each image cached
    (100 bytes), then ``archive_size`` = ``limit`` applied."""
    for name in {r.key[0] for images in refs.values() for r in images}:
        cached(parts.meta, name, 100)
    parts.index.update("f", NOW, AGES, refs, 0)
    parts.index.fit(limit)


def states(index: ArchiveIndex, feed: str, entry: str) -> dict[str, str]:
    """An entry's images by name, each with its state."""
    return {row.key[0]: row.state for row in index.images(feed, [entry])[entry]}


def test_new_images_are_claimed_once_then_archived_and_counted(parts: Parts) -> None:
    """A poll's images are pending and due at once; a claim hands each out once (until its
    hold runs out); archived, they are counted with their bytes."""
    index = parts.index
    index.update("f", NOW, {"e1": NOW}, {"e1": [ref("a"), ref("b")]}, 0)
    assert index.summary().pending == 2 and index.next_due() == NOW
    claims = index.claim(NOW, 10, hold=60)
    assert sorted(c.key for c in claims) == ["aaaa", "bbbb"]
    assert claims[0].path.startswith("/img/v1/") and claims[0].attempts == 0
    assert index.claim(NOW + 1, 10, hold=60) == []  # held
    assert len(index.claim(NOW + 61, 10, hold=60)) == 2  # the hold ran out
    cached(parts.meta, "a", 300)
    index.archived({"aaaa": 300})
    summary = index.summary()
    assert (summary.archived, summary.bytes, summary.pending) == (1, 300, 1)
    assert states(index, "f", "e1") == {"a": "archived", "b": "pending"}


def test_an_image_already_cached_is_archived_without_a_fetch(parts: Parts) -> None:
    """A reader fetched it before the poll: it is archived (and pinned) at once."""
    cached(parts.meta, "a", 500)
    parts.index.update("f", NOW, {"e1": NOW}, {"e1": [ref("a")]}, 0)
    assert parts.index.claim(NOW, 10, 60) == []
    assert parts.index.summary().bytes == 500
    assert parts.meta.evict(0) == []  # pinned


def test_pinned_images_survive_eviction_and_unpinned_ones_go(parts: Parts) -> None:
    """With the cache over its size, the eviction takes the unpinned images (oldest use
    first) and passes over the pinned ones, however old their last use."""
    meta, index = parts.meta, parts.index
    for name, used in (("a", NOW - 100), ("b", NOW - 50), ("c", NOW)):
        cached(meta, name, 100, used)
    index.update("f", NOW, {"e1": NOW}, {"e1": [ref("a")]}, 0)
    gone = meta.evict(150)
    assert [e.key for e in gone] == ["bbbb", "cccc"]
    assert meta.get("aaaa") is not None and meta.stats().bytes == 100


def test_one_copy_for_two_entries_and_two_feeds_unpinned_when_the_last_leaves(
    parts: Parts,
) -> None:
    """Two entries of two feeds share one row; it stays while either is published, and goes
    (the image is an ordinary cache entry again) when the last one leaves."""
    meta, index = parts.meta, parts.index
    cached(meta, "a")
    index.update("f", NOW, {"e1": NOW}, {"e1": [ref("a")]}, 0)
    index.update("g", NOW, {"x": NOW}, {"x": [ref("a")]}, 0)
    assert index.summary().archived == 1
    index.update("f", NOW + 1, {}, {}, 0)  # e1 left f
    assert meta.evict(0) == [] and index.summary().archived == 1
    index.update("g", NOW + 2, {}, {}, 0)  # x left g: nothing points at it
    assert index.summary().archived == 0
    assert [e.key for e in meta.evict(0)] == ["aaaa"]


def test_a_cleaned_again_entry_replaces_its_images(parts: Parts) -> None:
    """An entry cleaned anew names all its images: one it no longer has is let go."""
    index = parts.index
    index.update("f", NOW, {"e1": NOW}, {"e1": [ref("a"), ref("b")]}, 0)
    index.update("f", NOW + 1, {"e1": NOW}, {"e1": [ref("b"), ref("c")]}, 0)
    assert states(index, "f", "e1") == {"b": "pending", "c": "pending"}
    assert index.summary().pending == 2


def test_archive_days_keep_a_left_entry_pinned_and_a_returning_one_stays(parts: Parts) -> None:
    """With archive_days, an entry that left keeps its images pinned until ``expire`` runs
    past the days; one that comes back is no longer counted as left."""
    meta, index = parts.meta, parts.index
    cached(meta, "a")
    cached(meta, "b")
    index.update("f", NOW, {"e1": NOW, "e2": NOW}, {"e1": [ref("a")], "e2": [ref("b")]}, DAY)
    index.update("f", NOW + 10, {}, {}, DAY)  # both left
    index.update("f", NOW + 20, {"e2": NOW}, {}, DAY)  # e2 is back
    index.expire(NOW + 10 + DAY - 1, DAY)
    assert meta.evict(0) == []
    index.expire(NOW + 10 + DAY + 1, DAY)
    assert [e.key for e in meta.evict(0)] == ["aaaa"]  # e2's image stays pinned
    assert states(index, "f", "e2") == {"b": "archived"}


def test_failures_are_retried_then_given_up_with_their_reason(parts: Parts) -> None:
    """A failed attempt with a next try is "retrying" and due then; without one, "failed";
    both are listed with their reason; ``retry`` makes them pending and due now."""
    index = parts.index
    index.update("f", NOW, {"e1": NOW}, {"e1": [ref("a"), ref("b")]}, 0)
    index.claim(NOW, 10, 60)
    index.failed("aaaa", NOW, "404", "origin answered 404", NOW + 60)
    index.failed("bbbb", NOW + 1, "timeout", "no complete answer within 20 s", None)
    assert index.next_due() == NOW + 60
    summary = index.summary()
    assert (summary.retrying, summary.failed, summary.pending) == (1, 1, 0)
    assert summary.reasons == {"404": 1, "timeout": 1}
    failures = index.failures()
    assert [(r.key, r.state, r.reason) for r in failures] == [
        ("bbbb", "failed", "timeout"),
        ("aaaa", "retrying", "404"),
    ]
    assert index.summary("f").failed == 1 and index.summary("g").failed == 0
    claim = index.claim(NOW + 61, 10, 60)
    assert [(c.key, c.attempts, c.first_failure) for c in claim] == [("aaaa", 1, NOW)]
    assert index.retry(None, NOW + 100) == 2
    assert index.failures() == []
    assert sorted(c.key for c in index.claim(NOW + 100, 10, 60)) == ["aaaa", "bbbb"]


def test_archive_size_unpins_the_oldest_entries_images_first(parts: Parts) -> None:
    """Past ``archive_size`` the images of the oldest entries are unpinned (the cache may
    then evict them); when room comes back, a still cached one is pinned again and an
    evicted one fetched again."""
    meta, index = parts.meta, parts.index
    three_entries(parts, {"old": [ref("a")], "mid": [ref("b")], "new": [ref("c")]}, 250)
    summary = index.summary()
    assert (summary.archived, summary.unpinned, summary.bytes) == (2, 1, 200)
    assert states(index, "f", "old") == {"a": "unpinned"}
    assert [e.key for e in meta.evict(0)] == ["aaaa"]
    index.update("f", NOW + 1, {"old": NOW - 300, "mid": NOW - 200}, {}, 0)  # new left
    index.fit(250)
    assert states(index, "f", "old") == {"a": "pending"}  # fits again: fetched again
    assert [c.key for c in index.claim(NOW + 1, 10, 60)] == ["aaaa"]
    index.fit(None)
    assert index.summary().unpinned == 0


def test_an_archived_image_whose_file_went_is_fetched_again(parts: Parts) -> None:
    """``requeue`` (the cache found the file gone) makes a pinned archived image pending."""
    cached(parts.meta, "a")
    parts.index.update("f", NOW, {"e1": NOW}, {"e1": [ref("a")]}, 0)
    parts.index.requeue(["aaaa", "zzzz"], NOW + 5)
    assert states(parts.index, "f", "e1") == {"a": "pending"}
    assert [c.key for c in parts.index.claim(NOW + 5, 10, 60)] == ["aaaa"]


def test_a_feed_removed_from_the_config_lets_its_images_go(parts: Parts) -> None:
    """``expire`` with the configured feeds: another feed's references leave (at once with
    no archive_days) and its backfill mark goes, so a feed added back is read again."""
    meta, index = parts.meta, parts.index
    cached(meta, "a")
    index.update("gone", NOW, {"e1": NOW}, {"e1": [ref("a")]}, 0)
    index.mark_backfilled("gone")
    index.update("f", NOW, {"e1": NOW}, {FEED_LEVEL: [ref("b")]}, 0)
    index.expire(NOW + 1, 0, feeds=["f"])
    assert [e.key for e in meta.evict(0)] == ["aaaa"]
    assert not index.backfilled("gone")
    assert states(index, "f", FEED_LEVEL) == {"b": "pending"}  # the feed's logo stays


def test_feed_level_images_stay_until_a_poll_names_them_again(parts: Parts) -> None:
    """The feed's logo and icon are referenced under no entry: an update that does not
    name them (a backfill) leaves them; one that does replaces them."""
    index = parts.index
    index.update("f", NOW, {"e1": NOW}, {FEED_LEVEL: [ref("l")], "e1": [ref("a")]}, 0)
    index.update("f", NOW + 1, {"e1": NOW}, {"e1": [ref("a")]}, 0)
    assert states(index, "f", FEED_LEVEL) == {"l": "pending"}
    index.update("f", NOW + 2, {"e1": NOW}, {FEED_LEVEL: [ref("m")]}, 0)
    assert states(index, "f", FEED_LEVEL) == {"m": "pending"}


def test_a_restart_resumes_what_a_stopped_process_had_claimed(tmp_path: Path) -> None:
    """SQLite (a store of its own): images claimed but never tried are due again at start,
    not after the claim's hold; images waiting for a retry keep their time."""
    index = SQLiteArchiveIndex(tmp_path / "s.db", CACHE_SCHEMA)
    index.update("f", NOW, {"e1": NOW}, {"e1": [ref("a"), ref("b")]}, 0)
    index.claim(NOW, 10, hold=600)
    index.failed("bbbb", NOW, "500", "origin answered 500", NOW + 60)
    index.resume(NOW + 1)
    assert [c.key for c in index.claim(NOW + 1, 10, 600)] == ["aaaa"]
    index.close()


def test_a_claim_reads_the_due_images_in_order_from_an_index(tmp_path: Path) -> None:
    """SQLite: a claim's query reads the due images in its order (due first, the newest
    entries' images first) straight from an index, however many are pending: a sort of all
    of them cost 4 ms a claim at 8,000, which the archive pays per image while readers come
    first. And the order it reads is the one the claim promises."""
    index = SQLiteArchiveIndex(tmp_path / "s.db", CACHE_SCHEMA)
    index.update(
        "f", NOW, {"old": NOW - DAY, "new": NOW}, {"old": [ref("a")], "new": [ref("b")]}, 0
    )
    statements: list[str] = []
    db = sqlite3.connect(tmp_path / "s.db")
    index._db.set_trace_callback(statements.append)  # the statement the claim runs
    assert [c.key for c in index.claim(NOW, 1, 600)] == ["bbbb"]
    index._db.set_trace_callback(None)
    (select,) = [s for s in statements if s.lstrip().startswith("SELECT")]
    plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + select))
    assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan
    db.close()
    index.close()


def test_an_image_is_as_new_as_the_newest_entry_still_pointing_at_it(parts: Parts) -> None:
    """An image two entries point at is dated by the newer; once the newer lets go of it,
    by the older that still holds it, so ``archive_size`` then unpins it before an image of
    an entry between the two."""
    index = parts.index
    three_entries(parts, {"old": [ref("a")], "mid": [ref("b")], "new": [ref("a")]}, 150)
    assert (states(index, "f", "new"), states(index, "f", "mid")) == (
        {"a": "archived"},
        {"b": "unpinned"},
    )
    index.update("f", NOW + 1, AGES, {"new": []}, 0)  # "new" keeps no image now
    index.fit(150)
    assert (states(index, "f", "old"), states(index, "f", "mid")) == (
        {"a": "unpinned"},
        {"b": "archived"},
    )


def test_holders_written_as_a_plain_set_are_read_and_moved_over(redis_server: RedisServer) -> None:
    """Redis: an index written when an image's holders were a plain set (before they were
    dated) goes on working: letting go of one holder keeps the image, of the last drops it."""
    from feedfix.service.images import redis_index, redis_meta  # noqa: PLC0415

    db = redis_meta.client(redis_server.url)
    prefix = unique_prefix()
    index = redis_index.RedisArchiveIndex(db, prefix)
    index.update("f", NOW, {"e1": NOW, "e2": NOW}, {"e1": [ref("a")], "e2": [ref("a")]}, 0)
    holders = next(iter(db.scan_iter(f"{prefix}*holders:aaaa")))
    members: list[bytes] = db.zrange(holders, 0, -1)  # type: ignore[assignment]
    db.delete(holders)
    db.sadd(holders, *members)  # as the index wrote it before
    index.update("f", NOW + 1, {"e1": NOW}, {"e1": [ref("a")]}, 0)  # e2 left
    assert states(index, "f", "e1") == {"a": "pending"}
    assert db.type(holders) == b"zset"
    index.update("f", NOW + 2, {}, {}, 0)  # e1 left too
    assert index.summary().pending == 0
    db.close()
