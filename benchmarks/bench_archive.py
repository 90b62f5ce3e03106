"""The image archive: how long until every image is kept, what it costs serving, and memory.

Starts a loopback origin (this script with ``--origin``, a child process: aiohttp) that
serves a feed of ``--entries`` entries with ``--images`` distinct images each (every image a
real JPEG of ``--size`` bytes, answered after ``--delay`` ms) and a small feed with no images
(the one readers are measured on). Then ``feedfix serve`` as a user starts it, with
``[images] proxy = "all"``, ``archive = true``, ``per_host = --per-host``:

1. Archive time: from the origin's first image request (right after the poll) until
   ``feedfix_image_archive_images{state="archived"}`` counts every image, nothing else
   running, against the floor of ``entries * images * delay / per_host`` (the origin's time
   alone at ``per_host`` at a time; 1,000 x 8 x 20 ms / 4 = 40 s); how long the poll itself
   took; the store's and the image folder's size.
2. Serving while archiving (a second service, from empty): wrk (``-t2 -c64``,
   ``--duration`` s) on the small feed (gzip) and on one archived image (the fast path),
   ``--rounds`` times with the archive at work and with it paused (the origin holds its
   answers), back to back, after one warm-up run of each; the median ratio working /
   paused (against ``targets.ARCHIVE_SERVING``), the working rate against the rate at rest
   once the archive is full, and how many images a second the archive kept under wrk (it
   gives way to readers: ``feedfix/service/readers_first.py``).
3. Memory: two more services on the same feed (8 small images per entry,
   ``--memory-images`` in all; the same entries, image URLs and bytes served), the archive
   on in one (every image archived) and off in the other (none archived; readers then ask
   for every image once, so both cache the same images); RSS once done and again after a
   restart, and the difference (against ``targets.ARCHIVE_RSS_MB``).

Usage: ``bench_archive.py [--entries 1000] [--images 8] [--size 200000] [--delay 20]
[--per-host 4] [--duration 3] [--rounds 8] [--memory-images 10000]
[--parts archive,serving,memory] [--json]``.
Needs ``wrk`` (Debian ``wrk``) and Pillow. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serve as bs
import serve_upstream as su
import targets

KEY = "bench-key-for-the-image-archive-0123456789"


def progress(text: str) -> None:
    """A line on stderr, so that --json output stays clean."""
    print(text, file=sys.stderr, flush=True)


# ---- the origin (a child process) -----------------------------------------------------------


def jpeg(target: int) -> bytes:
    """A real JPEG of about ``target`` bytes (noise compresses badly, so size ~ pixels)."""
    side = 16
    while True:
        pixels = os.urandom(side * side * 3)
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), pixels).save(out, format="JPEG", quality=90)
        if out.tell() >= target:
            return out.getvalue()
        side = int(side * 1.1) + 1


def feed_xml(origin: str, entries: int, images: int) -> bytes:
    """An RSS feed of ``entries`` entries, each with ``images`` distinct images."""
    items = []
    for e in range(entries):
        imgs = "".join(f'<img src="{origin}/img/{e}/{i}.jpg">' for i in range(images))
        items.append(
            f"<item><title>entry {e}</title><guid>urn:bench:{e}</guid>"
            f"<description><![CDATA[<p>entry {e}</p>{imgs}]]></description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>bench'
        f"</title><link>{origin}/</link><description>d</description>{''.join(items)}"
        "</channel></rss>"
    ).encode()


def run_origin(args: argparse.Namespace) -> int:
    """Serve the feeds and the images until killed; print ``listening URL`` first."""
    from aiohttp import web  # noqa: PLC0415

    body = jpeg(args.size)
    counts: dict[str, float] = {"images": 0, "first": 0.0, "last": 0.0}
    port = su.free_port()
    origin = f"http://127.0.0.1:{port}"
    big = feed_xml(origin, args.entries, args.images)
    small = feed_xml(origin, 20, 0)

    flowing = asyncio.Event()
    flowing.set()

    async def image(_request: web.Request) -> web.Response:
        await flowing.wait()  # paused: the archive waits on its sockets, doing nothing
        counts["images"] += 1
        counts["first"] = counts["first"] or time.time()
        if args.delay:
            await asyncio.sleep(args.delay / 1000)
        counts["last"] = time.time()
        return web.Response(body=body, content_type="image/jpeg")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application()
    app.router.add_get("/feed.xml", lambda _r: _xml(big))
    app.router.add_get("/small.xml", lambda _r: _xml(small))
    app.router.add_get("/img/{e}/{i}", image)
    app.router.add_get("/_stats", stats)
    app.router.add_get("/_pause", lambda _r: _switch(flowing, on=False))
    app.router.add_get("/_resume", lambda _r: _switch(flowing, on=True))
    print(f"listening {origin}", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
    return 0


async def _switch(flowing: asyncio.Event, *, on: bool) -> Any:
    from aiohttp import web  # noqa: PLC0415

    flowing.set() if on else flowing.clear()
    return web.Response(text="ok")


async def _xml(body: bytes) -> Any:
    from aiohttp import web  # noqa: PLC0415

    return web.Response(body=body, content_type="application/rss+xml")


# ---- the measurements -----------------------------------------------------------------------

CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}
base_url = "http://127.0.0.1:{port}"
[storage]
path = "{folder}/feedfix.db"
[poll]
timeout = "60s"
max_size = "100MB"
[images]
proxy = "all"
archive = {archive}
key = "{key}"
allow_private = ["127.0.0.1"]
per_host = {per_host}
cache_size = "50GB"
[[feeds]]
name = "big"
url = "{origin}/feed.xml"
interval = "1h"
keep_entries = {entries}
[[feeds]]
name = "small"
url = "{origin}/small.xml"
interval = "1h"
"""


def start_origin(args: argparse.Namespace, entries: int, images: int, size: int) -> Any:
    """The origin as a child process, and its URL."""
    import subprocess  # noqa: PLC0415

    command = [sys.executable, __file__, "--origin", "--entries", str(entries), "--images",
               str(images), "--size", str(size), "--delay", str(args.delay)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        raise RuntimeError(f"the origin did not start: {line!r}")
    url = line.split()[1]
    su.wait_until(lambda: _up(url), 15, "the origin")
    return proc, url


def _up(url: str) -> bool:
    try:
        return su.http_get(f"{url}/_stats", timeout=2)[0] == 200
    except OSError:
        return False


def start_service(
    folder: Path,
    origin: str,
    entries: int,
    per_host: int,
    *,
    archive: bool = True,
) -> Any:
    """``feedfix serve`` on its own config in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = su.free_port()
    config = folder / "feedfix.toml"
    config.write_text(
        CONFIG.format(port=port, folder=folder, archive=str(archive).lower(), key=KEY,
                      per_host=per_host, origin=origin, entries=entries),
        encoding="utf-8",
    )  # fmt: skip
    service = su.spawn_feedfix(config, port, folder / "feedfix.log")
    su.wait_until(lambda: su.served(service, "small") and su.served(service, "big"), 300, "feeds")
    return service


def archived(service: Any) -> int:
    """``feedfix_image_archive_images{state="archived"}``."""
    body = su.http_get(f"{service.url}/metrics")[2].decode()
    match = re.search(r'^feedfix_image_archive_images\{state="archived"\} (\S+)$', body, re.M)
    return int(float(match.group(1))) if match else 0


def fetched(service: Any) -> int:
    """``feedfix_image_archive_fetches_total{outcome="archived"}``: counted as each lands (the
    state gauge is a summary, read every few seconds)."""
    body = su.http_get(f"{service.url}/metrics")[2].decode()
    found = re.search(
        r'^feedfix_image_archive_fetches_total\{outcome="archived"\} (\S+)$', body, re.M
    )
    return int(float(found.group(1))) if found else 0


def first_poll(service: Any, name: str) -> dict[str, Any]:
    """The first poll log line of ``name``."""
    for line in Path(service.log_path).read_text("utf-8").splitlines():
        record = json.loads(line)
        if record.get("event") == "poll" and record.get("feed") == name:
            return dict(record)
    raise RuntimeError(f"no poll of {name} in the log")


def wrk(url: str, args: argparse.Namespace, headers: list[str]) -> float:
    """Requests per second of one wrk run."""
    run = bs.run_wrk(url, url, argparse.Namespace(threads=2, connections=64, **vars(args)),
                     headers)  # fmt: skip
    if run.errors:
        raise RuntimeError(f"wrk: {run.errors}")
    return float(run.rps)


def archive_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Part 1: the time to archive everything, nothing else running."""
    total = args.entries * args.images
    floor = total * args.delay / 1000 / args.per_host
    origin_proc, origin = start_origin(args, args.entries, args.images, args.size)
    service = None
    try:
        progress(
            f"archive: {args.entries} x {args.images} images of {args.size} B, "
            f"{args.delay} ms each, per_host {args.per_host}: floor {floor:.1f} s"
        )
        service = start_service(work / "archive", origin, args.entries, args.per_host)
        user0, sys0 = su.cpu_times(service.pid)
        wait_archived(service, total, 30 * floor + 600)
        done = time.time()
        user1, sys1 = su.cpu_times(service.pid)
        stats = json.loads(su.http_get(f"{origin}/_stats")[2])
        seconds = done - stats["first"]  # from the first image asked for
        return {
            "images": total,
            "archive_s": round(seconds, 1),
            "origin_busy_s": round(stats["last"] - stats["first"], 1),
            "floor_s": round(floor, 1),
            "vs_floor": round(seconds / floor, 2) if floor else None,
            "poll_ms": first_poll(service, "big")["duration_ms"],
            "service_cpu_s": round(user1 + sys1 - user0 - sys0, 1),
            "origin_requests": stats["images"],
            "store_mb": round((work / "archive" / "feedfix.db").stat().st_size / 1e6, 1),
            "folder_mb": round(_folder_bytes(work / "archive") / 1e6, 1),
        }
    finally:
        if service is not None:
            service.stop()
        su.stop_process(origin_proc)


def serving_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Part 2: wrk on the small feed and on an archived image, ``--rounds`` times with the
    archive at work and with it paused (the origin holds its answers: the archiver waits on
    its sockets), one after the other (in turn first and second, so that a drift of the
    machine favours neither), so that both see the same machine; the ratio is the median of
    the rounds'. Then as many runs again at rest, the archive full. One run of each first,
    not counted: the service's first requests, and the first window in which the archive
    learns that readers are many (``readers_first.WINDOW``, at full speed meanwhile: a
    flood's first second, a third of a 3 s run)."""
    total = args.entries * args.images
    origin_proc, origin = start_origin(args, args.entries, args.images, args.size)
    service = None
    try:
        service = start_service(work / "serving", origin, args.entries, args.per_host)
        small, image = f"{service.url}/feeds/small.atom", _one_archived_image(service)
        targets = {
            "feed": (small, ["Accept-Encoding: gzip"]),
            "image": (f"{service.url}{image}", []),
        }
        working: dict[str, list[float]] = {name: [] for name in targets}
        paused: dict[str, list[float]] = {name: [] for name in targets}
        kept: list[float] = []  # images a second the archive kept meanwhile (readers first)
        for url, headers in targets.values():  # warm-up, not counted (see the docstring)
            wrk(url, args, headers)
        for turn in range(args.rounds):
            for name, (url, headers) in targets.items():
                for at_work in (True, False) if turn % 2 == 0 else (False, True):
                    su.http_get(f"{origin}/_resume" if at_work else f"{origin}/_pause")
                    time.sleep(0.5)  # what was in flight lands; the same pause before each run
                    if not at_work:
                        paused[name].append(wrk(url, args, headers))
                        continue
                    before, start = fetched(service), time.monotonic()
                    working[name].append(wrk(url, args, headers))
                    kept.append((fetched(service) - before) / (time.monotonic() - start))
        su.http_get(f"{origin}/_resume")
        overlapped = archived(service) < total  # every run was inside the archiving
        wait_archived(service, total, 3600)
        rest = {  # as many runs as the rounds had, for a median as steady as theirs
            name: statistics.median(wrk(url, args, headers) for _ in range(args.rounds))
            for name, (url, headers) in targets.items()
        }
        ratios = {
            name: round(
                statistics.median(w / p for w, p in zip(working[name], paused[name], strict=True)),
                2,
            )
            for name in targets
        }
        return {
            "wrk_within_archiving": overlapped,
            "working_rps": {k: [round(v) for v in vs] for k, vs in working.items()},
            "paused_rps": {k: [round(v) for v in vs] for k, vs in paused.items()},
            "working_vs_paused": ratios,
            "at_rest_rps": {k: round(v) for k, v in rest.items()},
            "working_vs_rest": {k: round(statistics.median(working[k]) / rest[k], 2) for k in rest},
            "archived_per_s_under_wrk": round(statistics.median(kept), 1),
        }
    finally:
        if service is not None:
            service.stop()
        su.stop_process(origin_proc)


def _median_ratio(numerators: list[float], denominators: list[float]) -> float:
    pairs = zip(numerators, denominators, strict=True)
    return round(statistics.median(n / d for n, d in pairs), 2)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in (folder / "feedfix-images").rglob("*") if f.is_file())


def _one_archived_image(service: Any) -> str:
    """A proxied image of the big feed that is archived already (wait for the first)."""
    su.wait_until(lambda: archived(service) > 0, 120, "a first archived image", 0.05)
    body = su.http_get(f"{service.url}/feeds/big.atom")[2].decode()
    paths = re.findall(r"(/img/v1/[A-Za-z0-9_\-/.]+)", body)
    for path in paths[:200]:
        if su.http_get(f"{service.url}{path}")[0] == 200:
            return str(path)
    raise RuntimeError("no archived image answers")


def wait_archived(service: Any, count: int, timeout: float) -> None:
    """Wait until ``count`` images are archived."""
    su.wait_until(lambda: archived(service) >= count, timeout, f"{count} archived", 0.05)


def memory_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Part 3: RSS with ``--memory-images`` archived images, and with none: two services on
    the same feed (the same entries, the same proxied image URLs, the same bytes served),
    the archive on in one and off in the other, where readers then ask for every image once
    (so both hold the same cache: what is measured is the archive alone; the cache's own
    cost is ``bench_images.py``'s). RSS once done, and after a restart (the archive then
    read from the store), each the lowest of three readings a second apart."""
    entries = args.memory_images // 8
    origin_args = argparse.Namespace(**{**vars(args), "delay": 0})
    origin_proc, origin = start_origin(origin_args, entries, 8, 2000)
    results: dict[str, Any] = {"images": entries * 8}
    try:
        for label, archive in (("none", False), ("archived", True)):
            folder = work / f"memory-{label}"
            for when in ("", "_restarted"):
                service = start_service(folder, origin, entries, 16, archive=archive)
                try:
                    if archive and not when:
                        wait_archived(service, entries * 8, 1200)
                    elif not when:
                        read_every_image(service)
                    results[f"rss_{label}{when}_mb"] = settled_rss(service.pid)
                finally:
                    service.stop()
        for when in ("", "_restarted"):
            difference = results[f"rss_archived{when}_mb"] - results[f"rss_none{when}_mb"]
            results[f"difference{when}_mb"] = round(difference, 1)
    finally:
        su.stop_process(origin_proc)
    return results


def read_every_image(service: Any) -> None:
    """Ask for every image of the big feed once, eight at a time, as readers would."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    body = su.http_get(f"{service.url}/feeds/big.atom")[2].decode()
    paths = sorted(set(re.findall(r"(/img/v1/[A-Za-z0-9_\-/.]+)", body)))
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda p: su.http_get(f"{service.url}{p}")[0], paths))
    if statuses.count(200) != len(paths):
        raise RuntimeError(f"{len(paths) - statuses.count(200)} images did not answer 200")


def settled_rss(pid: int) -> float:
    """The lowest of three RSS readings a second apart, after three quiet seconds."""
    time.sleep(3)
    readings = []
    for _ in range(3):
        readings.append(su.memory_mb(pid)["VmRSS"])
        time.sleep(1)
    return round(min(readings), 1)


def main() -> int:
    """Run the benchmark (or, with ``--origin``, be its origin)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--origin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--delay", type=float, default=20.0, help="ms per image at the origin")
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=8, help="working/paused pairs of runs")
    parser.add_argument("--memory-images", type=int, default=10_000)
    parser.add_argument(
        "--parts", default="archive,serving,memory", help="which parts to run (comma-separated)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.origin:
        return run_origin(args)
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as folder:
        work = Path(folder)
        parts = {"archive": archive_run, "serving": serving_run, "memory": memory_run}
        report = {name: parts[name](args, work) for name in args.parts.split(",")}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for part, figures in report.items():
            print(f"{part}:")
            for key, value in figures.items():
                print(f"  {key}: {value}")
        for line in verdicts(report):
            print(line)
    return 0


def verdicts(report: dict[str, Any]) -> list[str]:
    """PASS/FAIL beside each target of ``targets.py`` the report measured."""
    lines = []
    if "serving" in report:
        for name, ratio in report["serving"]["working_vs_paused"].items():
            verdict = "PASS" if ratio >= targets.ARCHIVE_SERVING else "FAIL"
            lines.append(f"{verdict} serving {name} while archiving {ratio}x "
                         f"(ARCHIVE_SERVING {targets.ARCHIVE_SERVING:g}x)")  # fmt: skip
    if "memory" in report:
        for key in ("difference_mb", "difference_restarted_mb"):
            value = report["memory"][key]
            verdict = "PASS" if abs(value) <= targets.ARCHIVE_RSS_MB else "FAIL"
            lines.append(
                f"{verdict} memory {key} {value} MB (ARCHIVE_RSS_MB {targets.ARCHIVE_RSS_MB:g})"
            )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
