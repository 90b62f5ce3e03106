"""The service's own HTTP limits: slow clients, too many connections, oversized requests.

Real sockets against the service started as a user starts it.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from service_helpers import Service
from upstream import Upstream, feed, zaker_rss


def _service(tmp_path: Path, upstream: Upstream, **server: object) -> Service:
    upstream.script("/f.xml", feed(zaker_rss(range(3))))
    return Service(
        tmp_path, [{"name": "f", "url": upstream.url("/f.xml"), "interval": "60s"}], server=server
    )


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True if the server closes the connection within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slowloris_clients_are_cut_off_and_do_not_starve_others(tmp_path: Path) -> None:
    """Clients that dribble their headers are closed after header_timeout; others get served."""
    with Upstream() as upstream, _service(tmp_path, upstream, header_timeout="2s") as service:
        service.start()
        service.wait_served("f")
        slow = [_connect(service.port) for _ in range(50)]
        for sock in slow:
            sock.sendall(b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        response = service.feed("f")
        assert response.status == 200
        assert time.monotonic() - started < 2
        time.sleep(1)
        for sock in slow:
            sock.sendall(b"X-Slow: 1\r\n")  # still not finished
        assert all(_closed_by_peer(sock, within=4) for sock in slow)
        for sock in slow:
            sock.close()


def test_idle_connections_are_closed_after_keepalive_timeout(tmp_path: Path) -> None:
    """A kept-alive connection left idle is closed after keepalive_timeout, one that keeps
    asking stays open, and one that never sends a byte is closed after header_timeout.

    The margins are wide (a request every quarter second against a 4 s timeout) because on
    a loaded machine this test's own sleeps can overshoot by a second or more."""
    with (
        Upstream() as upstream,
        _service(tmp_path, upstream, keepalive_timeout="4s", header_timeout="5s") as service,
    ):
        service.start()
        service.wait_served("f")
        silent = _connect(service.port)
        idle, busy = _connect(service.port), _connect(service.port)
        request = b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\n\r\n"
        for sock in (idle, busy):
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        assert not _closed_by_peer(idle, within=1.0), "closed before keepalive_timeout"
        for _ in range(12):  # 3 s of requests every quarter second: never idle for 4 s
            time.sleep(0.25)
            busy.sendall(request)
            reply = b""
            while b"</feed>" not in reply:
                chunk = busy.recv(65536)
                assert chunk, "a busy connection was closed"
                reply += chunk
        assert _closed_by_peer(idle, within=3.0), "idle for 4 s: should be closed by now"
        assert _closed_by_peer(silent, within=3.0), "no request after header_timeout"
        for sock in (silent, idle, busy):
            sock.close()


def test_connections_over_the_cap_are_closed_at_once(tmp_path: Path) -> None:
    """With max_connections = 5, a sixth open connection is closed straight away."""
    with Upstream() as upstream, _service(tmp_path, upstream, max_connections=5) as service:
        service.start()
        service.wait_served("f")
        held = [_connect(service.port) for _ in range(5)]
        time.sleep(0.3)
        extra = _connect(service.port)
        assert _closed_by_peer(extra, within=2)
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert service.feed("f").status == 200  # capacity comes back as connections close


def test_oversized_request_line_and_headers_are_refused(tmp_path: Path) -> None:
    """A request line or header over the limits gets a 4xx, never a crash or a hang."""
    with Upstream() as upstream, _service(tmp_path, upstream) as service:
        service.start()
        service.wait_served("f")
        for request in (
            b"GET /feeds/" + b"a" * 10_000 + b".atom HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
            b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
            + b"\r\n",
        ):
            sock = _connect(service.port)
            sock.sendall(request)
            status_line = sock.recv(1024).split(b"\r\n", 1)[0]
            sock.close()
            assert status_line.split(b" ")[1].startswith(b"4"), status_line
        assert service.feed("f").status == 200


def test_nothing_in_a_request_is_ever_fetched(tmp_path: Path) -> None:
    """URLs in paths, queries and headers never make feedfix fetch anything (no open proxy)."""
    with Upstream() as upstream, _service(tmp_path, upstream) as service:
        service.start()
        service.wait_served("f")
        upstream.script("/secret", feed(zaker_rss(range(1))))
        target = upstream.url("/secret")
        attempts = [
            f"/feeds/{target}.atom",
            f"/feeds/f.atom?url={target}",
            f"/?url={target}",
            f"/feeds/..%2F..%2Fsecret.atom?feed={target}",
            "/feeds/%2e%2e/%2e%2e/etc/passwd",
        ]
        statuses = [service.get(path).status for path in attempts]
        headers = {"X-Forwarded-Host": target, "Referer": target, "Host": "127.0.0.1"}
        statuses.append(service.get("/feeds/f.atom", headers=headers).status)
        time.sleep(0.5)
        assert upstream.requests_for("/secret") == []
        assert all(status in {200, 404} for status in statuses), statuses


def test_an_endless_head_is_refused_at_once(tmp_path: Path) -> None:
    """A head past the fast path's 16 KiB with no end in sight (many small fields, no blank
    line) is aiohttp's at once, which refuses it with a 4xx: not held until header_timeout
    (30 s here)."""
    with (
        Upstream() as upstream,
        _service(tmp_path, upstream, header_timeout="30s") as service,
    ):
        service.start()
        service.wait_served("f")
        sock = _connect(service.port)
        sock.sendall(b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        sock.sendall(b"".join(b"X-%05d: %s\r\n" % (i, b"v" * 40) for i in range(400)))
        status_line = sock.recv(1024).split(b"\r\n", 1)[0]
        sock.close()
        assert status_line.split(b" ")[1].startswith(b"4"), status_line
        assert time.monotonic() - started < 5
        assert service.feed("f").status == 200


def test_a_dribbled_bare_lf_head_is_answered_at_its_first_lf(tmp_path: Path) -> None:
    """A client that sends a bare-LF head a few bytes at a time gets its 400 as soon as the
    first bare LF arrives, long before header_timeout (30 s here)."""
    with (
        Upstream() as upstream,
        _service(tmp_path, upstream, header_timeout="30s") as service,
    ):
        service.start()
        service.wait_served("f")
        sock = _connect(service.port)
        started = time.monotonic()
        for piece in (b"GET /feeds/", b"f.atom HTTP/1.1", b"\n", b"Host: x"):
            sock.sendall(piece)
            time.sleep(0.2)
        status_line = sock.recv(1024).split(b"\r\n", 1)[0]
        sock.close()
        assert status_line.split(b" ")[1] == b"400", status_line
        assert time.monotonic() - started < 5
