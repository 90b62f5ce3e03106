"""What the security suite shares: children measured by the kernel, hostile documents, and
small loopback servers on addresses of 127.0.0.0/8 other than 127.0.0.1.

Everything here talks to feedfix as a user does (``python -m feedfix …`` as a child, HTTP on
127.0.0.1), so the suite survives the package being rearranged. ``run_feedfix`` reads the
child's CPU time and peak RSS from ``os.wait4`` (CPU time, not wall time: the machine is
shared, and another engineer's build must not make a linear stage look quadratic).
``Scaling`` is one stage measured at n and 8n in one run; the assertion is on the ratio.
Every child and every socket has a deadline: a test that meets today's hang fails, it does
not hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from image_origin import ImageOrigin
from service_helpers import REPO, Service, render_config

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"

# ---- children measured by the kernel --------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    """One finished (or killed) ``python -m feedfix`` child."""

    args: tuple[str, ...]
    returncode: int | None  # None: killed at its deadline
    stdout: bytes
    stderr: bytes
    cpu: float  # user + system seconds, from the kernel
    wall: float
    peak_rss: int  # bytes (ru_maxrss)

    @property
    def timed_out(self) -> bool:
        """Killed at the deadline (today's hang)."""
        return self.returncode is None

    @property
    def err(self) -> str:
        """Standard error as text."""
        return self.stderr.decode("utf-8", "replace")

    @property
    def out(self) -> str:
        """Standard output as text."""
        return self.stdout.decode("utf-8", "replace")


def run_feedfix(
    args: Sequence[str],
    *,
    timeout: float = 60.0,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ChildRun:
    """``python -m feedfix ARGS`` with a deadline; CPU time and peak RSS from ``wait4``.

    Output goes to files (no pipe can fill up and stall the child); a child still running
    at the deadline is killed and reported with ``returncode`` None.
    """
    with tempfile.TemporaryDirectory(prefix="feedfix-sec-") as scratch:
        folder = Path(scratch)
        (folder / "in").write_bytes(stdin or b"")
        started = time.monotonic()
        with (
            (folder / "in").open("rb") as given,
            (folder / "out").open("wb") as out,
            (folder / "err").open("wb") as err,
        ):
            proc = subprocess.Popen(
                [sys.executable, "-m", "feedfix", *args],
                stdin=given if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd or REPO,
                env={**os.environ, **(env or {})},
            )
            returncode: int | None = None
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() - started > timeout:
                    proc.kill()
                    _, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.01)
            proc.returncode = -9 if returncode is None else returncode  # reaped here
        wall = time.monotonic() - started
        return ChildRun(
            args=tuple(args),
            returncode=returncode,
            stdout=(folder / "out").read_bytes(),
            stderr=(folder / "err").read_bytes(),
            cpu=usage.ru_utime + usage.ru_stime,
            wall=wall,
            peak_rss=usage.ru_maxrss * 1024,
        )


# ---- scaling: one stage at n and 8n --------------------------------------------------------

FLOOR = 0.05  # seconds: a run cheaper than this counts as this much (noise, not work)
MAX_RATIO = 10.0  # 8x the input may cost at most ~8x the time (10: room for noise)


@dataclass(frozen=True)
class Scaling:
    """A stage's cost at n and at 8n, with the cost of a trivial input taken off both."""

    stage: str
    n: int
    small: float
    large: float
    timed_out: bool = False
    unit: str = "s"

    @property
    def ratio(self) -> float:
        """How much more 8n cost than n (the small run floored at ``FLOOR``)."""
        return self.large / max(self.small, FLOOR)

    def __str__(self) -> str:
        large = f">{self.large:.2f}" if self.timed_out else f"{self.large:.2f}"
        return (
            f"{self.stage}: n={self.n}: {self.small:.3f} {self.unit}, 8n: {large} {self.unit}, "
            f"ratio {'>' if self.timed_out else ''}{self.ratio:.1f}"
        )


def measure_scaling(
    stage: str, n: int, cost: Callable[[int], tuple[float, bool]], baseline: float
) -> Scaling:
    """``cost(size)`` gives (seconds, timed out) for an input of that size; n then 8n."""
    small, small_out = cost(n)
    if small_out:
        return Scaling(stage, n, small - baseline, small - baseline, timed_out=True)
    large, large_out = cost(8 * n)
    return Scaling(stage, n, max(small - baseline, 0.0), max(large - baseline, 0.0), large_out)


def assert_linear(scaling: Scaling) -> None:
    """The stage finished at 8n, and its cost grew at most ~8x."""
    assert not scaling.timed_out, f"did not finish: {scaling}"
    assert scaling.ratio <= MAX_RATIO, f"grows faster than linear: {scaling}"


def convert_cost(
    document: Callable[[int], bytes],
    args: Sequence[str] = (),
    timeout: float = 30.0,
    exits: Sequence[int] = (0,),
) -> Callable[[int], tuple[float, bool]]:
    """A ``cost`` function: CPU seconds of ``feedfix convert`` over ``document(size)``
    (which must exit with one of ``exits``: a run that failed early measured nothing)."""

    def cost(size: int) -> tuple[float, bool]:
        with tempfile.TemporaryDirectory(prefix="feedfix-sec-") as scratch:
            path = Path(scratch) / "input.xml"
            path.write_bytes(document(size))
            run = run_feedfix(["convert", str(path), "-o", os.devnull, *args], timeout=timeout)
        assert run.timed_out or run.returncode in exits, run.err[-500:]
        return run.cpu, run.timed_out

    return cost


# ---- hostile documents -----------------------------------------------------------------------


def rss_item(
    html: str = "<p>x</p>",
    *,
    n: int = 1,
    title: str | None = None,
    link: str | None = "http://example.com/a/{n}",
    extra: str = "",
) -> str:
    """One RSS ``<item>`` whose description is ``html`` (escaped, as RSS carries it)."""
    link = link.format(n=n) if link is not None else None
    return (
        f"<item><title>{escape(title if title is not None else f'item {n}')}</title>"
        + (f"<link>{escape(link)}</link><guid>{escape(link)}</guid>" if link else "")
        + f"<pubDate>Tue, 01 Dec 2026 0{n % 10}:00:00 GMT</pubDate>"
        + f"<description>{escape(html)}</description>{extra}</item>"
    )


def rss(
    *items: str,
    channel_link: str | None = "http://example.com/",
    channel_extra: str = "",
    title: str = "hostile",
) -> bytes:
    """An RSS 2.0 document around ``items`` (with the Media RSS namespace declared)."""
    link = f"<link>{escape(channel_link)}</link>" if channel_link is not None else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        f"<title>{escape(title)}</title>{link}<description>d</description>{channel_extra}"
        + "".join(items)
        + "</channel></rss>\n"
    ).encode()


def one_entry(html: str, **item: Any) -> bytes:
    """An RSS feed of a single entry whose content is ``html``."""
    return rss(rss_item(html, **item))


def atom_root(data: bytes | str) -> etree._Element:
    """A published Atom document, parsed (entities never resolved)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    raw = data.encode() if isinstance(data, str) else data
    return etree.fromstring(raw, parser)


# ---- loopback HTTP on any 127.0.0.0/8 address ------------------------------------------------


@dataclass
class Canned:
    """One scripted answer of a ``LoopbackSite``."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackSite:
    """A tiny threaded HTTP server on ``host`` (127.0.0.2, …): scripted answers by path,
    every request path counted. Lets a test have an 'allowed origin' or a 'configured
    upstream' on a loopback address other than 127.0.0.1, which stays the internal target."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        assert host.startswith("127."), "loopback only"
        self.host = host
        self.routes: dict[str, Canned] = {}
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with site._lock:
                    site.hits[path] = site.hits.get(path, 0) + 1
                    canned = site.routes.get(path, Canned(404, b"no such path\n"))
                # Written by hand: header values go out as UTF-8 bytes, as an attacker's
                # server sends a Location with a Unicode host (http.server insists on Latin-1).
                lines = [f"HTTP/1.1 {canned.status} X", "Connection: close"]
                lines += [f"{name}: {value}" for name, value in canned.headers.items()]
                lines.append(f"Content-Length: {len(canned.body)}")
                head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
                self.wfile.write(head + canned.body)
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        """An absolute URL of this site."""
        return f"http://{self.host}:{self.port}{path}"

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        """``path`` answers a redirect to ``to``."""
        self.routes[path] = Canned(status, b"", {"Location": to})

    def __enter__(self) -> LoopbackSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@contextlib.contextmanager
def image_origin() -> Iterator[ImageOrigin]:
    """``tests/image_origin.py``'s origin on 127.0.0.1, in a thread with its own loop."""
    loop = asyncio.new_event_loop()
    origin = ImageOrigin()
    thread = threading.Thread(target=loop.run_forever, name="image-origin", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(origin.start(), loop).result(10)
    try:
        yield origin
    finally:
        asyncio.run_coroutine_threadsafe(origin.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def closed_port() -> int:
    """A port of 127.0.0.1 nobody listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- the service ------------------------------------------------------------------------------


class ImagesService(Service):
    """A ``Service`` whose config also has ``[images]`` (and ``[images.hosts]`` if given);
    ``base_url`` is the service's own address."""

    def __init__(
        self,
        tmp: Path,
        feeds: Sequence[Mapping[str, Any]],
        images: Mapping[str, Any],
        hosts: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(tmp, feeds, **kwargs)
        self.images = dict(images)
        self.hosts = dict(hosts or {})

    def config_text(self) -> str:
        """The base config with the image sections before the feeds."""
        self.server["base_url"] = self.base_url
        text = super().config_text()
        sections: dict[str, Mapping[str, Any]] = {"images": self.images}
        if self.hosts:
            sections["images.hosts"] = self.hosts
        return text.replace("[[feeds]]", render_config(sections, []) + "\n[[feeds]]", 1)


def proxied_urls(atom: bytes) -> list[str]:
    """Every ``/img/`` URL in a published Atom feed (content, links, media), in order."""
    text = atom.decode("utf-8", "replace").replace("&amp;", "&")
    return re.findall(r"https?://127\.0\.0\.1:\d+(/img/[A-Za-z0-9._/-]+)", text)


def csrf_token(service: Service, headers: Mapping[str, str] | None = None) -> str:
    """The playground form's token."""
    page = service.get("/inspect", headers).text()
    marker = 'name="csrf" value="'
    assert marker in page, page[:500]
    return page.split(marker, 1)[1].split('"', 1)[0]


def post_form(
    service: Service,
    path: str,
    fields: Mapping[str, str],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[int, str, float]:
    """A same-origin form POST: status, body text, seconds it took."""
    body = urllib.parse.urlencode(fields)
    sent = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": service.base_url,
        "Sec-Fetch-Site": "same-origin",
        **(headers or {}),
    }
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request("POST", path, body=body, headers=sent)
        answer = conn.getresponse()
        text = answer.read().decode("utf-8", "replace")
        return answer.status, text, time.monotonic() - started
    finally:
        conn.close()


def timed_get(
    service: Service, path: str, headers: Mapping[str, str] | None = None, timeout: float = 60
) -> tuple[int, float]:
    """Status and seconds of one GET."""
    started = time.monotonic()
    status = service.get(path, headers, timeout=timeout).status
    return status, time.monotonic() - started


class LatencyProbe:
    """A thread that GETs ``path`` every 50 ms and keeps the slowest answer's time: how long
    the service stopped serving while something else ran."""

    def __init__(self, service: Service, path: str = "/healthz") -> None:
        self.service = service
        self.path = path
        self.worst = 0.0
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.service.get(self.path, timeout=5)  # a timeout counts as its 5 s
                self.answers += 1
            except OSError:
                pass
            self.worst = max(self.worst, time.monotonic() - started)
            self._stop.wait(0.05)

    def __enter__(self) -> LatencyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)


# ---- raw sockets -------------------------------------------------------------------------------


def connect(port: int, source: str | None = None, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:port (from ``source``, another loopback address, if given)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if source is not None:
        assert source.startswith("127."), "loopback only"
        sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection within ``within`` seconds (bytes it sends
    meanwhile are read and dropped)."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


def read_response(
    sock: socket.socket, timeout: float = 10.0, *, body: bool = True
) -> tuple[int, bytes, bytes]:
    """One HTTP/1.1 response from a raw socket: status, head, body (by Content-Length;
    ``body=False`` for the answer to a HEAD, which has none)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full head: {data[:200]!r}")
        data += chunk
    head, _, got = data.partition(b"\r\n\r\n")
    match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    length = int(match.group(1)) if match and body else 0
    while len(got) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return int(head.split(b" ", 2)[1]), head, got


def log_tracebacks(service: Service) -> list[str]:
    """Log lines that carry a traceback or an error-level record."""
    return [
        line
        for line in service.log_text().splitlines()
        if "Traceback" in line or '"level": "error"' in line or '"level": "critical"' in line
    ]
