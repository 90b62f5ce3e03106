"""The image archive on two replicas of ``feedfix serve``: one real Redis, one image folder.

Both replicas are started as a user starts them (``[storage] backend = "redis"``, the same
``[images] path``), with the same public ``base_url`` as behind a load balancer. The
archive's index is in Redis; a claim there hands each image to one replica, so the origin
is asked once per image; every replica then serves every image, origin or not.
"""

from __future__ import annotations

from pathlib import Path

from image_origin import IMAGES
from image_service import ProxyService, World, archive_world, metric, origin_path, paths_of
from image_service import served_images as images_in
from redis_helpers import RedisServer, unique_prefix
from service_helpers import TEST_POLL, wait_for

__all__ = ["archive_world"]  # the "world" fixture: the origin and the upstream
KEY = "archive-test-key-0123456789-abcdefghijklmnop"
PUBLIC = "https://feeds.example.com"


def test_two_replicas_fetch_each_image_once_and_both_serve_it_when_the_origin_is_gone(
    tmp_path: Path, world: World, redis_server: RedisServer
) -> None:
    """Two replicas archive the nine images with one origin request each, write them into the
    shared folder whole (no temporary file left), and each answers every image with the
    origin's bytes once the origin is gone."""
    world.serve((1, 2, 3))
    expected = paths_of((1, 2, 3))
    shared = tmp_path / "images"
    env = {
        "FEEDFIX_STORAGE__BACKEND": "redis",
        "FEEDFIX_STORAGE__URL": redis_server.url,
        "FEEDFIX_STORAGE__PREFIX": unique_prefix(),
        "FEEDFIX_STORAGE__LEASE": "2s",
        "FEEDFIX_STORAGE__SYNC_EVERY": "2s",
    }
    images = {"proxy": "all", "archive": True, "key": KEY, "path": str(shared),
              "allow_private": ["127.0.0.1"]}  # fmt: skip
    feeds = [{"name": "pics", "url": world.upstream.url("/pics.xml"), "interval": 1}]
    replicas = []
    for index in range(2):
        replica = ProxyService(tmp_path / f"r{index}", feeds, images, env=env, poll=TEST_POLL)
        replica.hosts, replica.public_url = {}, PUBLIC
        replicas.append(replica)
    try:
        for replica in replicas:
            replica.start()

        def all_archived() -> bool:
            return all(
                metric(r.get("/metrics").text(), "feedfix_image_archive_images",
                       '{state="archived"}') == len(expected)
                for r in replicas
            )  # fmt: skip

        wait_for(all_archived, 30, "both replicas to count every image archived")
        assert {p: world.origin.hits[p] for p in expected} == dict.fromkeys(expected, 1)
        assert not [f for f in shared.rglob("*") if f.name.endswith(".tmp")]
        paths = images_in(PUBLIC, replicas[0].wait_served("pics"))
        assert len(paths) == len(expected)
        world.stop_origin()
        for replica in replicas:
            for path in paths:
                answer = replica.get(path)
                name = origin_path(path).rsplit("/", 1)[1]
                assert (answer.status, answer.body) == (200, IMAGES[name][0]), path
        assert world.origin.total == len(expected)
        for replica in replicas:
            replica.stop()
    finally:
        for replica in replicas:
            replica.close()
