"""RSS and JSON Feed over the fast path: rendered on first request, once, then kept.

A feed's other formats are rendered from its Atom when first asked for after a change (the
catalog asks the cleaning worker); a request waiting for that render stays on the fast path,
concurrent first requests share the one render, and a changed feed renders again. Checked
over raw sockets against a real ``feedfix serve``, as test_fastpath.py does for the Atom.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedfix.service.poll.worker import Cleaner, FormatJob
from feedfix.service.served import strong_etag
from feedfix.service.state import Published
from formats import CONTENT_TYPES, assert_valid
from service_helpers import Reply, Service, read_responses, wait_for
from upstream import Upstream, feed, zaker_rss

CONCURRENT = 16


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """The scripted upstream of the module's feeds."""
    with Upstream() as server:
        for name in "abcd":
            server.script(f"/{name}.xml", feed(zaker_rss(range(5))))
        yield server


@pytest.fixture(scope="module")
def service(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Four feeds, a (pipelining), b (concurrency), c (change), d (aiohttp), each asked for its
    RSS and JSON Feed by one test only."""
    tmp: Path = tmp_path_factory.mktemp("formats")
    feeds = [{"name": n, "url": upstream.url(f"/{n}.xml"), "interval": 1} for n in "abcd"]
    with Service(tmp, feeds) as svc:
        svc.start()
        for name in "abcd":
            svc.wait_served(name)
        yield svc


def _get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def _replies(port: int, data: bytes, count: int) -> list[Reply]:
    """Send ``data`` on one connection and read ``count`` responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_responses(sock, data, count)[0]


def _rendered(svc: Service, name: str, fmt: str) -> int:
    return sum(1 for r in svc.events("rendered") if (r["feed"], r["format"]) == (name, fmt))


def test_pipelined_first_requests_wait_for_their_render_on_the_fast_path(service: Service) -> None:
    """On one connection: the RSS (not rendered yet), the JSON Feed (nor that), the Atom and
    the RSS again, pipelined: four answers in order, each valid in its format, all from the
    fast path (aiohttp would add a ``Server`` header), the RSS rendered once."""
    paths = ["/feeds/a.rss", "/feeds/a.json", "/feeds/a.atom", "/feeds/a.rss"]
    replies = _replies(service.port, b"".join(_get(p) for p in paths), len(paths))
    for path, (status, headers, body) in zip(paths, replies, strict=True):
        fmt = path.rsplit(".", 1)[1]
        assert status == b"HTTP/1.1 200 OK", path
        assert headers["content-type"].startswith(CONTENT_TYPES[fmt])
        assert "server" not in headers, f"{path} was answered by aiohttp"
        assert_valid(fmt, body)
    assert replies[0][2] == replies[3][2] and replies[0][1]["etag"] == replies[3][1]["etag"]
    assert _rendered(service, "a", "rss") == 1
    assert _rendered(service, "a", "json") == 1


def test_concurrent_first_requests_share_one_render(service: Service) -> None:
    """Sixteen readers ask for b's JSON Feed at once, gzip or not: one render, one ETag for
    the identity and one for the gzip, the gzip the identity's compression."""
    barrier = threading.Barrier(CONCURRENT)
    answers: list[tuple[bytes, dict[str, str], bytes]] = []

    def ask(index: int) -> None:
        extra = "Accept-Encoding: gzip\r\n" if index % 2 else ""
        barrier.wait()
        answers.extend(_replies(service.port, _get("/feeds/b.json", extra), 1))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == CONCURRENT and {s for s, _, _ in answers} == {b"HTTP/1.1 200 OK"}
    plain = {h["etag"]: body for _, h, body in answers if "content-encoding" not in h}
    packed = {h["etag"]: body for _, h, body in answers if "content-encoding" in h}
    assert len(plain) == len(packed) == 1
    ((etag, body),) = plain.items()
    assert gzip.decompress(next(iter(packed.values()))) == body
    assert next(iter(packed)) == etag[:-1] + '-gz"'
    assert etag == strong_etag(body), "the ETag is a function of the bytes"
    assert_valid("json", body)
    assert _rendered(service, "b", "json") == 1


def test_a_changed_feed_renders_its_formats_again(service: Service, upstream: Upstream) -> None:
    """Once c's upstream has a new item, its RSS is rendered again (once) with it: the old
    ETag gets a 200 and the new bytes, the new one a 304."""
    ((_, before, old),) = _replies(service.port, _get("/feeds/c.rss"), 1)
    upstream.script("/c.xml", feed(zaker_rss(range(6))))

    def changed() -> tuple[bytes, dict[str, str], bytes] | None:
        (reply,) = _replies(
            service.port, _get("/feeds/c.rss", f"If-None-Match: {before['etag']}\r\n"), 1
        )
        return reply if reply[0] == b"HTTP/1.1 200 OK" else None

    _, headers, body = wait_for(changed, 10, "c's RSS to change")
    assert body != old and body.count(b"<item>") == old.count(b"<item>") + 1
    ((again, _, _),) = _replies(
        service.port, _get("/feeds/c.rss", f"If-None-Match: {headers['etag']}\r\n"), 1
    )
    assert again == b"HTTP/1.1 304 Not Modified"
    assert _rendered(service, "c", "rss") == 2


def test_aiohttps_handler_renders_a_format_too(service: Service) -> None:
    """A head the fast path leaves to aiohttp (a field given twice) for a format not rendered
    yet: aiohttp's handler waits for the render and answers the same bytes, then the fast
    path answers the next plain request from what was kept."""
    twice = "X-A: 1\r\nX-A: 2\r\n"
    ((status, slow, body),) = _replies(service.port, _get("/feeds/d.rss", twice), 1)
    ((_, fast, again),) = _replies(service.port, _get("/feeds/d.rss"), 1)
    assert status == b"HTTP/1.1 200 OK" and "aiohttp" in slow["server"]
    assert "server" not in fast and again == body and fast["etag"] == slow["etag"]
    assert _rendered(service, "d", "rss") == 1


def test_replicas_render_the_same_bytes_and_etag() -> None:
    """Every replica renders RSS and JSON Feed from the shared Atom itself: the same Atom
    gives the same bytes, gzip and ETag in another process (another hash seed) as here."""
    atom = Path(__file__).parents[1] / "data" / "golden" / "formats" / "zaker-modern.atom.xml"
    published = Published.of(atom.read_bytes(), strong_etag(atom.read_bytes()), 1.0e9, 2)
    here = {fmt: Cleaner().render_format(FormatJob("z", published, fmt, "https://f.example/feeds/z.atom"))
            for fmt in ("rss", "json")}  # fmt: skip
    code = (
        "import json, sys; from pathlib import Path\n"
        "from feedfix.service.poll.worker import Cleaner, FormatJob\n"
        "from feedfix.service.served import strong_etag\n"
        "from feedfix.service.state import Published\n"
        f"data = Path({str(atom)!r}).read_bytes()\n"
        "p = Published.of(data, strong_etag(data), 1.0e9, 2)\n"
        "out = {f: Cleaner().render_format(FormatJob('z', p, f, 'https://f.example/feeds/z.atom'))"
        " for f in ('rss', 'json')}\n"
        "print(json.dumps({f: [o.etag, o.gzip.hex()] for f, o in out.items()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                          env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin"})  # fmt: skip
    there = json.loads(done.stdout)
    for fmt, made in here.items():
        assert [made.etag, made.gzip.hex()] == there[fmt], fmt
        assert made.etag == strong_etag(made.identity())
