"""The fast path in front of aiohttp, over raw sockets: it must speak HTTP/1.x correctly."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service_helpers import Reply, Service, read_responses, wait_for
from upstream import Upstream, feed, zaker_rss


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One served feed, f."""
    with Upstream() as upstream:
        upstream.script("/f.xml", feed(zaker_rss(range(5))))
        tmp: Path = tmp_path_factory.mktemp("front")
        with Service(tmp, [{"name": "f", "url": upstream.url("/f.xml"), "interval": "60s"}]) as svc:
            svc.start()
            svc.wait_served("f")
            yield svc


def _exchange(port: int, data: bytes, responses: int = 1) -> list[Reply]:
    """Send ``data`` on a new connection; read ``responses`` HTTP responses."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(data)
    out, _ = read_responses(sock, data, responses)
    sock.close()
    return out


def _get(path: str = "/feeds/f.atom", extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: x\r\n{extra}\r\n".encode()


def test_pipelined_requests_each_get_a_full_answer(service: Service) -> None:
    """Three pipelined GETs on one connection: three complete, identical 200s in order."""
    replies = _exchange(service.port, _get() * 3, responses=3)
    bodies = {body for _, _, body in replies}
    assert [s for s, _, _ in replies] == [b"HTTP/1.1 200 OK"] * 3
    assert len(bodies) == 1 and next(iter(bodies)).startswith(b"<?xml")
    assert all(
        "date" in h and h["content-type"].startswith("application/atom+xml") for _, h, _ in replies
    )


def test_conditional_gzip_head_and_http10(service: Service) -> None:
    """304 on the ETag, gzip when asked, HEAD without a body, HTTP/1.0 closes by default."""
    ((status, headers, body),) = _exchange(service.port, _get())
    etag = headers["etag"]
    ((status, h304, body304),) = _exchange(service.port, _get(extra=f"If-None-Match: {etag}\r\n"))
    assert status == b"HTTP/1.1 304 Not Modified" and body304 == b"" and h304["etag"] == etag
    ((_, hgz, bgz),) = _exchange(service.port, _get(extra="Accept-Encoding: gzip\r\n"))
    assert hgz["content-encoding"] == "gzip" and gzip.decompress(bgz) == body
    head = b"HEAD /feeds/f.atom HTTP/1.1\r\nHost: x\r\n\r\n"
    ((status, hh, bh),) = _exchange(service.port, head)
    assert status == b"HTTP/1.1 200 OK" and bh == b"" and hh["content-length"] == str(len(body))
    ((_, h10, b10),) = _exchange(service.port, _get(version="1.0"))
    assert h10["connection"] == "close" and b10 == body


def test_other_requests_go_to_aiohttp(service: Service) -> None:
    """Unknown feeds, other routes and other methods are answered by the full server."""
    ((s404, _, _),) = _exchange(service.port, _get("/feeds/nope.atom"))
    ((s_health, _, b_health),) = _exchange(service.port, _get("/healthz"))
    post = b"POST /feeds/f.atom HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
    ((s_post, _, _),) = _exchange(service.port, post)
    assert s404.split(b" ")[1] == b"404"
    assert s_health.split(b" ")[1] == b"200" and b'"status": "ok"' in b_health
    assert s_post.split(b" ")[1] == b"405"


def test_fast_path_then_hand_over_on_one_connection(service: Service) -> None:
    """A feed request, then /healthz on the same kept-alive connection: both answered."""
    replies = _exchange(service.port, _get() + _get("/healthz"), responses=2)
    assert [s.split(b" ")[1] for s, _, _ in replies] == [b"200", b"200"]
    assert replies[0][2].startswith(b"<?xml") and b"feeds" in replies[1][2]


def test_a_slow_reader_gets_every_byte_in_order(tmp_path: Path) -> None:
    """A reader with a tiny receive window pipelines ten GETs and a HEAD (5 MB of replies),
    then reads late: the socket takes part of a body, the rest is queued, later replies queue
    behind it, and nothing is lost, reordered or interleaved."""
    with Upstream() as upstream:
        upstream.script("/big.xml", feed(zaker_rss(range(400))))
        feeds = [{"name": "big", "url": upstream.url("/big.xml"), "interval": "60s"}]
        with Service(tmp_path, feeds) as svc:
            whole = svc.wait_served("big").body
            assert len(whole) > 400_000
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", svc.port))
            sent = (
                _get("/feeds/big.atom") * 10 + b"HEAD /feeds/big.atom HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            sock.sendall(sent)
            time.sleep(1.0)  # the server has written what it could and queued the rest
            replies, rest = read_responses(sock, sent, 11)
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(1)  # nothing follows the HEAD reply's headers
            sock.close()
    assert all(body == whole for _, _, body in replies[:10])
    status, headers, body = replies[10]
    assert status == b"HTTP/1.1 200 OK" and body == rest == b""
    assert headers["content-length"] == str(len(whole))


def test_a_repeated_request_sees_the_feed_change(tmp_path: Path) -> None:
    """The same request head on one kept-alive connection, before and after the upstream
    changed: the second answer is the new feed, not a remembered one."""
    with Upstream() as upstream:
        upstream.script("/c.xml", feed(zaker_rss(range(3))))
        feeds = [{"name": "c", "url": upstream.url("/c.xml"), "interval": "1s"}]
        with Service(tmp_path, feeds) as svc:
            svc.wait_served("c")
            sock = socket.create_connection(("127.0.0.1", svc.port), timeout=10)
            request = _get("/feeds/c.atom")
            sock.sendall(request)
            [(_, first, body)], rest = read_responses(sock, request, 1)
            upstream.script("/c.xml", feed(zaker_rss(range(4))))
            wait_for(lambda: svc.feed("c").header("ETag") != first["etag"], 10, "the new feed")
            sock.sendall(request)
            [(_, second, new_body)], _ = read_responses(sock, request, 1, rest)
            sock.close()
    assert first["etag"] != second["etag"]
    assert body.count(b"<entry") == 3 and new_body.count(b"<entry") == 4


# ---- heads that attackers and broken clients send: never a hang, never a wrong 200 --------


def _first_answer(port: int, data: bytes, within: float = 3.0) -> bytes:
    """The status line the service sends for ``data`` within ``within`` seconds (a hang is
    a failure, not a wait for the header timeout)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=within)
    try:
        sock.sendall(data)
        started, got = time.monotonic(), b""
        while b"\r\n" not in got:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                pytest.fail(f"no answer within {within:g} s to {data!r}")
            if not chunk:
                break
            got += chunk
        assert time.monotonic() - started < within
        return got.split(b"\r\n", 1)[0]
    finally:
        sock.close()


def _status(line: bytes) -> int:
    return int(line.split(b" ")[1])


@pytest.mark.parametrize(
    "head",
    [
        b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET /feeds/f.atom HTTP/1.1\r\n\r\n",
        b"GET /feeds/f.atom HTTP/1.1\r\nAccept: */*\r\n\r\n",
        b"HEAD /feeds/f.atom HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n",
    ],
    ids=["two-hosts", "no-host", "no-host-with-headers", "two-hosts-head"],
)
def test_a_bad_host_is_refused_with_400(service: Service, head: bytes) -> None:
    """RFC 9112 3.2: an HTTP/1.1 request with no Host, or with two, gets a 400, not the feed."""
    assert _status(_first_answer(service.port, head)) == 400


@pytest.mark.parametrize(
    "head",
    [
        b"GET /feeds/f.atom HTTP/1.1\nHost: x\n\n",
        b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\n\n",
        b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\n\r\n",
        b"GET /feeds/f.atom HTTP/1.1\rHost: x\r\r",
    ],
    ids=["bare-lf", "bare-lf-end", "bare-lf-then-crlf", "bare-cr"],
)
def test_bare_line_endings_are_answered_at_once(service: Service, head: bytes) -> None:
    """A head ending in bare LFs (or CRs) is answered, a 400, straight away: not left waiting
    for a CRLF CRLF that never comes until the header timeout (10 s here)."""
    assert _status(_first_answer(service.port, head)) == 400


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (
            b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0"
            b"\r\n\r\n",
            400,
        ),
        (b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", 400),
        (b"GET /feeds/f\x00.atom HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
        (b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
        (b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n", 400),
        (b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n", 400),
        (b"GET /feeds/%2e%2e.atom HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /feeds/%2e%2e%2f%2e%2e%2fetc%2fpasswd.atom HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (
            b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            200,
        ),
        (b"GET http://x/feeds/f.atom HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"GET /feeds/f.atom HTTP/1.0\r\n\r\n", 200),
    ],
    ids=[
        "two-content-lengths",
        "obs-fold",
        "nul-in-path",
        "nul-in-a-value",
        "control-in-a-value",
        "space-in-a-name",
        "paren-in-a-name",
        "dot-dot-name",
        "dot-dot-path",
        "chunked-get",
        "absolute-form",
        "http10-no-host",
    ],
)
def test_unusual_heads_get_aiohttps_answer(service: Service, head: bytes, status: int) -> None:
    """Heads the fast path does not answer itself are aiohttp's, which answers them at once:
    400 for the malformed, 404 for names that are no feed, 200 for what HTTP allows."""
    assert _status(_first_answer(service.port, head)) == status
    assert service.feed("f").status == 200  # and the service is none the worse


def test_a_refused_head_does_not_poison_the_next_connection(service: Service) -> None:
    """After a 400 for two Host headers, the same feed with one Host is served as usual."""
    bad = b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"
    assert _status(_first_answer(service.port, bad)) == 400
    ((status, _, body),) = _exchange(service.port, _get())
    assert status == b"HTTP/1.1 200 OK" and body.startswith(b"<?xml")


@pytest.mark.parametrize("level", ["info", "debug"])
def test_refused_heads_leave_only_json_in_the_log(tmp_path: Path, level: str) -> None:
    """aiohttp's 400s for malformed heads never put a traceback on stderr (``Service.stop``
    checks every line is JSON) nor an error in the log: one debug line each, when asked."""
    with Upstream() as upstream:
        upstream.script("/f.xml", feed(zaker_rss(range(2))))
        feeds = [{"name": "f", "url": upstream.url("/f.xml"), "interval": "60s"}]
        env = {"FEEDFIX_LOG_LEVEL": level}
        with Service(tmp_path, feeds, env=env) as svc:
            svc.wait_served("f")
            for head in (
                b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
                b"GET /feeds/f.atom HTTP/1.1\nHost: x\n\n",
                b"GET /feeds/f\x00.atom HTTP/1.1\r\nHost: x\r\n\r\n",
            ):
                assert _status(_first_answer(svc.port, head)) == 400
            svc.stop()
            refused = svc.events("bad request refused")
            assert not [r for r in svc.logs() if r["level"] == "error"]
    if level == "debug":
        assert [(r["level"], r["status"]) for r in refused] == [("debug", 400)] * 3
        assert "Host" in refused[0]["reason"]
    else:
        assert refused == []


def test_feed_replies_come_from_the_fast_path(service: Service) -> None:
    """By default a feed is answered by the fast path (no ``Server`` header: aiohttp sends
    one), other routes by aiohttp."""
    ((_, feed_headers, _),) = _exchange(service.port, _get())
    ((_, health_headers, _),) = _exchange(service.port, _get("/healthz"))
    assert "server" not in feed_headers
    assert "aiohttp" in health_headers["server"]


def test_fastpath_off_leaves_every_request_to_aiohttp(tmp_path: Path) -> None:
    """``FEEDFIX_FASTPATH=0`` (the benchmarks' switch): the same feed bytes, answered by
    aiohttp, said once in the log; the connection limits still hold (a silent connection is
    closed after header_timeout)."""
    with Upstream() as upstream:
        upstream.script("/f.xml", feed(zaker_rss(range(3))))
        feeds = [{"name": "f", "url": upstream.url("/f.xml"), "interval": "60s"}]
        server = {"header_timeout": "1s"}
        with Service(tmp_path, feeds, server=server, env={"FEEDFIX_FASTPATH": "0"}) as svc:
            body = svc.wait_served("f").body
            silent = socket.create_connection(("127.0.0.1", svc.port), timeout=5)
            ((status, headers, again),) = _exchange(svc.port, _get())
            etag = headers["etag"]
            ((status304, _, _),) = _exchange(svc.port, _get(extra=f"If-None-Match: {etag}\r\n"))
            started = time.monotonic()
            assert silent.recv(1) == b"", "a silent connection stays open without the fast path"
            waited = time.monotonic() - started
            silent.close()
            warned = svc.events("fast path off (FEEDFIX_FASTPATH=0): aiohttp answers every request")
            svc.stop()
    assert status == b"HTTP/1.1 200 OK" and again == body
    assert "aiohttp" in headers["server"]
    assert status304 == b"HTTP/1.1 304 Not Modified"
    assert waited < 3
    assert len(warned) == 1


def test_gzip_asked_in_capitals_is_sent(service: Service) -> None:
    """``Accept-Encoding: GZIP`` is gzip (content-codings are case-insensitive), on the fast
    path and on aiohttp's (where a request with a field given twice goes)."""
    ((_, fast, body),) = _exchange(service.port, _get(extra="Accept-Encoding: GZIP\r\n"))
    twice = "Accept-Encoding: GZIP\r\nX-A: 1\r\nX-A: 2\r\n"
    ((_, slow, _),) = _exchange(service.port, _get(extra=twice))
    assert fast["content-encoding"] == "gzip" and gzip.decompress(body).startswith(b"<?xml")
    assert slow["content-encoding"] == "gzip" and "aiohttp" in slow["server"]


def test_a_bad_head_after_a_good_one_on_one_connection(service: Service) -> None:
    """Pipelined: a feed request the fast path answers, then a bare-LF head: the 200 in full,
    then aiohttp's 400 at once, then the connection closes."""
    good = _get()
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=3)
    sock.sendall(good + b"GET /feeds/f.atom HTTP/1.1\nHost: x\n\n")
    [(status, _, body)], rest = read_responses(sock, good, 1)
    while b"\r\n" not in rest:
        chunk = sock.recv(4096)
        assert chunk, "closed without answering the second head"
        rest += chunk
    while sock.recv(4096):
        pass
    sock.close()
    assert status == b"HTTP/1.1 200 OK" and body.startswith(b"<?xml")
    assert rest.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400")), rest[:40]
