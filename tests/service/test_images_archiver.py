"""The archiver in-process, against the loopback image origin: retries with backoff, the
origin's Retry-After, giving up, each failure's reason, the per-host limit, a lost file.

Real parts but the clock's pace: ``first_retry`` is a fraction of a second instead of a
minute, so a test sees several tries in a second or two. Every wait is for an event (the
archiver settling, a state in the index), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from feedfix.service.image_archive import FEED_LEVEL, ArchiveSummary, EntryImages, describe
from feedfix.service.images import ImageService
from feedfix.service.images import archiver as archiver_module
from feedfix.service.images.archive_sqlite import SQLiteArchiveIndex
from feedfix.service.images.archiver import Archiver, ArchiveSettings
from feedfix.service.images.meta import CACHE_SCHEMA
from feedfix.service.images.metrics import ArchiveMetrics
from feedfix.service.readers_first import BUSY_GAP, GiveWay, ReaderTraffic
from feedfix.service.store.memory import MemoryStore
from image_origin import IMAGES, ImageOrigin, settings, sign


@dataclass
class Parts:
    """An archiver, its index and the cache it fills."""

    archiver: Archiver
    index: SQLiteArchiveIndex
    service: ImageService

    def publish(self, *paths: str) -> None:
        """A poll published one entry pointing at these signed paths."""
        self.archiver.published(EntryImages("f", time.time(), {"e": time.time()}, {"e": paths}))

    async def settle(self) -> None:
        """Wait until the archiver has nothing queued, in flight or due now."""
        await asyncio.sleep(0)  # let it see what was just published
        assert await self.archiver.settled(20), "the archive did not settle"

    async def wait_for(self, path: str, state: str, timeout: float = 20) -> None:
        """Wait until the image at origin ``path`` is in ``state``."""
        deadline = time.monotonic() + timeout
        while self.state()[path][0] != state:
            assert time.monotonic() < deadline, f"{path} never became {state}"
            await self.settle()
            await asyncio.sleep(0.05)

    def state(self) -> dict[str, tuple[str, str | None]]:
        """Each image's origin path, with its state and reason."""
        rows = self.index.images("f", ["e"])["e"]
        return {r.url.split(":", 2)[2].split("/", 1)[1]: (r.state, r.reason) for r in rows}


async def requests(origin: ImageOrigin, path: str, count: int, timeout: float = 20) -> None:
    """Wait until the origin has had ``count`` requests for ``path``."""
    deadline = time.monotonic() + timeout
    while origin.hits[path] < count:
        assert time.monotonic() < deadline, f"{path} asked for fewer than {count} times"
        await asyncio.sleep(0.05)


def run(check: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one async check."""
    asyncio.run(check())


@asynccontextmanager
async def archiving(
    tmp: Path, first_retry: float = 0.2, readers: GiveWay | None = None, **limits: object
) -> AsyncIterator[Parts]:
    """An archiver on an SQLite index in ``tmp``, started, stopped at the end (deadlines
    generous unless a test sets them: a loaded machine must not turn a 503 into a timeout)."""
    config = settings(tmp / "images", **{"timeout": 10.0, "connect_timeout": 5.0, **limits})
    service = ImageService.open(config, tmp / "store.db", CollectorRegistry())
    index = SQLiteArchiveIndex(tmp / "store.db", CACHE_SCHEMA)
    archiver = Archiver(
        ArchiveSettings(config.limits, "", config.keys),
        service.cache,
        index,
        MemoryStore(),
        ArchiveMetrics(CollectorRegistry()),
        first_retry=first_retry,
        readers=readers,
    )
    service.archiver = archiver
    await archiver.start(["f"])
    try:
        yield Parts(archiver, index, service)
    finally:
        await service.close()


def test_a_failing_image_is_tried_again_later_and_kept_once_the_origin_recovers(
    tmp_path: Path,
) -> None:
    """A 503 is recorded (retrying, "503") and tried again after the backoff, each wait
    twice the one before; once the origin answers, the image is archived."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        origin.broken["/v/1/a.png"] = 503
        async with archiving(tmp_path, first_retry=1.0) as parts:
            parts.publish(sign(origin.url("/v/1/a.png")))
            await parts.settle()
            assert parts.state() == {"v/1/a.png": ("retrying", "503")}
            await requests(origin, "/v/1/a.png", 2)  # failed again: the origin is still down
            del origin.broken["/v/1/a.png"]
            await parts.wait_for("v/1/a.png", "archived")
            times = origin.times["/v/1/a.png"]
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert gaps[0] >= 1.0 and all(b >= 2 * a * 0.9 for a, b in itertools.pairwise(gaps))
            assert parts.state() == {"v/1/a.png": ("archived", None)}
        await origin.stop()

    run(check)


def test_each_failure_has_its_reason_and_gives_up_after_archive_retry_for(
    tmp_path: Path,
) -> None:
    """404, 500, a dropped connection, HTML sent as an image, a timeout: each recorded with
    its reason; with ``archive_retry_for`` shorter than the first backoff, given up at once
    (failed), and not asked again."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        paths = ["/status/404", "/status/500", "/drop/a.png", "/html-as-png", "/slow/a.png?s=3"]
        async with archiving(tmp_path, archive_retry_for=0.1, timeout=0.5) as parts:
            parts.publish(*(sign(origin.url(p)) for p in paths))
            await parts.settle()
            assert parts.state() == {
                "status/404": ("failed", "404"),
                "status/500": ("failed", "500"),
                "drop/a.png": ("failed", "connection"),
                "html-as-png": ("failed", "not an image"),
                "slow/a.png?s=3": ("failed", "timeout"),
            }
            summary = parts.index.summary()
            assert summary.failed == 5 and summary.reasons["404"] == 1
        assert origin.hits["/status/404"] == 1
        await origin.stop()

    run(check)


def test_retry_after_puts_the_next_try_later_than_the_backoff(tmp_path: Path) -> None:
    """A 429 with Retry-After: 120 is tried again no sooner than that, not after the
    backoff's fraction of a second."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with archiving(tmp_path) as parts:
            before = time.time()
            parts.publish(sign(origin.url("/status/429?after=120")))
            await parts.settle()
            (row,) = parts.index.failures()
            assert (row.state, row.reason) == ("retrying", "429")
            assert row.due is not None and row.due >= before + 120
        await origin.stop()

    run(check)


def test_at_most_per_host_fetches_at_once_and_each_image_fetched_once(tmp_path: Path) -> None:
    """Twelve images of one slow host: never more than ``per_host`` requests at once, each
    image asked for once, all archived; two entries pointing at one image keep one copy."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        origin.delay = 0.1
        paths = tuple(sign(origin.url(f"/v/{n}/b.jpg")) for n in range(12))
        async with archiving(tmp_path, per_host=2) as parts:
            parts.publish(*paths)
            parts.archiver.published(EntryImages("g", time.time(), {"x": 0}, {"x": paths[:3]}))
            await parts.settle()
            assert origin.most_in_flight == 2
            assert all(origin.hits[f"/v/{n}/b.jpg"] == 1 for n in range(12))
            assert parts.index.summary().archived == 12
            files = [f for f in (tmp_path / "images").rglob("*") if f.is_file()]
            assert len(files) == 12
        await origin.stop()

    run(check)


def test_while_readers_are_many_the_archive_fetches_one_image_at_a_time(tmp_path: Path) -> None:
    """A flood of readers (the front's count climbing by thousands a second): the archive
    takes one image at a time, each ``BUSY_GAP`` at least after the one before, and still
    keeps them all; once the flood stops, ``per_host`` at once again."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        origin.delay = 0.1
        traffic, flooding = ReaderTraffic(), asyncio.Event()

        async def readers() -> None:
            while True:
                await flooding.wait()
                traffic.answered += 500  # what the front adds as it answers
                await asyncio.sleep(0.05)

        flood = asyncio.create_task(readers())
        busy = [sign(origin.url(f"/v/{n}/a.png")) for n in range(5)]
        calm = tuple(sign(origin.url(f"/v/{n}/b.jpg")) for n in range(8))
        # a window long enough that a loaded machine's pause cannot leave one without a
        # single burst of the flood in it, and a rate well below the flood's
        give_way = GiveWay(traffic, window=1.0, busy=50)
        async with archiving(tmp_path, readers=give_way, per_host=4) as parts:
            flooding.set()
            await asyncio.sleep(1.2)  # the archive has seen a whole window of the flood
            parts.publish(*busy)
            await parts.settle()
            assert origin.most_in_flight == 1
            starts = sorted(origin.times[f"/v/{n}/a.png"][0] for n in range(5))
            assert min(b - a for a, b in itertools.pairwise(starts)) >= BUSY_GAP * 0.9, starts
            flooding.clear()
            await asyncio.sleep(1.2)  # a window without readers
            origin.most_in_flight = 0
            parts.archiver.published(EntryImages("g", time.time(), {"c": 0}, {"c": calm}))
            await parts.settle()
            assert origin.most_in_flight == 4
            assert parts.index.summary().archived == 13
        flood.cancel()
        await origin.stop()

    run(check)


def test_an_archived_image_whose_file_went_is_fetched_again(tmp_path: Path) -> None:
    """Someone removed the file: once the cache notices (a reader's request), the archive
    fetches it again, so it is kept from then on."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        path = sign(origin.url("/v/1/c.gif"))
        async with archiving(tmp_path) as parts:
            parts.publish(path)
            await parts.settle()
            files = [f for f in (tmp_path / "images").rglob("*") if f.is_file()]
            (file,) = files
            file.unlink()
            assert parts.service.http.cached("GET", path, {}) is not None  # from the index
            parts.service.http.missing(file.name)  # what a reader's failed open reports
            parts.archiver.published(EntryImages("f", time.time(), {"e": 0}, {FEED_LEVEL: ()}))
            await parts.settle()
            assert file.read_bytes() == IMAGES["c.gif"][0]
            assert origin.hits["/v/1/c.gif"] == 2
        await origin.stop()

    run(check)


def test_an_image_changed_at_its_origin_keeps_the_archived_bytes(tmp_path: Path) -> None:
    """The entry was published with the first bytes: a later poll pointing at the same URL,
    whose origin now serves another image, neither fetches it again nor changes what is
    served."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        path = sign(origin.url("/v/1/a.png"))
        async with archiving(tmp_path) as parts:
            parts.publish(path)
            await parts.settle()
            origin.swapped["/v/1/a.png"] = "b.jpg"
            parts.publish(path)  # polled again, cleaned again: the same image
            await parts.settle()
            reply = parts.service.http.cached("GET", path, {})
            assert reply is not None
            assert Path(reply.path).read_bytes() == IMAGES["a.png"][0]
            assert origin.hits["/v/1/a.png"] == 1
        await origin.stop()

    run(check)


def test_a_large_update_is_applied_in_chunks_to_the_same_effect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update of more entries than a chunk (two here) indexes every entry's image; a later
    one in which entries left lets exactly those go."""
    monkeypatch.setattr(archiver_module, "APPLY_CHUNK", 2)

    async def check() -> None:
        origin = await ImageOrigin().start()
        images = {f"e{n}": (sign(origin.url(f"/v/{n}/d.webp")),) for n in range(5)}
        async with archiving(tmp_path) as parts:
            kept = dict.fromkeys(images, time.time())
            parts.archiver.published(EntryImages("f", time.time(), kept, images))
            await parts.settle()
            assert parts.index.summary().archived == 5
            kept = dict.fromkeys(("e0", "e1", "e2"), time.time())
            parts.archiver.published(EntryImages("f", time.time(), kept, {}))
            await parts.settle()
            assert parts.index.summary().archived == 3
            assert origin.total == 5
        await origin.stop()

    run(check)


def test_the_index_page_says_in_words_when_archive_size_let_images_go() -> None:
    """The index's line: size, count, what could not be kept; and, past archive_size, that
    the oldest entries' images are no longer kept for good."""
    full = ArchiveSummary(archived=10, bytes=2_000_000, failed=2, unpinned=3)
    assert describe(full, 2_000_000) == (
        "Image archive: 10 images kept, 2.0 MB of 2 MB (archive_size); 0 pending, 0 to be "
        "tried again, 2 could not be kept. The archive is full (archive_size): 3 images of "
        "the oldest entries are no longer kept for good, and go when the cache needs the room."
    )
    assert "full" not in describe(ArchiveSummary(archived=1, bytes=10), None)
