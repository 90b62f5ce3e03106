"""How fast the image proxy serves, against nginx serving the same file, and what it costs.

Starts nginx (``worker_processes 1``, sendfile, access log off) serving a 200 KB JPEG from a
temporary folder; nginx is also the origin. Starts ``feedfix serve`` twice, as a user starts
it with ``[images] proxy = "all"`` and ``allow_private = ["127.0.0.1"]``, each with its
store and cache in the same temporary folder: once with ``FEEDFIX_FASTPATH=0`` (every
request through aiohttp: the ``proxy_*`` figures) and once as configured (cached hits
answered by ``fastpath.py``: the ``fast_*`` figures, which the targets are for). Then:

1. wrk (``-t2 -c64``) against nginx 200, both services' 200 (cached) and 304
   (``If-None-Match``), and nginx 304, one after the other, ``--repeat`` rounds: each ratio
   is the median of the rounds' ratios, since the machine and its background load are the
   same within a round.
2. Cold fetch: median time of a GET through the proxy for an image it has not cached (a new
   query string each time, which nginx ignores), minus the median of the same GET straight
   from nginx; each over fresh connections, loopback.
3. Memory: the proxy's RSS before and after it caches ``--images`` (10,000) small images,
   and after serving all of them once more from the cache.

Targets (reported, not enforced): targets.py's 200 and 304 against nginx's 200 and the
milliseconds a cold fetch adds; RSS growth small and not proportional to the number of images.

Usage: ``bench_images.py [--duration 10] [--repeat 3] [--connections 64] [--images 10000]
[--samples 200] [--json]``.
Needs ``wrk``, ``nginx`` (Debian ``wrk``, ``nginx-light``) and Pillow.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from feedfix.core.imagesign import proxied

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serve as bs  # its wrk runner and nginx, so both measure alike
import targets

KEY = b"bench-key-for-the-image-proxy-0123456789"  # [images] key wants 32 characters
SERVICE_CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}
base_url = "http://127.0.0.1:{port}"
[storage]
path = "{folder}/feedfix.db"
[images]
proxy = "all"
key = "{key}"
allow_private = ["127.0.0.1"]
[[feeds]]  # serve needs one; the bundled example, read once
name = "example"
path = "feedfix:examples/zaker-channel.rss.xml"
interval = "1h"
"""


def progress(text: str) -> None:
    """A line on stderr, so that --json output stays clean."""
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def jpeg(target: int) -> bytes:
    """A real JPEG of about ``target`` bytes (noise compresses badly, so size ~ pixels)."""
    side = 64
    while True:
        pixels = os.urandom(side * side * 3)
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), pixels).save(out, format="JPEG", quality=90)
        if out.tell() >= target:
            return out.getvalue()
        side = int(side * 1.1) + 1


def wait_port(port: int, seconds: float = 15.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def wrk(url: str, args: argparse.Namespace, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run wrk (``bench_serve``'s runner, ``-t2``); requests/s, p50/p99 and any errors."""
    run = bs.run_wrk(url, url, argparse.Namespace(threads=2, **vars(args)), list(headers))
    return {"rps": run.rps, "p50": f"{run.p50_ms:.2f}ms", "p99": f"{run.p99_ms:.2f}ms",
            "errors": run.errors}  # fmt: skip


def head(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET over a fresh connection (urllib: no pooling, like a cold reader)."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def signed(base: str, url: str) -> str:
    """The proxy URL for ``url``."""
    return proxied(base, KEY, url)


def cold_fetch(proxy: str, origin: str, samples: int) -> dict[str, float]:
    """Median ms of a direct origin GET and of a proxied cold GET, and the difference."""
    direct, proxied_ms = [], []
    for i in range(samples):
        started = time.perf_counter()
        status, _, _ = head(f"{origin}/photo.jpg?direct={i}")
        direct.append((time.perf_counter() - started) * 1000)
        assert status == 200
        url = signed(proxy, f"{origin}/photo.jpg?cold={i}")
        started = time.perf_counter()
        status, _, _ = head(url)
        proxied_ms.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    origin_ms, proxy_ms = statistics.median(direct), statistics.median(proxied_ms)
    p90 = statistics.quantiles(proxied_ms, n=10)[-1] if samples >= 10 else float("nan")
    return {"origin_ms": origin_ms, "proxy_ms": proxy_ms, "added_ms": proxy_ms - origin_ms,
            "proxy_p90_ms": p90}  # fmt: skip


async def fill(proxy: str, origin: str, count: int, first: int = 0, concurrency: int = 32) -> int:
    """Request ``count`` distinct small images through the proxy; how many were 200."""
    ok = 0
    queue = iter(range(first, first + count))

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        for i in queue:
            async with session.get(signed(proxy, f"{origin}/small.jpg?n={i}")) as response:
                await response.read()
                ok += response.status == 200

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return ok


def service(folder: Path, port: int, fastpath: str) -> subprocess.Popen[bytes]:
    """``feedfix serve`` with the proxy on, in ``folder``, on ``port``."""
    folder.mkdir()
    config = folder / "feedfix.toml"
    text = SERVICE_CONFIG.format(port=port, folder=folder, key=KEY.decode())
    config.write_text(text, "utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "feedfix", "serve", "--config", str(config)],
        env={**os.environ, "FEEDFIX_FASTPATH": fastpath, "FEEDFIX_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=(folder / "log").open("wb"),
    )


def memory(base: str, origin: str, pid: int, images: int) -> dict[str, Any]:
    """The proxy's RSS before, half-way and after caching ``images`` images, and after
    serving them all once more from the cache."""
    results: dict[str, Any] = {"rss_before_fill_mb": rss_mb(pid)}
    progress(f"caching {images} images")
    started = time.monotonic()
    half = images // 2
    results["filled"] = asyncio.run(fill(base, origin, half))
    results["rss_half_fill_mb"] = rss_mb(pid)
    results["filled"] += asyncio.run(fill(base, origin, images - half, first=half))
    results["fill_seconds"] = time.monotonic() - started
    results["rss_after_fill_mb"] = rss_mb(pid)
    asyncio.run(fill(base, origin, images))  # all hits now
    results["rss_after_hits_mb"] = rss_mb(pid)
    return results


def median_ratios(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, float]:
    """Each target's rate over nginx's 200 rate in the same round, median over rounds."""
    over = {"ratio_200": "proxy_200", "ratio_304": "proxy_304"}
    over |= {"fast_ratio_200": "fast_200", "fast_ratio_304": "fast_304"}
    return {
        name: statistics.median(r[target]["rps"] / r["nginx_200"]["rps"] for r in rounds)
        for name, target in over.items()
    }


def start_proxies(tmp: Path, proxy_port: int, fast_port: int) -> tuple[
    subprocess.Popen[bytes], subprocess.Popen[bytes], Path
]:  # fmt: skip
    """``feedfix serve`` twice: every request through aiohttp, and as configured (cached
    hits answered by the fast path); and the first one's cache folder."""
    return (
        service(tmp / "aiohttp", proxy_port, "0"),
        service(tmp / "fast", fast_port, "1"),
        tmp / "aiohttp" / "feedfix-images",
    )


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start nginx and the proxy in ``tmp``, run the three measurements, stop both."""
    tmp.chmod(0o755)  # nginx's workers may run as another user
    (tmp / "www").mkdir(mode=0o755)
    photo = jpeg(200_000)
    (tmp / "www" / "photo.jpg").write_bytes(photo)
    (tmp / "www" / "small.jpg").write_bytes(jpeg(2_000))
    nginx_port, proxy_port, fast_port = free_port(), free_port(), free_port()
    nginx = bs.start_nginx(tmp, nginx_port, "1", {}, default="image/jpeg")  # as bench_serve's nginx
    proxy, fast_proxy, cache = start_proxies(tmp, proxy_port, fast_port)
    results: dict[str, Any] = {"image_bytes": len(photo)}
    try:
        wait_port(nginx_port)
        wait_port(proxy_port)
        wait_port(fast_port)
        origin, base = f"http://127.0.0.1:{nginx_port}", f"http://127.0.0.1:{proxy_port}"
        results["rss_start_mb"] = rss_mb(proxy.pid)
        url = signed(base, f"{origin}/photo.jpg")
        status, headers, body = head(url)
        assert status == 200 and body == photo, (status, body[:200])
        etag, nginx_etag = headers["ETag"], head(f"{origin}/photo.jpg")[1]["ETag"]
        assert head(url, {"If-None-Match": etag})[0] == 304
        fast = url.replace(base, f"http://127.0.0.1:{fast_port}")
        for _ in range(100):  # the fast path answers once the image is on disk
            if head(fast)[0] == 200:
                break
            time.sleep(0.05)
        assert head(fast)[2] == photo
        targets = {
            "nginx_200": (f"{origin}/photo.jpg", ()),
            "proxy_200": (url, ()),
            "proxy_304": (url, (f"If-None-Match: {etag}",)),
            "nginx_304": (f"{origin}/photo.jpg", (f"If-None-Match: {nginx_etag}",)),
            "fast_200": (fast, ()),
            "fast_304": (fast, (f"If-None-Match: {etag}",)),
        }
        rounds: list[dict[str, dict[str, Any]]] = []
        for i in range(args.repeat):
            progress(f"round {i + 1}/{args.repeat}: wrk {args.duration}s x{len(targets)}")
            rounds.append({name: wrk(u, args, h) for name, (u, h) in targets.items()})
        results["wrk"] = rounds
        results |= median_ratios(rounds)
        progress(f"cold fetch, {args.samples} samples")
        results["cold"] = cold_fetch(base, origin, args.samples)
        results |= memory(base, origin, proxy.pid, args.images)
        results["cache_files"] = sum(1 for p in cache.rglob("*") if p.is_file())
    finally:
        fast_proxy.terminate()
        fast_proxy.wait(10)
        proxy.terminate()
        nginx.terminate()
        proxy.wait(10)
        nginx.wait(10)
    return results


def report(results: dict[str, Any]) -> None:
    """The figures, one line each, beside their targets."""
    for i, runs in enumerate(results["wrk"], 1):
        print(f"round {i}: " + ", ".join(f"{k} {v['rps']:.0f}/s" for k, v in runs.items()))
    print(
        f"200: feedfix serve / nginx = {results['fast_ratio_200']:.2f} "
        f"(target >= {targets.IMAGES_200:g})"
    )
    print(
        f"304: feedfix serve 304 / nginx 200 = {results['fast_ratio_304']:.2f} "
        f"(target >= {targets.IMAGES_304:g})"
    )
    print(
        f"aiohttp alone (FEEDFIX_FASTPATH=0): 200 {results['ratio_200']:.2f}x, "
        f"304 {results['ratio_304']:.2f}x nginx 200"
    )
    cold = results["cold"]
    print(
        f"cold fetch: origin {cold['origin_ms']:.2f} ms, proxy {cold['proxy_ms']:.2f} ms, "
        f"added {cold['added_ms']:.2f} ms (target < {targets.IMAGES_COLD_MS:g}); "
        f"proxy p90 {cold['proxy_p90_ms']:.2f} ms"
    )
    print(
        f"RSS: start {results['rss_start_mb']:.1f} MB, before fill "
        f"{results['rss_before_fill_mb']:.1f} MB, half-way {results['rss_half_fill_mb']:.1f} MB, "
        f"after {results['filled']} images "
        f"{results['rss_after_fill_mb']:.1f} MB ({results['fill_seconds']:.0f} s), after "
        f"serving them again {results['rss_after_hits_mb']:.1f} MB; "
        f"{results['cache_files']} files on disk"
    )


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="wrk rounds; ratios are medians")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-images-"))
    try:
        results = measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)


if __name__ == "__main__":
    main()
