"""`feedfix fix-posts --write --save-images` over a generated blog whose images are slow.

Usage::

    .venv/bin/python benchmarks/bench_fix_posts_images.py [--posts 10000] [--delay 0.02]
        [--per-host 4] [--json] [--keep DIR]

Generates bench_fix_posts.py's tree of ZAKER-shaped Hexo posts (8 lazy, wrapped images each,
a wrapped ``headimg``/``thumbnail``), with every image on one loopback origin (an aiohttp
server in a thread of this process) that answers each image after ``--delay`` seconds, with
distinct bytes per URL. Then runs, each a process of its own:

- ``save``: ``feedfix fix-posts TREE --write --save-images DIR --images-url /images/remote``,
  its resident memory (the main process, and with its mending workers) sampled every 0.25 s;
- ``rerun``: the same command again, which must fetch nothing and change nothing.

Reports posts/s and images/s against the floor, the least time any tool could take with
``--per-host`` requests at once to that origin: images × delay / per_host; and against what a
bare aiohttp client (a process of its own, ``--per-host`` loops of GETs, nothing stored)
gets from the same origin on this machine in 10 s. Checks that every post points home, that
every image is on disk with the origin's bytes, and that each URL was requested once.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import targets  # noqa: E402
from bench_fix_posts import _feedfix, make_tree  # noqa: E402

ORIGIN_HOSTS = re.compile(rb"http://zkres[1-4]\.myzaker\.com")
HOME = re.compile(rb"/images/remote/127\.0\.0\.1_\d+/")
LEFT = re.compile(rb"(?:zkres[1-4]\.myzaker\.com|http://127\.0\.0\.1)")
TARGET_RSS_MB = targets.SAVE_IMAGES_RSS_MB


def _jpeg() -> bytes:
    """A real JPEG; the URL's path goes after it (distinct bytes per URL, magic intact)."""
    from PIL import Image  # noqa: PLC0415 - Pillow comes with the test extra

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 90)).save(out, format="JPEG")
    return out.getvalue()


JPEG = _jpeg()


class Origin:
    """The slow image origin: every path is a JPEG after ``delay`` s; requests counted."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.hits: Counter[str] = Counter()
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        """Listen on 127.0.0.1 in a thread of its own."""
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._image)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=512)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _image(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        await asyncio.sleep(self.delay)
        body = JPEG + request.path.encode()
        return web.Response(body=body, headers={"Content-Type": "image/jpeg"})


CLIENT = r"""
import asyncio, sys, time
import aiohttp
port, loops, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
async def main():
    done = 0
    async with aiohttp.ClientSession() as session:
        async def loop(k):
            nonlocal done
            i = 0
            while time.perf_counter() < end:
                async with session.get(f"http://127.0.0.1:{port}/client/{k}/{i}.jpg") as r:
                    await r.read()
                i += 1
                done += 1
        end = time.perf_counter() + seconds
        await asyncio.gather(*(loop(k) for k in range(loops)))
    print(done / seconds)
asyncio.run(main())
"""


def _bare_client(port: int, loops: int, seconds: float = 10.0) -> float:
    """Images per second a bare aiohttp client gets from the origin."""
    command = [sys.executable, "-c", CLIENT, str(port), str(loops), str(seconds)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(result.stdout)


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    """The process's children, whichever of its threads started them (the mending workers
    are forked by the thread that reads the posts)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _run(command: list[str], expect: int) -> tuple[float, list[tuple[float, float, float]]]:
    """Wall time and the RSS samples (seconds, main MB, main + workers MB) of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, float, float]] = []
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(process.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    while process.poll() is None:
        main = _rss_kb(process.pid)
        total = main + sum(_rss_kb(c) for c in _children(process.pid))
        samples.append((time.perf_counter() - started, main / 1000, total / 1000))
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    reader.join()
    if process.returncode != expect:
        sys.exit(f"exit {process.returncode}: {b''.join(err).decode()[-800:]}")
    return elapsed, samples


def _mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


def _check(tree: Path, images: Path, origin: Origin, expected: int) -> None:
    for post in tree.rglob("*.md"):
        data = post.read_bytes()
        if LEFT.search(data) or not HOME.search(data):
            sys.exit(f"check failed: {post} does not point home")
    files = [p for p in images.rglob("*.jpg") if ".by-sha256" not in p.parts]
    if len(files) != expected or len(origin.hits) != expected:
        sys.exit(f"check failed: {len(files)} files, {len(origin.hits)} URLs, {expected} wanted")
    if any(n != 1 for n in origin.hits.values()):
        sys.exit("check failed: an image was requested twice")
    for path in files[:: max(1, len(files) // 500)]:
        served = "/" + "/".join(path.relative_to(images).parts[1:])
        if path.read_bytes() != JPEG + served.encode():
            sys.exit(f"check failed: {path} holds other bytes")


def _blog(work: Path, posts: int, port: int) -> set[bytes]:
    """The posts below ``work/source/_posts``, their images on the origin; the image URLs."""
    tree = work / "source" / "_posts"
    shutil.rmtree(work / "source", ignore_errors=True)
    make_tree(tree, posts)
    urls: set[bytes] = set()
    for post in tree.rglob("*.md"):
        data = ORIGIN_HOSTS.sub(f"http://127.0.0.1:{port}".encode(), post.read_bytes())
        post.write_bytes(data)
        urls.update(re.findall(rb'data-original="([^"]+)"', data))
    (work / "feedfix.toml").write_text('[images]\nallow_private = ["127.0.0.1"]\n')
    return urls


def _figures(
    args: argparse.Namespace,
    images: int,
    runs: tuple[float, float, float],
    samples: list[tuple[float, float, float]],
) -> dict[str, object]:
    elapsed, rerun, bare = runs
    floor = images * args.delay / args.per_host
    quarter = max(1, len(samples) // 4)
    peak = max(s[1] for s in samples)
    return {
        "posts": args.posts,
        "images": images,
        "seconds": round(elapsed, 1),
        "posts_per_s": round(args.posts / elapsed, 1),
        "images_per_s": round(images / elapsed, 1),
        "floor_s": round(floor, 1),
        "floor_images_per_s": round(images / floor, 1),
        "ratio_to_floor": round(elapsed / floor, 3),
        "bare_client_images_per_s": round(bare, 1),
        "share_of_bare_client": round(images / elapsed / bare, 3),
        "peak_rss_mb": round(peak, 1),
        "peak_rss_with_workers_mb": round(max(s[2] for s in samples), 1),
        "rss_first_quarter_mb": round(max(s[1] for s in samples[:quarter]), 1),
        "rss_last_quarter_mb": round(max(s[1] for s in samples[-quarter:]), 1),
        "rss_by_tenth_mb": [round(samples[len(samples) * k // 10][1], 1) for k in range(10)],
        "rerun_s": round(rerun, 2),
        "rss_pass": peak <= TARGET_RSS_MB,
    }


def _print(f: dict[str, Any], delay: float, per_host: int) -> None:
    print(f"save:  {f['seconds']} s, {f['posts_per_s']:,} posts/s, "
          f"{f['images_per_s']:,} images/s")  # fmt: skip
    print(f"floor: {f['floor_s']} s ({f['images']:,} images x {delay * 1000:g} ms / "
          f"per-host {per_host}), {f['floor_images_per_s']:,} images/s; "
          f"feedfix/floor {f['ratio_to_floor']:.3f}")  # fmt: skip
    print(f"bare aiohttp client: {f['bare_client_images_per_s']:,} images/s; feedfix gets "
          f"{f['share_of_bare_client']:.1%} of it")  # fmt: skip
    print(f"RSS:   peak {f['peak_rss_mb']} MB (with workers {f['peak_rss_with_workers_mb']} MB);"
          f" first quarter {f['rss_first_quarter_mb']} MB, last quarter "
          f"{f['rss_last_quarter_mb']} MB; target <= {TARGET_RSS_MB:g} MB: "
          f"{'PASS' if f['rss_pass'] else 'FAIL'}")  # fmt: skip
    print(f"RSS at each tenth of the run: {', '.join(map(str, f['rss_by_tenth_mb']))} MB")
    print(f"rerun: {f['rerun_s']} s, nothing fetched, nothing changed")


def main(argv: list[str] | None = None) -> int:
    """Generate, run, check, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds per image")
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--feedfix", help="the feedfix executable (default: beside python)")
    parser.add_argument("--keep", type=Path, help="work here and keep the tree")
    args = parser.parse_args(argv)
    origin = Origin(args.delay)
    origin.start()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-save-images-"))
    tree, images = work / "source" / "_posts", work / "source" / "images" / "remote"
    urls = _blog(work, args.posts, origin.port)
    command = [
        *_feedfix(args.feedfix), "fix-posts", str(tree), "--write", "--save-images",
        str(images), "--images-url", "/images/remote", "--config", str(work / "feedfix.toml"),
        "--per-host", str(args.per_host),
    ]  # fmt: skip
    print(f"{args.posts:,} posts, {len(urls):,} images in {tree}", file=sys.stderr)
    bare = _bare_client(origin.port, args.per_host)
    origin.hits.clear()
    try:
        elapsed, samples = _run(command, 0)
        _check(tree, images, origin, len(urls))
        requests, before = sum(origin.hits.values()), _mtimes(work / "source")
        rerun, _ = _run(command, 0)
        if sum(origin.hits.values()) != requests or _mtimes(work / "source") != before:
            sys.exit("check failed: the rerun fetched or changed something")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    figures = _figures(args, len(urls), (elapsed, rerun, bare), samples)
    if args.json:
        print(json.dumps(figures))
    else:
        _print(figures, args.delay, args.per_host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
