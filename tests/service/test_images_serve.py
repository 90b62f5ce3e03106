"""The image proxy served by a real aiohttp app on 127.0.0.1, fetching from a real origin:
exact bytes, one fetch for many readers, HTTP caching answers, restarts, and signatures."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from feedfix.core.imagesign import Referer, b64encode, parse_referer
from feedfix.service.images.cache import LEFTOVER_AGE
from image_origin import (
    IMAGES,
    WEIBO,
    ImageOrigin,
    Proxy,
    serving,
    settings,
    sign,
)
from name_map import NameMap

pytest.importorskip("PIL")


def run(check: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one async test body."""
    asyncio.run(check())


async def get(
    proxy: Proxy, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, CIMultiDict[str], bytes]:
    """One request to the proxy over a fresh connection: status, headers, body."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, proxy.base + path, headers=headers or {}) as response,
    ):
        return response.status, CIMultiDict(response.headers), await response.read()


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_each_image_type_is_served_with_the_origins_exact_bytes(tmp_path: Path, name: str) -> None:
    """PNG, JPEG, GIF, WebP and AVIF pass through byte for byte, with their canonical type."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            status, headers, body = await get(proxy, sign(origin.url(f"/plain/{name}")))
            assert status == 200
            assert body == IMAGES[name][0]
            assert headers["Content-Type"] == IMAGES[name][1]
            assert headers["Content-Length"] == str(len(body))
        await origin.stop()

    run(check)


def test_every_answer_carries_the_security_and_caching_headers(tmp_path: Path) -> None:
    """nosniff, a forbid-all CSP, a strong ETag and a year-long immutable Cache-Control."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            _, headers, _ = await get(proxy, sign(origin.url("/plain/a.png")))
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Content-Security-Policy"] == "default-src 'none'"
            assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert headers["ETag"].startswith('"') and not headers["ETag"].startswith("W/")
            for path in ("/img/v1/bad/n/xx", "/img/nonsense"):
                _, error_headers, _ = await get(proxy, path)
                assert error_headers["X-Content-Type-Options"] == "nosniff"
                assert error_headers["Content-Security-Policy"] == "default-src 'none'"
        await origin.stop()

    run(check)


def test_the_origin_is_asked_once_for_many_concurrent_requests(tmp_path: Path) -> None:
    """Twenty readers at once while the origin takes 0.3 s: one origin request, twenty
    identical answers; later requests are hits."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/slow/b.jpg?s=0.3"))
            answers = await asyncio.gather(*(get(proxy, path) for _ in range(20)))
            assert {status for status, _, _ in answers} == {200}
            assert {body for _, _, body in answers} == {IMAGES["b.jpg"][0]}
            assert origin.hits["/slow/b.jpg"] == 1
            assert proxy.count("miss") == 1
            assert proxy.count("coalesced") == 19
            await proxy.service.cache.settle()
            await get(proxy, path)
            assert origin.hits["/slow/b.jpg"] == 1
            assert proxy.count("hit") == 1
        await origin.stop()

    run(check)


def test_if_none_match_gets_a_304_without_a_body(tmp_path: Path) -> None:
    """The ETag sent back (alone, in a list, or weak) gets a 304; another one the image."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/plain/a.png"))
            _, headers, _ = await get(proxy, path)
            etag = headers["ETag"]
            for value in (etag, f'"other", {etag}', f"W/{etag}", "*"):
                status, again, body = await get(proxy, path, {"If-None-Match": value})
                assert (status, body) == (304, b"")
                assert again["ETag"] == etag
                assert again["Cache-Control"] == "public, max-age=31536000, immutable"
            status, _, body = await get(proxy, path, {"If-None-Match": '"other"'})
            assert (status, body) == (200, IMAGES["a.png"][0])
        await origin.stop()

    run(check)


def test_range_requests_get_206_or_416(tmp_path: Path) -> None:
    """A single range is answered 206 with the exact slice; one past the end is 416;
    a stale If-Range or several ranges get the whole image."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        whole = IMAGES["big.jpg"][0]
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/plain/big.jpg"))
            _, headers, _ = await get(proxy, path)
            await proxy.service.cache.settle()  # the ranges below come from the file
            size = len(whole)
            cases = {  # Range: (first byte, last byte)
                "bytes=0-99": (0, 99),
                "bytes=100-": (100, size - 1),
                "bytes=-50": (size - 50, size - 1),
                f"bytes=10-{size + 500}": (10, size - 1),
            }
            for value, (first, last) in cases.items():
                status, answer, body = await get(proxy, path, {"Range": value})
                assert (status, body) == (206, whole[first : last + 1]), value
                assert answer["Content-Range"] == f"bytes {first}-{last}/{size}"
            status, answer, _ = await get(proxy, path, {"Range": f"bytes={len(whole)}-"})
            assert status == 416
            assert answer["Content-Range"] == f"bytes */{len(whole)}"
            status, _, body = await get(proxy, path, {"Range": "bytes=0-1", "If-Range": '"x"'})
            assert (status, body) == (200, whole)
            status, _, body = await get(
                proxy, path, {"Range": "bytes=0-1", "If-Range": headers["ETag"]}
            )
            assert (status, body) == (206, whole[:2])
            status, _, body = await get(proxy, path, {"Range": "bytes=0-1,5-9"})
            assert (status, body) == (200, whole)
        await origin.stop()

    run(check)


def test_head_answers_the_headers_without_the_body(tmp_path: Path) -> None:
    """HEAD gives the length, type and ETag of the image and no body."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/plain/c.gif"))
            status, headers, body = await get(proxy, path, method="HEAD")
            assert (status, body) == (200, b"")
            assert headers["Content-Length"] == str(len(IMAGES["c.gif"][0]))
            assert headers["Content-Type"] == "image/gif"
            await proxy.service.cache.settle()  # and once more from the file
            status, headers, body = await get(proxy, path, method="HEAD")
            assert (status, body) == (200, b"")
            assert headers["Content-Length"] == str(len(IMAGES["c.gif"][0]))
            status, headers, _ = await get(proxy, path, method="POST")
            assert status == 405 and headers["Allow"] == "GET, HEAD"
        await origin.stop()

    run(check)


def test_a_restart_serves_from_the_cache_with_the_origin_down(tmp_path: Path) -> None:
    """A new app on the same cache folder and metadata file serves the image, same bytes
    and ETag, although the origin no longer listens."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        path = sign(origin.url("/plain/d.webp"))
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            _, first, _ = await get(proxy, path)
        await origin.stop()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            status, headers, body = await get(proxy, path)
            assert (status, body) == (200, IMAGES["d.webp"][0])
            assert headers["ETag"] == first["ETag"]
            assert proxy.count("hit") == 1
            assert proxy.service.stats().entries == 1

    run(check)


def test_tampering_is_refused_with_403_and_nothing_is_fetched(tmp_path: Path) -> None:
    """A changed signature, policy or URL, another key, or no signature at all: 403, and
    the origin is never asked."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            good = sign(origin.url("/weibo/a.png"), parse_referer(WEIBO))
            _, _, sig, policy, encoded = good.strip("/").split("/")
            flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
            other_url = b64encode(origin.url("/plain/b.jpg"))
            forged = [
                f"/img/v1/{flipped}/{policy}/{encoded}",
                f"/img/v1/{sig}/n/{encoded}",
                f"/img/v1/{sig}/o/{encoded}",
                f"/img/v1/{sig}/{policy}/{other_url}",
                sign(origin.url("/weibo/a.png"), parse_referer(WEIBO), key=b"another key"),
                f"/img/v1//{policy}/{encoded}",
            ]
            for path in forged:
                status, _, body = await get(proxy, path)
                assert status == 403, path
                assert body == b"bad signature\n"
            assert origin.total == 0
            assert proxy.count("bad_signature") == len(forged)
            assert (await get(proxy, good))[0] == 200
        await origin.stop()

    run(check)


def test_malformed_paths_are_400(tmp_path: Path) -> None:
    """A path that is not a v1 image URL at all is 400, with a one-line reason."""

    async def check() -> None:
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            for path in ("/img/", "/img/v2/a/b/c", "/img/v1/a/b"):
                status, headers, body = await get(proxy, path)
                assert status == 400, path
                assert body.count(b"\n") == 1
                assert headers["Content-Type"].startswith("text/plain")
            assert proxy.count("malformed") == 3

    run(check)


def test_the_policy_decides_the_referer_and_nothing_of_the_reader_is_forwarded(
    tmp_path: Path,
) -> None:
    """The Weibo policy sends https://weibo.com/, the origin policy the image's origin; the
    reader's cookies, Referer and Authorization never reach the origin; the configured
    User-Agent does; an origin's Set-Cookie is neither kept nor passed on."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        config = settings(tmp_path / "c", user_agent="TestBrowser/1.0")
        async with serving(config, tmp_path / "m.db") as proxy:
            reader = {"Cookie": "reader=secret", "Referer": "https://reader.example/",
                      "Authorization": "Basic c2VjcmV0"}  # fmt: skip
            status, _, _ = await get(proxy, sign(origin.url("/weibo/a.png")), reader)
            assert status == 502  # no Referer: the origin refuses (and we say so)
            for path, policy in (("/weibo/b.jpg", parse_referer(WEIBO)),
                                 ("/own/c.gif", Referer("origin"))):  # fmt: skip
                status, _, _ = await get(proxy, sign(origin.url(path), policy), reader)
                assert status == 200, path
                sent = origin.headers[path]
                assert sent["Referer"] == policy.header(origin.url(path))
                assert sent["User-Agent"] == "TestBrowser/1.0"
                assert "Cookie" not in sent and "Authorization" not in sent
            status, headers, _ = await get(proxy, sign(origin.url("/cookie/a.png")))
            assert status == 200 and "Set-Cookie" not in headers
            await get(proxy, sign(origin.url("/cookie/d.webp")))
            assert "Cookie" not in origin.headers["/cookie/d.webp"]
        await origin.stop()

    run(check)


def test_origin_failures_are_remembered_for_a_while(tmp_path: Path) -> None:
    """403, 404 and 5xx are answered 502 with a short text; asking again within
    negative_seconds does not reach the origin; after it, the origin is asked again."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c", remember_failures=0.5), None) as proxy:
            for code in (403, 404, 500, 503):
                path = sign(origin.url(f"/status/{code}"))
                for _ in range(3):
                    status, _, body = await get(proxy, path)
                    assert status == 502
                    assert body == f"origin answered {code}\n".encode()
                assert origin.hits[f"/status/{code}"] == 1
            assert proxy.count("origin_error") == 12
            await asyncio.sleep(0.6)
            await get(proxy, sign(origin.url("/status/404")))
            assert origin.hits["/status/404"] == 2
        await origin.stop()

    run(check)


def test_a_cached_image_is_served_after_its_origin_starts_failing(tmp_path: Path) -> None:
    """Once cached, an image outlives its origin going away."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/plain/a.png"))
            assert (await get(proxy, path))[0] == 200
            await proxy.service.cache.settle()
            await origin.stop()
            status, _, body = await get(proxy, path)
            assert (status, body) == (200, IMAGES["a.png"][0])

    run(check)


def test_a_redirect_to_another_allowed_origin_is_followed(tmp_path: Path) -> None:
    """A redirect from one named origin to another is followed, each hop checked, and the
    final bytes served; more redirects than max_redirects are refused."""

    async def check() -> None:
        first, second = await ImageOrigin().start(), await ImageOrigin().start()
        names = NameMap({"one.img.test": ["127.0.0.1"], "two.img.test": ["127.0.0.1"]})
        config = settings(tmp_path / "c", allow_private=("*.img.test",), max_redirects=2)
        target = second.url("/plain/e.avif", host="two.img.test")
        async with serving(config, None, resolver=names) as proxy:
            url = first.url(f"/redirect?to={target}", host="one.img.test")
            status, _, body = await get(proxy, sign(url))
            assert (status, body) == (200, IMAGES["e.avif"][0])
            assert second.hits["/plain/e.avif"] == 1
            loop = first.url("/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/plain/a.png",
                             host="one.img.test")  # fmt: skip
            status, _, body = await get(proxy, sign(loop))
            assert status == 502 and b"more than 2 redirects" in body
            assert proxy.count("refused") == 1
        await first.stop()
        await second.stop()

    run(check)


def test_the_cache_stays_under_its_size_least_recently_used_out_first(tmp_path: Path) -> None:
    """With room for two images, a third evicts the one used least recently (its file is
    gone, its row too), and that one is fetched again when asked for."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        big = len(IMAGES["big.jpg"][0])
        config = settings(tmp_path / "c", cache_size=2 * big + 10, max_size=big + 10)
        async with serving(config, tmp_path / "m.db") as proxy:
            paths = [sign(origin.url(f"/plain/big.jpg?v={i}")) for i in range(3)]
            cache = proxy.service.cache
            for i in (0, 1, 0):  # 0 is now more recent than 1
                await get(proxy, paths[i])
                await cache.settle()
            cache.flush()
            await get(proxy, paths[2])
            await cache.settle()
            stats = proxy.service.stats()
            assert stats.entries == 2 and stats.bytes <= config.limits.cache_size
            files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
            assert len(files) == 2
            before = origin.hits["/plain/big.jpg"]
            await get(proxy, paths[0])
            assert origin.hits["/plain/big.jpg"] == before  # kept
            await get(proxy, paths[1])
            assert origin.hits["/plain/big.jpg"] == before + 1  # evicted, fetched again
        await origin.stop()

    run(check)


def test_a_cache_file_removed_by_hand_is_fetched_again(tmp_path: Path) -> None:
    """If the file under an index row disappears, the image is fetched again, not a 500."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/plain/a.png"))
            await get(proxy, path)
            await proxy.service.cache.settle()
            for file in (tmp_path / "c").rglob("*"):
                if file.is_file():
                    file.unlink()
            status, _, body = await get(proxy, path)
            assert (status, body) == (200, IMAGES["a.png"][0])
            assert origin.hits["/plain/a.png"] == 2
        await origin.stop()

    run(check)


def test_metrics_count_bytes_and_cache_size(tmp_path: Path) -> None:
    """Bytes served and fetched and the cache gauges are exported in the registry given."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        size = len(IMAGES["b.jpg"][0])
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/plain/b.jpg"))
            await get(proxy, path)
            await proxy.service.cache.settle()
            await get(proxy, path)
            value = proxy.registry.get_sample_value
            assert value("feedfix_image_fetched_bytes_total") == size
            assert value("feedfix_image_served_bytes_total") == 2 * size
            assert value("feedfix_image_cache_bytes") == size
            assert value("feedfix_image_cache_entries") == 1
        await origin.stop()

    run(check)


def test_the_fast_path_seam_answers_hits_only(tmp_path: Path) -> None:
    """``ImageHandler.cached`` gives a complete reply for a cached image (200, 304, 206,
    HEAD) without awaiting, counted as a hit, and None for a miss, a forged signature or
    another method, which stay aiohttp's to answer."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            handler = proxy.service.http
            path = sign(origin.url("/plain/a.png"))
            assert handler.cached("GET", path, {}) is None  # not cached yet
            await get(proxy, path)
            await proxy.service.cache.settle()
            reply = handler.cached("GET", path, {})
            assert reply is not None and reply.status == 200
            assert Path(reply.path).read_bytes()[reply.start : reply.count] == IMAGES["a.png"][0]
            assert reply.headers["Content-Type"] == "image/png"
            assert reply.headers["X-Content-Type-Options"] == "nosniff"
            etag = reply.headers["ETag"]
            not_modified = handler.cached("GET", path, {"If-None-Match": etag})
            assert not_modified is not None and not_modified.status == 304
            assert not_modified.count == 0
            partial = handler.cached("GET", path, {"Range": "bytes=1-4"})
            assert partial is not None and (partial.status, partial.start, partial.count) == (
                206, 1, 4,
            )  # fmt: skip
            head = handler.cached("HEAD", path, {})
            assert head is not None and head.count == 0
            assert head.headers["Content-Length"] == str(len(IMAGES["a.png"][0]))
            assert handler.cached("POST", path, {}) is None
            assert handler.cached("GET", path[:-2] + "xx", {}) is None
            assert proxy.count("hit") == 4
        await origin.stop()

    run(check)


def test_a_reader_hanging_up_does_not_cancel_the_fetch_for_the_others(tmp_path: Path) -> None:
    """The first reader of a slow image gives up (and aiohttp cancels its handler); the one
    fetch goes on, the second reader gets the image, and the origin was asked once."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        config = settings(tmp_path / "c")
        async with serving(config, tmp_path / "m.db", cancel_on_disconnect=True) as proxy:
            path = sign(origin.url("/slow/a.png?s=0.4"))
            first = asyncio.ensure_future(get(proxy, path))
            await asyncio.sleep(0.1)
            second = asyncio.ensure_future(get(proxy, path))
            await asyncio.sleep(0.1)
            first.cancel()
            status, _, body = await second
            assert (status, body) == (200, IMAGES["a.png"][0])
            assert origin.hits["/slow/a.png"] == 1
            await proxy.service.cache.settle()
            assert proxy.service.stats().entries == 1
        await origin.stop()

    run(check)


def test_memory_tables_stay_capped_as_the_cache_grows(tmp_path: Path) -> None:
    """With small caps (8 recent rows, 8 failures), 30 cached images and 30 failing ones
    leave every in-memory table at or under its cap; the index on disk holds all 30."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            cache = proxy.service.cache
            cache.limits |= {"recent": 8, "failures": 8}
            for i in range(30):
                assert (await get(proxy, sign(origin.url(f"/plain/a.png?v={i}"))))[0] == 200
                assert (await get(proxy, sign(origin.url(f"/status/404?v={i}"))))[0] == 502
            await cache.settle()
            sizes = cache.resident()
            assert sizes["recent"] <= 8 and sizes["failures"] <= 8
            assert sizes["uses"] <= cache.limits["uses"] and sizes["flights"] == 0
            assert proxy.service.stats().entries == 30
        await origin.stop()

    run(check)


def test_a_restart_removes_what_a_crash_left_behind(tmp_path: Path) -> None:
    """A temporary file and a body that never reached the index are removed when the cache
    opens again, once they are older than a write takes (younger ones may be another
    replica's, on a shared folder, between writing and indexing); indexed images stay."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        path = sign(origin.url("/plain/a.png"))
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            await get(proxy, path)
        shard = next(p for p in (tmp_path / "c").iterdir() if p.is_dir())
        stray = [shard / ("f" * 64), shard / f".{'e' * 64}.123.tmp"]
        young = [shard / ("d" * 64), shard / f".{'c' * 64}.456.tmp"]
        long_ago = time.time() - LEFTOVER_AGE - 60
        for file in stray + young:
            file.write_bytes(b"left by a crash")
        for file in stray:
            os.utime(file, (long_ago, long_ago))
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            assert not any(file.exists() for file in stray)
            assert all(file.exists() for file in young)
            status, _, body = await get(proxy, path)
            assert (status, body) == (200, IMAGES["a.png"][0])
            assert origin.hits["/plain/a.png"] == 1
        await origin.stop()

    run(check)


def test_a_broken_index_degrades_to_fetching_not_to_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """If the index table can't be read or written (here: dropped behind the cache's back),
    images are still fetched and served exactly, with a warning naming the file, never a 500."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            with sqlite3.connect(tmp_path / "m.db") as db:
                db.execute("DROP TABLE image_cache")
            path = sign(origin.url("/plain/a.png"))
            for _ in range(2):
                status, _, body = await get(proxy, path)
                assert (status, body) == (200, IMAGES["a.png"][0])
                await proxy.service.cache.settle()
            assert origin.hits["/plain/a.png"] == 2
            errors = [getattr(r, "fields", {}).get("error", "") for r in caplog.records]
            assert any("m.db: image cache index" in error for error in errors)
        await origin.stop()

    with caplog.at_level("WARNING"):
        run(check)
