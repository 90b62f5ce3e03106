"""Cached images answered in front of aiohttp (``http/image_front.py``, ``http/fastpath.py``):
each head's answer remembered and each hot file kept open, yet never an answer the cache no
longer holds. A real origin and a real proxy on 127.0.0.1; the front on a real socket."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from feedfix.service.catalog import Catalog
from feedfix.service.http.connections import Limits
from feedfix.service.http.fastpath import FastPath, FastPathProtocol
from feedfix.service.http.image_front import KNOWN, ImageFront
from image_origin import IMAGES, ImageOrigin, Proxy, serving, settings, sign

pytest.importorskip("PIL")


def run(check: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one async test body."""
    asyncio.run(check())


def head(path: str, *fields: str) -> bytes:
    """A request head as a reader sends it (without the final blank line)."""
    return "\r\n".join([f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *fields]).encode()


async def get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[
    int, CIMultiDict[str], bytes
]:  # fmt: skip
    """One request over a fresh connection: status, headers, body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + path, headers=headers or {}) as response,
    ):
        return response.status, CIMultiDict(response.headers), await response.read()


class SmallSendBuffer(FastPathProtocol):
    """A connection whose socket takes only a few KB at a time, as for a far reader."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Shrink the send buffer before anything is written."""
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        super().connection_made(transport)


async def cached(proxy: Proxy, path: str) -> None:
    """Have aiohttp's handler fetch ``path`` and wait until it is on disk and indexed."""
    await get(proxy.base, path)
    await proxy.service.cache.settle()


@asynccontextmanager
async def front_of(
    proxy: Proxy, small_send_buffer: bool = False
) -> AsyncIterator[tuple[str, FastPath]]:
    """A ``FastPath`` on its own loopback port in front of nothing: what it does not answer
    itself is refused (a 503 from the stand-in below), so every 200 is the front's."""

    class Refuse(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(b"HTTP/1.1 503 Not here\r\nContent-Length: 0\r\n\r\n")

    front = FastPath(Refuse, Limits(), Catalog(), lambda _status: None,
                     images=proxy.service.http)  # fmt: skip
    factory = (lambda: SmallSendBuffer(front)) if small_send_buffer else front
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", front
    finally:
        server.close()
        front.close()
        await server.wait_closed()


def test_a_repeated_head_is_answered_from_memory_and_still_counted(tmp_path: Path) -> None:
    """The second time a head is seen, its answer is the one remembered (no parse, no
    signature check, no index lookup), and the hit and the use are still counted."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/plain/a.png"))
            await cached(proxy, path)
            images = ImageFront(proxy.service.http)
            first = images.answer(head(path))
            again = images.answer(head(path))
            assert first is not None and again is first
            assert first.head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"\r\nContent-Type: image/png\r\n" in first.head
            assert proxy.count("hit") == 2
            assert proxy.service.cache.resident()["uses"] == 1
            not_modified = images.answer(head(path, 'If-None-Match: "nope"'))
            assert not_modified is not None and not_modified is not first  # another head
            assert images.answer(head(path[:-2] + "xx")) is None  # forged: aiohttp's 403
            assert len(images.known) == 2
            images.close()
        await origin.stop()

    run(check)


def test_the_front_counts_the_requests_it_answers_for_the_archive_to_give_way(
    tmp_path: Path,
) -> None:
    """Each request the front answers adds one to its reader traffic (what the image archive
    reads to give way, ``readers_first.py``); one it hands on is not its answer, not counted."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with (
            serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy,
            front_of(proxy) as (fast, front),
        ):
            path = sign(origin.url("/plain/a.png"))
            assert (await get(fast, path))[0] == 503  # not cached yet: handed on
            assert front.traffic.answered == 0
            await cached(proxy, path)
            for _ in range(3):
                assert (await get(fast, path))[0] == 200
            assert (await get(fast, path, {"If-None-Match": "nope"}))[0] == 200
            assert front.traffic.answered == 4
        await origin.stop()

    run(check)


def test_remembered_answers_stay_bounded(tmp_path: Path) -> None:
    """However many distinct heads come, at most ``KNOWN`` answers are held."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        async with serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy:
            path = sign(origin.url("/plain/a.png"))
            await cached(proxy, path)
            images = ImageFront(proxy.service.http)
            for n in range(KNOWN + 10):
                assert images.answer(head(path, f"User-Agent: reader/{n}")) is not None
            assert 0 < len(images.known) <= KNOWN
            images.close()
        await origin.stop()

    run(check)


def test_an_evicted_image_is_neither_answered_nor_kept_open(tmp_path: Path) -> None:
    """When the cache evicts an image, the front forgets its answers and closes its file."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        big = len(IMAGES["big.jpg"][0])
        config = settings(tmp_path / "c", cache_size=2 * big + 10, max_size=big + 10)
        async with serving(config, tmp_path / "m.db") as proxy:
            paths = [sign(origin.url(f"/plain/big.jpg?v={i}")) for i in range(3)]
            images = ImageFront(proxy.service.http)
            await cached(proxy, paths[0])
            answer = images.answer(head(paths[0]))
            assert answer is not None
            fd = images.file(answer)
            assert fd is not None and os.pread(fd, 4, 0) == IMAGES["big.jpg"][0][:4]
            for path in paths[1:]:  # the third evicts the first, least recently used
                await cached(proxy, path)
            assert images.answer(head(paths[0])) is None
            with pytest.raises(OSError):
                os.fstat(fd)  # closed
            images.close()
        await origin.stop()

    run(check)


def test_an_image_fetched_again_is_served_anew_by_the_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over real sockets: an image answered by the front (remembered, file open) changes at
    its origin and is evicted; asked for again, it is fetched again, and the front then
    sends the new bytes with their new ETag, never the old ones."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        old = IMAGES["big.jpg"][0]
        config = settings(tmp_path / "c", cache_size=2 * len(old) + 10, max_size=len(old) + 10)
        async with serving(config, tmp_path / "m.db") as proxy, front_of(proxy) as (fast, _):
            paths = [sign(origin.url(f"/plain/big.jpg?v={i}")) for i in range(3)]
            assert (await get(fast, paths[0]))[0] == 503  # not cached: not the front's
            await cached(proxy, paths[0])
            status, headers, body = await get(fast, paths[0])
            assert (status, body) == (200, old)
            assert (await get(fast, paths[0]))[2] == old  # the remembered answer
            new = bytearray(old)
            new[len(old) // 2] ^= 0xFF
            monkeypatch.setitem(IMAGES, "big.jpg", (bytes(new), "image/jpeg"))
            for path in paths[1:]:
                await cached(proxy, path)
            assert (await get(fast, paths[0]))[0] == 503  # evicted: not the front's any more
            await cached(proxy, paths[0])
            status, fresh, body = await get(fast, paths[0])
            assert (status, body) == (200, bytes(new))
            assert fresh["ETag"] != headers["ETag"]
            assert fresh["Content-Length"] == str(len(new))
        await origin.stop()

    run(check)


def test_ranges_conditionals_and_head_from_the_front(tmp_path: Path) -> None:
    """206, 304, 416 and HEAD through the front on a real socket, each asked twice (the
    second answer is the remembered one), with the origin's exact bytes."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        image = IMAGES["big.jpg"][0]
        async with (
            serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy,
            front_of(proxy) as (fast, _),
        ):
            path = sign(origin.url("/plain/big.jpg"))
            await cached(proxy, path)
            etag = (await get(fast, path))[1]["ETag"]
            for _ in range(2):
                status, headers, body = await get(fast, path, {"Range": "bytes=100-"})
                assert (status, body) == (206, image[100:])
                assert headers["Content-Range"] == f"bytes 100-{len(image) - 1}/{len(image)}"
                status, _, body = await get(fast, path, {"If-None-Match": etag})
                assert (status, body) == (304, b"")
                status, headers, _ = await get(fast, path, {"Range": f"bytes={len(image)}-"})
                assert (status, headers["Content-Range"]) == (416, f"bytes */{len(image)}")
                async with (
                    aiohttp.ClientSession() as session,
                    session.head(fast + path) as response,
                ):
                    assert response.status == 200
                    assert response.headers["Content-Length"] == str(len(image))
                    assert await response.read() == b""
        await origin.stop()

    run(check)


def test_pipelined_requests_from_a_slow_reader_get_every_byte_in_order(tmp_path: Path) -> None:
    """Three pipelined GETs of a 100 KB image from a reader with a small receive buffer that
    reads slowly: the socket takes part of a body, the rest waits on the transport, and
    every reply still arrives whole and in order."""

    async def check() -> None:
        origin = await ImageOrigin().start()
        image = IMAGES["big.jpg"][0]
        async with (
            serving(settings(tmp_path / "c"), tmp_path / "m.db") as proxy,
            front_of(proxy, small_send_buffer=True) as (fast, _),
        ):
            path = sign(origin.url("/plain/big.jpg"))
            await cached(proxy, path)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", int(fast.rsplit(":", 1)[1])))
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write((head(path) + b"\r\n\r\n") * 3)
            await asyncio.sleep(0.2)  # the front writes while nothing is read
            for _ in range(3):
                status = await reader.readuntil(b"\r\n\r\n")
                assert status.startswith(b"HTTP/1.1 200 OK\r\n")
                assert f"\r\nContent-Length: {len(image)}\r\n".encode() in status
                body = b""
                while len(body) < len(image):
                    body += await reader.read(min(8192, len(image) - len(body)))
                    await asyncio.sleep(0)
                assert body == image
            writer.close()
        await origin.stop()

    run(check)
