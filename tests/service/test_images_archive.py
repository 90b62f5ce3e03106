"""Images that last: ``feedfix serve`` with ``[images] archive = true``, as a user runs it.

The upstream serves a feed whose images sit on the loopback image origin
(``tests/image_origin.py``) in every place the proxy step reaches: img ``src`` and a
``srcset``, ``picture > source``, ``video[poster]``, an image enclosure, a
``media:thumbnail`` and the channel's logo. Each test waits for events (log lines, the
origin's request counts, ``/metrics``), never for a fixed time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from feedfix.core.imagesign import proxied
from image_origin import IMAGES
from image_service import (
    ProxyService,
    World,
    archive_world,
    metric,
    origin_path,
    paths_of,
    served_images,
)
from service_helpers import run_cli, wait_for

__all__ = ["archive_world"]  # the "world" fixture: the origin and the upstream

KEY = "archive-test-key-0123456789-abcdefghijklmnop"


def body_of(path: str) -> bytes:
    """The origin's bytes for a proxied path (``/img/…``) or an origin path (``/v/…``)."""
    name = (origin_path(path) if path.startswith("/img/") else path).rsplit("/", 1)[1]
    return IMAGES[name][0]


def archived(service: ProxyService) -> float:
    """``feedfix_image_archive_images{state="archived"}`` right now."""
    page = service.get("/metrics").text()
    return metric(page, "feedfix_image_archive_images", '{state="archived"}')


def cache_stat(service: ProxyService, what: str) -> float:
    """``feedfix_image_cache_{what}`` (``entries`` or ``bytes``) right now."""
    return metric(service.get("/metrics").text(), f"feedfix_image_cache_{what}")


def images_json(service: ProxyService, *args: str) -> Any:
    """``feedfix images --config FILE --json ARGS`` (exit 0), as parsed JSON."""
    done = run_cli("images", "--config", str(service.config_path), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def archive_service(
    tmp: Path, world: World, interval: float = 600, **images: object
) -> ProxyService:
    """A service with the proxy on ("all"), the archive on, and ``images`` keys on top."""
    settings = {"proxy": "all", "archive": True, "key": KEY, "allow_private": ["127.0.0.1"]}
    pics = {"name": "pics", "url": world.upstream.url("/pics.xml"), "interval": interval}
    service = ProxyService(tmp, [pics], {**settings, **images})
    service.hosts = {}
    return service


def test_every_image_is_archived_before_a_reader_asks_and_outlives_its_origin(
    tmp_path: Path, world: World
) -> None:
    """After the first poll, before any reader request, the origin was asked once for every
    image of the published entries (all nine places); with the origin gone, every /img/ URL
    of the served feed answers 200 with the origin's exact bytes, and so after a restart,
    with the same ETag; the index, /metrics and ``feedfix images`` count them."""
    origin = world.origin
    world.serve((1, 2, 3))
    expected = paths_of((1, 2, 3))
    size = sum(len(body_of(p)) for p in expected)
    service = archive_service(tmp_path, world)
    with service:
        wait_for(lambda: archived(service) == len(expected), 20, "every image archived")
        assert {p: origin.hits[p] for p in expected} == dict.fromkeys(expected, 1)
        page = service.get("/metrics").text()
        assert metric(page, "feedfix_image_requests_total", '{outcome="miss"}') == 0  # no reader
        assert metric(page, "feedfix_image_archive_bytes") == size
        assert metric(page, "feedfix_image_archive_fetches_total", '{outcome="archived"}') == 9
        total = images_json(service)["total"]
        assert total == {"archived": 9, "bytes": size, "pending": 0, "retrying": 0,
                         "failed": 0, "unpinned": 0, "reasons": {}}  # fmt: skip
        assert "Image archive: 9 images kept" in service.get("/").text()
        assert service.get("/?format=json").json()["image_archive"] == total  # the same facts
        paths = served_images(service.base_url, service.wait_served("pics"))
        assert len(paths) == 9
        world.stop_origin()
        etags = {}
        for path in paths:
            answer = service.get(path)
            assert (answer.status, answer.body) == (200, body_of(path)), path
            etags[path] = answer.header("ETag")
    service.stop()
    with service.start():
        for path in paths:
            answer = service.get(path)
            assert (answer.status, answer.body) == (200, body_of(path)), path
            assert answer.header("ETag") == etags[path]
    service.stop()
    assert origin.total == 9
    assert images_json(service, "--feed", "pics")["total"] == total  # the service stopped


SMALL = {0: ("/v/0/a.png",), 1: ("/v/1/a.png", "/v/2/b.jpg", "/v/3/c.gif"),
         3: ("/v/7/b.jpg", "/v/8/a.png")}  # fmt: skip  # no big.jpg: a cache of 1 KB


def signed(world: World, path: str) -> str:
    """The proxy path of an origin image that no entry points at (a reader's)."""
    return proxied("", KEY.encode(), world.origin.url(path))


def test_pinned_images_survive_a_cache_smaller_than_the_archive(
    tmp_path: Path, world: World
) -> None:
    """``cache_size`` under the archive's size: images readers asked for come and go
    (least recently used first), the pinned ones all stay, origin or not."""
    world.serve((1, 3), SMALL)
    expected = paths_of((1, 3), SMALL)
    pinned = sum(len(body_of(p)) for p in expected)
    assert pinned > 1000
    service = archive_service(tmp_path, world, cache_size="1KB", max_size="1KB")
    with service:
        wait_for(lambda: archived(service) == len(expected), 20, "every image archived")
        first, second = (
            signed(world, "/v/100/b.jpg"),
            signed(world, "/v/101/c.gif"),
        )
        assert service.get(first).status == 200
        with_first = pinned + len(body_of("/v/100/b.jpg"))  # stored (it is written after)
        wait_for(lambda: cache_stat(service, "bytes") == with_first, 10, "the first stored")
        assert service.get(second).status == 200  # over cache_size: the first one goes
        only_second = pinned + len(body_of("/v/101/c.gif"))  # its bytes, and not the first's
        wait_for(lambda: cache_stat(service, "bytes") == only_second, 10, "the first evicted")
        world.stop_origin()
        assert service.get(first).status == 502  # gone from the cache, and its origin too
        assert service.get(second).status == 200
        for path in served_images(service.base_url, service.wait_served("pics")):
            answer = service.get(path)
            assert (answer.status, answer.body) == (200, body_of(path)), path
    service.stop()


def test_an_entry_that_leaves_the_feed_unpins_its_images(tmp_path: Path, world: World) -> None:
    """With ``keep_entries = 0`` an entry out of the upstream's window leaves the published
    feed: its images are no longer archived (ordinary cache entries, evicted first), the
    others stay pinned."""
    world.serve((1, 3), SMALL)
    service = archive_service(tmp_path, world, interval=1, cache_size="1KB", max_size="1KB")
    service.feeds[0]["keep_entries"] = 0
    with service:
        wait_for(lambda: archived(service) == 6, 20, "every image archived")
        world.serve((1,), SMALL)  # item 3 (two images) leaves
        wait_for(lambda: archived(service) == 4, 20, "item 3's images let go")
        assert images_json(service, "--feed", "pics")["total"]["archived"] == 4
        assert service.get(signed(world, "/v/100/b.jpg")).status == 200  # evicts them
        wait_for(lambda: cache_stat(service, "entries") == 5, 10, "item 3's images evicted")
        world.stop_origin()
        for path in SMALL[3]:
            assert service.get(signed(world, path)).status == 502, path
        for path in paths_of((1,), SMALL):
            assert service.get(signed(world, path)).status == 200, path
    service.stop()


def test_a_poll_never_waits_for_the_images(tmp_path: Path, world: World) -> None:
    """With an origin that takes 2 s per image, the poll that publishes the feed takes no
    longer than without the archive (well under one image's time), and the feed is served
    while its images are still being fetched."""
    world.origin.delay = 2.0
    world.serve((1, 3), SMALL)
    durations = {}
    for archive in (False, True):
        service = archive_service(tmp_path / str(archive), world, archive=archive)
        with service:
            poll = service.wait_for_poll("pics", status="ok", timeout=20)
            assert service.feed("pics").status == 200
            if archive:  # five images, four at a time, 2 s each: 4 s at least for all
                assert archived(service) < 5
            durations[archive] = poll["duration_ms"]
        service.stop()
    assert durations[True] < 1000, durations
    assert durations[True] < durations[False] + 500, durations


def test_failures_show_why_on_the_pages_metrics_and_command_and_retry_on_request(
    tmp_path: Path, world: World
) -> None:
    """Images that fail (404, 500, 429 with Retry-After, a dropped connection) are listed
    with their reason on the feed's page, per entry in the inspector, on /metrics and by
    ``feedfix images --failed``; ``--retry`` (the service running) gets the one whose origin
    recovered archived."""
    origin = world.origin
    broken = {0: ("/v/0/a.png",), 1: ("/status/404", "/status/500", "/drop/a.png"),
              3: ("/status/429?after=3600", "/v/8/a.png")}  # fmt: skip
    origin.broken["/v/8/a.png"] = 503
    world.serve((1, 3), broken)
    service = archive_service(tmp_path, world)
    with service:
        wait_for(lambda: archived(service) == 1, 20, "the logo archived")

        def failed() -> Any:
            return images_json(service, "--failed")

        wait_for(lambda: len(failed()["failed"]) == 5, 20, "five failures")
        rows = {r["url"].split(":", 2)[2].split("/", 1)[1]: r for r in failed()["failed"]}
        assert {p: r["reason"] for p, r in rows.items()} == {
            "status/404": "404", "status/500": "500", "drop/a.png": "connection",
            "status/429?after=3600": "429", "v/8/a.png": "503",
        }  # fmt: skip
        assert all(r["state"] == "retrying" for r in rows.values())
        page = service.get("/metrics").text()
        assert metric(page, "feedfix_image_archive_failed", '{reason="404"}') == 1
        assert metric(page, "feedfix_image_archive_images", '{state="retrying"}') == 5
        feed_page = service.get("/feeds/pics").text()
        assert "Images kept" in feed_page and "origin answered 404" in feed_page
        inspector = service.get("/inspect/pics").text()
        assert "Images: 0 of 3 archived" in inspector and "failed, will be tried again" in inspector
        del origin.broken["/v/8/a.png"]
        done = run_cli("images", "--config", str(service.config_path), "--retry", "--feed", "pics")
        assert done.returncode == 0 and "5 images made pending again" in done.stdout
        wait_for(lambda: archived(service) == 2, 30, "the recovered image archived")
        assert origin.hits["/v/8/a.png"] == 2
    service.stop()
