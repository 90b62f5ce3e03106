"""What a Python server can do on this machine, for comparison with ``bench_serve.py``.

Serves the same ~210 KB of precomputed bytes (a 200, no gzip) and a 304 three ways, one process
each, and runs ``wrk -t2 -c64 --latency`` against each, with nginx (one worker, sendfile)
measured before and after as the baseline:

- ``aiohttp``: a minimal aiohttp application, one route, a handler that returns a prebuilt
  ``web.Response`` (what feedfix's server costs at the least, with no poller and no metrics);
- ``raw``: a bare ``asyncio.Protocol`` that finds the end of each request head and writes
  precomputed response bytes (headers, then body), keep-alive and pipelining included but no
  other HTTP: the floor of Python's event loop on this machine, not a usable server;
- ``--uvloop``: the same two on uvloop, when it can be imported.

Usage: ``bench_serve_ceiling.py [--duration 8] [--uvloop]``. No feedfix process is involved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_serve as bs  # noqa: E402
import serve_upstream as su  # noqa: E402
from make_feed import make_feed  # noqa: E402

ETAG = '"0123456789abcdef0123456789abcdef"'
CONTENT_TYPE = "application/atom+xml; charset=utf-8"
HEADERS = {
    "Content-Type": CONTENT_TYPE,
    "ETag": ETAG,
    "Cache-Control": "public, max-age=2",
    "Vary": "Accept-Encoding",
    "Last-Modified": "Sun, 29 Nov 2026 18:00:00 GMT",
}


def body() -> bytes:
    """~210 KB, the size of feedfix's 50-entry output in bench_serve."""
    return make_feed(43)


class RawProtocol(asyncio.Protocol):
    """Precomputed answers: a 304 when the request names the ETag, else the 200."""

    head200 = b""
    body200 = b""
    resp304 = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.pending + data
        marker = b"if-none-match: " + ETAG.encode()
        for _ in range(1000):
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buffer = buffer[:end].lower(), buffer[end + 4 :]
            if marker in head:
                self.transport.write(self.resp304)
            else:
                self.transport.write(self.head200)
                self.transport.write(self.body200)
        self.pending = buffer


async def serve(kind: str, port: int, lifetime: float) -> None:
    data = body()
    if kind == "raw":
        lines = [f"{k}: {v}" for k, v in HEADERS.items()] + [f"Content-Length: {len(data)}"]
        RawProtocol.head200 = ("HTTP/1.1 200 OK\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()
        RawProtocol.body200 = data
        not_modified = [f"{k}: {v}" for k, v in HEADERS.items() if k != "Content-Type"]
        RawProtocol.resp304 = (
            "HTTP/1.1 304 Not Modified\r\n" + "\r\n".join(not_modified) + "\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(RawProtocol, "127.0.0.1", port, backlog=1024)
        cleanup: Any = server.close
    else:
        from aiohttp import web  # noqa: PLC0415

        h304 = {k: v for k, v in HEADERS.items() if k != "Content-Type"}

        async def feed(request: web.Request) -> web.Response:
            if request.headers.get("If-None-Match") == ETAG:
                return web.Response(status=304, headers=h304)
            return web.Response(body=data, headers=HEADERS)

        app = web.Application()
        app.router.add_get("/feeds/{name}.atom", feed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        cleanup = runner.cleanup
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=lifetime)
    result = cleanup()
    if asyncio.iscoroutine(result):
        await result


def child(kind: str, port: int, lifetime: float) -> int:
    if kind.endswith("-uvloop"):
        import uvloop  # noqa: PLC0415

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve(kind.removesuffix("-uvloop"), port, lifetime))
    return 0


def have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--uvloop", action="store_true", help="also run both on uvloop")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], int(args.child[1]), 600.0)
    args.threads, args.connections = 2, 64
    kinds = ["aiohttp", "raw"]
    if args.uvloop:
        if not have_uvloop():
            parser.error("--uvloop: uvloop cannot be imported")
        kinds += ["aiohttp-uvloop", "raw-uvloop"]
    su.exit_on_sigterm()
    data = body()
    rows: list[tuple[str, bs.WrkResult]] = []
    with tempfile.TemporaryDirectory(prefix="bench_ceiling-") as tmp:
        nginx, nginx_urls, _ = bs.serve_static(Path(tmp), {"atom": (data, CONTENT_TYPE)}, "1")
        nginx_url = nginx_urls["atom"]
        try:
            rows.append(("nginx 200", bs.run_wrk(nginx_url, "nginx 200", args, [])))
            for kind in kinds:
                port = su.free_port()
                command = [sys.executable, __file__, "--child", kind, str(port)]
                proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                try:
                    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
                    url = f"http://127.0.0.1:{port}/feeds/f0.atom"
                    print(f"wrk {kind} ...", file=sys.stderr, flush=True)
                    rows.append((f"{kind} 200", bs.run_wrk(url, kind, args, [])))
                    rows.append(
                        (f"{kind} 304", bs.run_wrk(url, kind, args, [f"If-None-Match: {ETAG}"]))
                    )
                finally:
                    su.stop_process(proc)
            rows.append(("nginx 200", bs.run_wrk(nginx_url, "nginx 200", args, [])))
        finally:
            su.stop_process(nginx, signal.SIGQUIT)
    base = statistics.mean(r.rps for name, r in rows if name == "nginx 200")
    print(
        f"\n{len(data):,}-byte body; wrk -t2 -c64 -d{args.duration}s; nginx 200 baseline = "
        f"mean of the first and last nginx runs = {base:.0f} req/s"
    )
    print(f"{'server':<20} {'req/s':>9} {'p99 ms':>8} {'x nginx 200':>12}")
    for name, r in rows:
        print(f"{name:<20} {r.rps:>9.0f} {r.p99_ms:>8.2f} {r.rps / base:>12.2f}  {r.errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
