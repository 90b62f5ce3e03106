"""A local upstream for the service benchmarks: N generated ZAKER-shaped RSS feeds over HTTP.

Usage::

    serve_upstream.py [--feeds 100] [--items 50] [--mode same|changed|new-entry|build]
                      [--static N] [--fail-every 3] [--extra 100] [--ttl] [--port 0]

Feed ``i`` is at ``/f{i}.xml``; its items come from ``make_feed.make_feed_with_images`` with
seed ``SEED + i`` (50 items are about 250 KB). Every response carries a strong ETag, and a
request whose ``If-None-Match`` names the current one gets a 304. ``--mode`` says what a request
sees:

- ``same`` (alias ``304``): the bytes never change, so every conditional poll gets a 304;
- ``changed``: every request edits every item (a revision number in each title), so a poller
  has to clean all of them again;
- ``new-entry``: every request slides the window by one: a new item on top, the oldest gone
  (``--extra`` items are generated ahead; when they run out the feed stops changing);
- ``build``: only ``lastBuildDate`` moves (RSSHub rebuilding the same items).

``--static N`` keeps the first N feeds in ``same`` mode whatever ``--mode`` says (a feed to
benchmark 304s against while the others move). ``--fail-every K`` answers every K-th request
of each feed with a 500 (3: a third of the time); a failed request does not advance the feed.
``<ttl>5</ttl>`` is left out unless ``--ttl``: a poller that honours it would come back every
five minutes at the soonest. ``GET /_stats`` gives request counts as JSON. The first line on
stdout is ``listening http://HOST:PORT ...``.

The rest of the module is the harness the service benchmarks share (``bench_serve.py``,
``bench_poll.py``): starting the upstream and ``feedfix serve`` as child processes, reading
their CPU time and memory from ``/proc``, following feedfix's JSON poll log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_feed import SEED, START, make_feed_with_images  # noqa: E402

MODES = ("same", "changed", "new-entry", "build")
RSS_TYPE = "application/rss+xml; charset=utf-8"
_BUILD = re.compile(rb"<lastBuildDate>[^<]*</lastBuildDate>")
_TTL = re.compile(rb"<ttl>\d+</ttl>\n?")
_TITLE_END = b"]]></title>"


# ---- the upstream ------------------------------------------------------------------------


@dataclass
class UpstreamFeed:
    """One generated feed: its items newest first, and how far it has moved."""

    index: int
    head: bytes  # everything before the first <item>, lastBuildDate cut out
    build_at: int  # where lastBuildDate goes in head
    items: list[tuple[bytes, bytes]]  # each item split after its title text
    window: int
    hits: int = 0  # requests, failed ones included
    version: int = 0  # successful requests so far: what the content has moved to

    def body(self, mode: str, version: int) -> bytes:
        """The feed as a request at ``version`` sees it."""
        extra = len(self.items) - self.window
        start = extra - min(version, extra) if mode == "new-entry" else extra
        when = START + timedelta(seconds=version if mode == "build" else 0)
        build = (
            b"<lastBuildDate>" + format_datetime(when, usegmt=True).encode() + b"</lastBuildDate>"
        )
        parts = [self.head[: self.build_at], build, self.head[self.build_at :]]
        mark = b" #%d" % version if mode == "changed" else b""
        for title_head, rest in self.items[start : start + self.window]:
            parts += (title_head, mark, rest)
        parts.append(b"</channel>\n</rss>\n")
        return b"".join(parts)

    def etag(self, mode: str, version: int) -> str:
        """Strong, and the same exactly when the bytes are."""
        if mode == "same":
            return f'"f{self.index}-same"'
        if mode == "new-entry":
            version = min(version, len(self.items) - self.window)
        return f'"f{self.index}-{mode}-{version}"'


def generate(index: int, items: int, extra: int, ttl: bool) -> UpstreamFeed:
    """Feed ``index``: ``items`` items in the window, ``extra`` newer ones to come."""
    data, _ = make_feed_with_images(items + extra, SEED + index)
    head, *chunks = data.split(b"<item>\n")
    chunks[-1] = chunks[-1].removesuffix(b"</channel>\n</rss>\n")
    if not ttl:
        head = _TTL.sub(b"", head)
    found = _BUILD.search(head)
    assert found is not None, "make_feed output has a lastBuildDate"
    head = head[: found.start()] + head[found.end() :]
    split = []
    for chunk in chunks:
        title_head, _, rest = (b"<item>\n" + chunk).partition(_TITLE_END)
        split.append((title_head, _TITLE_END + rest))
    return UpstreamFeed(index, head, found.start(), split, items)


def make_app(feeds: list[UpstreamFeed], mode: str, fail_every: int, static: int = 0) -> Any:
    """The aiohttp application serving ``feeds``."""
    from aiohttp import web  # noqa: PLC0415 - the harness half of this module needs no aiohttp

    counts: Counter[str] = Counter()

    async def feed(request: web.Request) -> web.Response:
        index = int(request.match_info["index"])
        if index >= len(feeds):
            counts["404"] += 1
            return web.Response(status=404, text="no such feed\n")
        up = feeds[index]
        feed_mode = "same" if index < static else mode
        up.hits += 1
        if fail_every and up.hits % fail_every == 0:
            counts["500"] += 1
            return web.Response(status=500, text="upstream failure (on purpose)\n")
        version = up.version
        if feed_mode != "same":
            up.version += 1
        etag = up.etag(feed_mode, version)
        inm = request.headers.get("If-None-Match", "")
        if etag in {t.strip() for t in inm.split(",")}:
            counts["304"] += 1
            return web.Response(status=304, headers={"ETag": etag})
        counts["200"] += 1
        return web.Response(
            body=up.body(feed_mode, version), headers={"ETag": etag, "Content-Type": RSS_TYPE}
        )

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"mode": mode, "feeds": len(feeds), **counts})

    app = web.Application()
    app.router.add_get(r"/f{index:\d{1,6}}.xml", feed)
    app.router.add_get("/_stats", stats)
    return app


async def _serve(args: argparse.Namespace) -> None:
    import asyncio  # noqa: PLC0415

    from aiohttp import web  # noqa: PLC0415

    extra = args.extra if args.extra is not None else (100 if args.mode == "new-entry" else 0)
    feeds = [generate(i, args.items, extra, args.ttl) for i in range(args.feeds)]
    sizes = [len(f.body(args.mode, 0)) for f in feeds[:3]]
    runner = web.AppRunner(
        make_app(feeds, args.mode, args.fail_every, args.static), access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=1024)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(
        f"listening http://{host}:{port} feeds={args.feeds} items={args.items} "
        f"mode={args.mode} static={args.static} extra={extra} fail_every={args.fail_every} "
        f"bytes={sizes[0]}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=args.lifetime)
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=50, help="items in each response")
    parser.add_argument("--mode", default="same", choices=[*MODES, "304"])
    parser.add_argument(
        "--fail-every",
        type=int,
        default=0,
        metavar="K",
        help="every K-th request of a feed gets a 500 (0: never)",
    )
    parser.add_argument(
        "--extra", type=int, default=None, help="items generated ahead for new-entry (default 100)"
    )
    parser.add_argument(
        "--static",
        type=int,
        default=0,
        metavar="N",
        help="the first N feeds never change, whatever the mode",
    )
    parser.add_argument("--ttl", action="store_true", help="keep <ttl>5</ttl> in the feeds")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--lifetime",
        type=float,
        default=3600.0,
        help="exit after this many seconds whatever happens",
    )
    args = parser.parse_args(argv)
    if args.mode == "304":
        args.mode = "same"
    import asyncio  # noqa: PLC0415

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


# ---- the harness the service benchmarks share --------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM) -> None:
    """Ask a child to stop, then kill it if it has not within 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class Upstream:
    """A running ``serve_upstream.py`` child."""

    proc: subprocess.Popen[str]
    url: str
    banner: str

    def stats(self) -> dict[str, Any]:
        """Its request counts."""
        status, _, body = http_get(self.url + "/_stats")
        assert status == 200, status
        result: dict[str, Any] = json.loads(body)
        return result


def spawn_upstream(
    feeds: int,
    items: int,
    mode: str,
    *,
    fail_every: int = 0,
    extra: int | None = None,
    static: int = 0,
    lifetime: float = 1800.0,
    timeout: float = 120.0,
) -> Upstream:
    """Start the upstream on a free loopback port and wait for its banner."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--feeds",
        str(feeds),
        "--items",
        str(items),
        "--mode",
        mode,
        "--fail-every",
        str(fail_every),
        "--static",
        str(static),
        "--lifetime",
        str(lifetime),
    ]
    if extra is not None:
        command += ["--extra", str(extra)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("listening "):
                return Upstream(proc, line.split()[1], line.strip())
    stop_process(proc)
    raise RuntimeError(f"the upstream did not start within {timeout:g} s")


def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a GET (no gzip asked for; 3xx/4xx/5xx returned, not raised)."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def feedfix_command() -> list[str]:
    """The ``feedfix`` console script beside this interpreter, else ``python -m feedfix``."""
    script = Path(sys.executable).with_name("feedfix")
    if script.exists():
        return [str(script)]
    found = shutil.which("feedfix")
    return [found] if found else [sys.executable, "-m", "feedfix"]


def write_config(
    path: Path,
    *,
    port: int,
    upstream: str,
    feeds: int,
    intervals: list[float],
    storage: Path,
    extra_poll: str = "",
    cleaner: str = "thread",
) -> None:
    """A feedfix config: ``feeds`` feeds ``f{i}`` on the upstream, intervals cycled."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "",
        "[storage]",
        f'path = "{storage}"',
        "",
        "[poll]",
        f'cleaner = "{cleaner}"',
        extra_poll,
        "",
    ]
    for i in range(feeds):
        lines += [
            "[[feeds]]",
            f'name = "f{i}"',
            f'url = "{upstream}/f{i}.xml"',
            f"interval = {intervals[i % len(intervals)]:g}",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


@dataclass
class Service:
    """A running ``feedfix serve`` child, its port and its log."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    log_file: TextIO
    log: PollLog = field(init=False)

    def __post_init__(self) -> None:
        self.log = PollLog(self.log_path)

    @property
    def pid(self) -> int:
        """The service's process id."""
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then close the log."""
        stop_process(self.proc)
        self.log_file.close()


def spawn_feedfix(config: Path, port: int, log_path: Path) -> Service:
    """Start ``feedfix serve --config CONFIG``, its JSON log going to ``log_path``."""
    log_file = log_path.open("w", encoding="utf-8")
    env = {**os.environ, "FEEDFIX_LOG_LEVEL": "info"}
    proc = subprocess.Popen(
        [*feedfix_command(), "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        env=env,
    )
    return Service(proc, f"http://127.0.0.1:{port}", log_path, log_file)


def add_cleaner_option(parser: argparse.ArgumentParser) -> None:
    """``--cleaner``, the ``[poll] cleaner`` the benchmarked service runs with."""
    parser.add_argument(
        "--cleaner", choices=("thread", "process"), default="thread", help="[poll] cleaner"
    )


def start_feedfix(
    folder: Path,
    upstream: str,
    *,
    feeds: int,
    intervals: list[float],
    extra_poll: str = "",
    cleaner: str = "thread",
) -> Service:
    """Write a config for ``feeds`` feeds on ``upstream`` in ``folder`` and start feedfix."""
    port = free_port()
    config = folder / "feedfix.toml"
    write_config(
        config,
        port=port,
        upstream=upstream,
        feeds=feeds,
        intervals=intervals,
        storage=folder / "feedfix.db",
        extra_poll=extra_poll,
        cleaner=cleaner,
    )
    return spawn_feedfix(config, port, folder / "feedfix.log")


def wait_until(check: Any, timeout: float, what: str, step: float = 0.2) -> Any:
    """Call ``check()`` until it returns something true, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            break
        time.sleep(step)
    raise TimeoutError(f"waited {timeout:g} s for {what}")


def served(service: Service, name: str = "f0") -> bool:
    """``/feeds/NAME.atom`` answers 200 (the process being alive)."""
    if service.proc.poll() is not None:
        raise RuntimeError(
            f"feedfix exited with status {service.proc.returncode}; see {service.log_path}"
        )
    try:
        return http_get(f"{service.url}/feeds/{name}.atom", timeout=2)[0] == 200
    except OSError:
        return False


class PollLog:
    """Follows feedfix's JSON log and collects its ``poll`` events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.pending = b""
        self.polls: list[dict[str, Any]] = []

    def update(self) -> list[dict[str, Any]]:
        """Read what was appended; returns the new poll events."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        new = []
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "poll":
                    new.append(event)
        self.polls += new
        return new


def processes(pid: int) -> list[int]:
    """``pid`` and its descendants (a service that forks is measured whole)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo.extend(int(child) for child in task.read_text(encoding="ascii").split())
    return found


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process and its descendants, all threads, in seconds."""
    user = system = 0.0
    for each in processes(pid):
        stat = Path(f"/proc/{each}/stat").read_text(encoding="ascii")
        fields = stat[stat.rindex(")") + 2 :].split()
        user += int(fields[11]) / CLK_TCK  # utime, stime: fields 14 and 15
        system += int(fields[12]) / CLK_TCK
    return user, system


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its descendants, in seconds."""
    return sum(cpu_times(pid))


def exit_on_sigterm() -> None:
    """Make SIGTERM (and SIGHUP) raise SystemExit, so ``finally`` blocks stop the children."""

    def handler(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, handler)


def memory_mb(pid: int) -> dict[str, float]:
    """Memory of a process and its descendants, in MB (10^6 bytes).

    ``Rss``: the resident sizes added up (an upper bound: pages processes share count once
    per process). ``Pss``: proportional set sizes added up, shared pages split between their
    sharers. ``VmRSS``/``VmHWM``: the main process alone, now and at its peak.
    """

    def fields(path: str, keys: set[str]) -> dict[str, float]:
        out = {}
        for line in Path(path).read_text(encoding="ascii").splitlines():
            key, _, value = line.partition(":")
            if key in keys:
                out[key] = int(value.split()[0]) * 1024 / 1e6
        return out

    result = fields(f"/proc/{pid}/status", {"VmRSS", "VmHWM"})
    tree = [fields(f"/proc/{each}/smaps_rollup", {"Rss", "Pss"}) for each in processes(pid)]
    result["Pss"] = sum(t["Pss"] for t in tree)
    result["Rss"] = sum(t["Rss"] for t in tree)
    result["processes"] = len(tree)
    return result


if __name__ == "__main__":
    sys.exit(main())


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server on a free loopback port, persistence off; and its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1",
         "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(lambda: _pings(port), 10, "redis-server", step=0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def _pings(port: int) -> bool:
    import redis  # noqa: PLC0415  # only the Redis benchmarks need it

    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.ConnectionError:
        return False


def use_redis(url: str, lease: str, prefix: str) -> None:
    """Every feedfix started from now on stores in Redis at ``url``, keys under ``prefix``
    (through the environment it inherits)."""
    os.environ.update(
        FEEDFIX_STORAGE__BACKEND="redis",
        FEEDFIX_STORAGE__URL=url,
        FEEDFIX_STORAGE__PREFIX=prefix,
        FEEDFIX_STORAGE__LEASE=lease,
    )
