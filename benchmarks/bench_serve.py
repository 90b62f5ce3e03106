"""How fast ``feedfix serve`` answers ``GET /feeds/{name}.atom`` (and ``.rss``, ``.json``),
against nginx serving the same bytes as a static file, while feedfix's poll loop is busy.

For each upstream mode (``--modes``, default ``same,new-entry``) it starts:

- ``serve_upstream.py`` with 100 generated ZAKER-shaped feeds (50 items, ~250 KB each); feed
  ``f0`` never changes (``--static 1``), the others behave as the mode says (``same``: every
  poll a 304; ``new-entry``: every poll a 200 with one new item, so one entry cleaned, the feed
  rendered, compressed and stored again);
- ``feedfix serve`` on a temporary config: 100 feeds, intervals 2, 3, 4, 5 s (cycled),
  ``keep_entries = 50``, SQLite in a temporary folder;
- once every feed is served, the exact bytes of ``/feeds/f0.atom`` (50 entries, no gzip) are
  saved to a file, and so are those of ``/feeds/f0.rss`` and ``/feeds/f0.json`` (each format
  of ``--formats``; the first request of each renders it), and nginx (``worker_processes 1``:
  one process, like feedfix's single event loop; ``sendfile on``; ``keepalive_requests``
  raised so neither side closes wrk's connections; access log off) serves those files with
  the same Content-Types;

then runs, for each format, ``wrk -t2 -c64 -d15s --latency`` against (a) nginx, 200;
(b) feedfix, 200; (c) feedfix with ``If-None-Match: <served ETag>``, 304; (d) nginx with its
own ETag, 304 (for information). Everything runs on the same machine at the same time, so
nginx's figure is the baseline for this machine and this background load: the ratios are what
counts (with ``--repeat R`` the runs are repeated R times, interleaved, and each ratio is the
median of the rounds' ratios). feedfix's ``/metrics`` request counters are read around each
feedfix run to confirm the statuses.

Targets (reported, not enforced): feedfix's 200 and 304 against nginx's 200, and each other
format's 200 rate against feedfix's own Atom's, as targets.py says (and benchmarks/README.md's
table states). Each format's ratio to nginx is printed too, but nginx's own rate is not a
smooth function of the file's size on loopback (``bench_nginx_sizes.py``: the RSS of this
feed, 2.8 KB smaller than its Atom, goes ~30 % faster through nginx), so a format is judged
against feedfix's Atom in the same round.

Usage: ``bench_serve.py [--modes same,new-entry] [--formats atom,rss,json] [--duration 15]
[--connections 64]
[--threads 2] [--repeat 1] [--nginx-workers 1|auto] [--no-fastpath] [--backend sqlite|redis]
[--save FILE] [--json]``. ``--backend redis`` stores in a redis-server of its own (serving
is from memory either way: the figure should match SQLite's).
``--no-fastpath`` runs feedfix with ``FEEDFIX_FASTPATH=0``: aiohttp answers every request, to
measure what the fast path is for (the targets are the fast path's). Needs ``wrk``
and ``nginx`` (Debian: ``apt-get install wrk nginx-light``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import serve_upstream as su  # noqa: E402
import targets  # noqa: E402

FEEDS = 100
ITEMS = 50
INTERVALS = [2.0, 3.0, 4.0, 5.0]
TARGET_200 = targets.SERVE_200
TARGET_304 = targets.SERVE_304
TARGET_FORMAT = targets.SERVE_FORMAT_SHARE
SUFFIXES = {"atom": "", "rss": " rss", "json": " json"}  # how the runs of a format are named
NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ }}
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        default_type "{default}";
        location ~ \\.atom$ {{ default_type "{atom}"; }}
        location ~ \\.rss$ {{ default_type "{rss}"; }}
        location ~ \\.json$ {{ default_type "{json}"; }}
    }}
}}
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult:
    """One wrk run."""

    target: str
    round: int = 1
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    transfer: str = ""
    errors: str = ""
    statuses: dict[str, int] = field(default_factory=dict)  # from feedfix's metrics
    service_cpu_s: float = 0.0  # feedfix CPU during the run, user + system
    service_sys_s: float = 0.0  # of which system (kernel)
    polls: int = 0  # polls feedfix completed during the run


@dataclass
class ModeResult:
    """Everything measured with one upstream mode."""

    mode: str
    body_bytes: dict[str, int] = field(default_factory=dict)  # by format
    entries: int = 0
    etag: dict[str, str] = field(default_factory=dict)
    nginx_etag: dict[str, str] = field(default_factory=dict)
    runs: list[WrkResult] = field(default_factory=list)
    rss_sum_mb: float = 0.0  # over feedfix's processes
    pss_mb: float = 0.0
    polls_total: int = 0
    ratios: dict[str, list[float]] = field(default_factory=dict)  # one per round


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def parse_wrk(target: str, out: str) -> WrkResult:
    """The figures of ``wrk --latency`` output."""
    result = WrkResult(target)
    if m := re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out):
        result.requests = int(m.group(1))
        result.seconds = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result.rps = float(m.group(1))
    if m := re.search(r"^\s+50%\s+(\S+)", out, re.M):
        result.p50_ms = latency_ms(m.group(1))
    if m := re.search(r"^\s+99%\s+(\S+)", out, re.M):
        result.p99_ms = latency_ms(m.group(1))
    if m := re.search(r"Transfer/sec:\s+(\S+)", out):
        result.transfer = m.group(1)
    errors = re.findall(r"(Socket errors:.*|Non-2xx or 3xx responses:.*)", out)
    result.errors = "; ".join(e.strip() for e in errors)
    return result


def run_wrk(
    url: str,
    target: str,
    args: argparse.Namespace,
    headers: list[str],
    script: Path | None = None,
) -> WrkResult:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
               "--latency", "--timeout", "5s"]  # fmt: skip
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse_wrk(target, done.stdout)


def feed_requests(service: su.Service) -> dict[str, int]:
    """``feedfix_http_requests_total{route="feed",status=…}`` from /metrics."""
    status, _, body = su.http_get(f"{service.url}/metrics")
    assert status == 200, status
    counts: dict[str, int] = {}
    pattern = r'^feedfix_http_requests_total\{route="feed",status="(\d+)"\} ([\d.e+]+)$'
    for m in re.finditer(pattern, body.decode(), re.M):
        counts[m.group(1)] = int(float(m.group(2)))
    return counts


def start_nginx(
    tmp: Path,
    port: int,
    workers: str,
    types: dict[str, str],
    default: str = "application/octet-stream",
) -> subprocess.Popen[bytes]:
    """nginx in the foreground on its own config, serving ``tmp/www`` (each format's file
    with the Content-Type feedfix sends it with, ``types``; any other file as ``default``)."""
    conf = tmp / "nginx.conf"
    kinds = {fmt: types.get(fmt, "application/octet-stream") for fmt in SUFFIXES}
    conf.write_text(
        NGINX_CONF.format(workers=workers, tmp=tmp, port=port, default=default, **kinds),
        encoding="utf-8",
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def serve_static(
    tmp: Path, bodies: dict[str, tuple[bytes, str]], workers: str
) -> tuple[subprocess.Popen[bytes], dict[str, str], dict[str, str]]:
    """nginx serving each format's bytes at ``/feeds/f0.{fmt}`` (``bodies``: format -> bytes
    and Content-Type): its process, and each format's URL and ETag."""
    www = tmp / "www" / "feeds"
    www.mkdir(parents=True)
    for folder in (tmp, tmp / "www", www):
        folder.chmod(0o755)  # nginx's worker runs as nobody when started as root
    for fmt, (body, _) in bodies.items():
        static = www / f"f0.{fmt}"
        static.write_bytes(body)
        static.chmod(0o644)
    port = su.free_port()
    nginx = start_nginx(tmp, port, workers, {fmt: kind for fmt, (_, kind) in bodies.items()})
    urls = {fmt: f"http://127.0.0.1:{port}/feeds/f0.{fmt}" for fmt in bodies}
    etags = {}
    for fmt, (body, kind) in bodies.items():

        def nginx_ok(url: str = urls[fmt]) -> tuple[int, dict[str, str], bytes] | None:
            if nginx.poll() is not None:
                raise RuntimeError(f"nginx exited; see {tmp / 'nginx-error.log'}")
            try:
                got = su.http_get(url, timeout=2)
            except OSError:
                return None
            return got if got[0] == 200 else None

        _, headers, served = su.wait_until(nginx_ok, 20, "nginx")
        assert served == body, f"nginx serves other bytes for {fmt}"
        assert headers["Content-Type"] == kind, headers
        etags[fmt] = headers.get("ETag", "")
    return nginx, urls, etags


def measure(
    service: su.Service, name: str, url: str, headers: list[str], args: argparse.Namespace
) -> WrkResult:
    """One wrk run, with feedfix's CPU, polls and response statuses around it."""
    before = feed_requests(service)
    service.log.update()
    polls0, (user0, sys0) = len(service.log.polls), su.cpu_times(service.pid)
    run = run_wrk(url, name, args, headers)
    user1, sys1 = su.cpu_times(service.pid)
    run.service_cpu_s = round(user1 + sys1 - user0 - sys0, 2)
    run.service_sys_s = round(sys1 - sys0, 2)
    service.log.update()
    run.polls = len(service.log.polls) - polls0
    after = feed_requests(service)
    run.statuses = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    return run


def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> ModeResult:
    """Upstream, feedfix and nginx up; the wrk runs; everything down."""
    result = ModeResult(mode)
    tmp = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=workdir))
    upstream = su.spawn_upstream(FEEDS, ITEMS, mode, static=1, extra=100)
    service = nginx = None
    try:
        progress(f"[{mode}] upstream: {upstream.banner}")
        service = su.start_feedfix(
            tmp,
            upstream.url,
            feeds=FEEDS,
            intervals=INTERVALS,
            extra_poll="keep_entries = 50",
            cleaner=args.cleaner,
        )
        su.wait_until(lambda: su.served(service), 60, "/feeds/f0.atom")

        def all_polled() -> bool:
            service.log.update()
            return len({p["feed"] for p in service.log.polls}) == FEEDS

        su.wait_until(all_polled, 120, "every feed polled once", step=0.5)
        bodies = {}
        for fmt in args.formats:  # the first request of a format renders it
            status, headers, body = su.http_get(f"{service.url}/feeds/f0.{fmt}")
            assert status == 200 and "Content-Encoding" not in headers, (status, headers)
            bodies[fmt] = (body, headers["Content-Type"])
            result.body_bytes[fmt], result.etag[fmt] = len(body), headers["ETag"]
            progress(f"[{mode}] f0.{fmt}: {len(body):,} bytes, ETag {headers['ETag']}")
        result.entries = bodies[args.formats[0]][0].count(b"<entry>")
        if args.save:
            Path(args.save).write_bytes(bodies[args.formats[0]][0])
        nginx, nginx_urls, result.nginx_etag = serve_static(tmp, bodies, args.nginx_workers)
        plan = []
        for fmt in args.formats:
            suffix, feed_url = SUFFIXES[fmt], f"{service.url}/feeds/f0.{fmt}"
            plan += [
                (f"nginx 200{suffix}", nginx_urls[fmt], [], None),
                (f"feedfix 200{suffix}", feed_url, [], "200"),
                (f"feedfix 304{suffix}", feed_url, [f"If-None-Match: {result.etag[fmt]}"], "304"),
            ]
            if result.nginx_etag[fmt]:
                etag = [f"If-None-Match: {result.nginx_etag[fmt]}"]
                plan.append((f"nginx 304{suffix}", nginx_urls[fmt], etag, None))
        for round_no in range(1, args.repeat + 1):
            for name, url, extra_headers, expect in plan:
                progress(f"[{mode}] round {round_no}: wrk {name} ...")
                run = measure(service, name, url, extra_headers, args)
                run.round = round_no
                if expect is not None and run.statuses.get(expect, 0) < run.requests:
                    progress(f"[{mode}] WARNING {name}: {run.statuses} for {run.requests}")
                result.runs.append(run)
                time.sleep(1)
        memory = su.memory_mb(service.pid)
        result.pss_mb, result.rss_sum_mb = round(memory["Pss"], 1), round(memory["Rss"], 1)
        service.log.update()
        result.polls_total = len(service.log.polls)
        result.ratios = ratios(result.runs)
    finally:
        su.stop_process(nginx, signal.SIGQUIT)
        if service is not None:
            service.stop()
        su.stop_process(upstream.proc)
    return result


def ratios(runs: list[WrkResult]) -> dict[str, list[float]]:
    """Each round's feedfix/nginx throughput ratios (same round: same background), for each
    format, and each other format's 200 ratio against the Atom's."""
    out: dict[str, list[float]] = {}
    for round_no in sorted({r.round for r in runs}):
        rps = {r.target: r.rps for r in runs if r.round == round_no}
        for suffix in SUFFIXES.values():
            pairs = [("feedfix 200", "nginx 200"), ("feedfix 304", "nginx 200"),
                     ("feedfix 304", "nginx 304")]  # fmt: skip
            for over, under in ((a + suffix, b + suffix) for a, b in pairs):
                if rps.get(over) and rps.get(under):
                    name = over.replace(" ", "") + "/" + under.replace(" ", "")
                    out.setdefault(name, []).append(round(rps[over] / rps[under], 3))
        atom = out.get("feedfix200/nginx200", [])
        for fmt in ("rss", "json"):
            mine = out.get(f"feedfix200{fmt}/nginx200{fmt}", [])
            if len(atom) == len(mine) == round_no:
                share = f"{fmt} ratio/atom ratio (200)"
                out.setdefault(share, []).append(round(mine[-1] / atom[-1], 3))
            # feedfix against itself: nginx's own rate moves with the body's exact size
            if rps.get(f"feedfix 200 {fmt}") and rps.get("feedfix 200"):
                ratio = rps[f"feedfix 200 {fmt}"] / rps["feedfix 200"]
                out.setdefault(f"feedfix200{fmt}/feedfix200", []).append(round(ratio, 3))
    return out


def report(results: list[ModeResult], args: argparse.Namespace) -> None:
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, loopback; "
        f"nginx worker_processes {args.nginx_workers}; feedfix (cleaner = {args.cleaner}"
        f"{', no fast path: aiohttp answers every request' if args.no_fastpath else ''}): "
        f"{FEEDS} feeds polled every "
        f"{'/'.join(f'{i:g}' for i in INTERVALS)} s"
    )
    for r in results:
        sizes = ", ".join(f"{fmt} {size:,}" for fmt, size in r.body_bytes.items())
        print(
            f"\nupstream mode {r.mode!r}: f0 = {sizes} bytes, {r.entries} entries; "
            f"feedfix RSS {r.rss_sum_mb} MB (PSS {r.pss_mb} MB) at the end "
            f"({r.polls_total} polls done)"
        )
        head = (
            f"{'target':<15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'transfer/s':>11} "
            f"{'ff CPU s':>8} {'ff sys s':>8} {'polls':>6}  statuses / errors"
        )
        print(head)
        print("-" * len(head))
        for run in r.runs:
            label = f"{run.target} #{run.round}" if args.repeat > 1 else run.target
            print(
                f"{label:<15} {run.rps:>9.0f} {run.p50_ms:>8.2f} {run.p99_ms:>8.2f} "
                f"{run.transfer:>11} {run.service_cpu_s:>8} {run.service_sys_s:>8} {run.polls:>6}  "
                f"{run.statuses or ''} {run.errors}"
            )
        targets = {}
        for suffix in SUFFIXES.values():
            short = suffix.strip()
            targets[f"feedfix200{short}/nginx200{short}"] = TARGET_200
            targets[f"feedfix304{short}/nginx200{short}"] = TARGET_304
            if short:  # a format against feedfix's own Atom: nginx's rate moves with the size
                targets[f"feedfix200{short}/feedfix200"] = TARGET_FORMAT
        for name, values in r.ratios.items():
            median = statistics.median(values)
            rounds = ", ".join(f"{v:.2f}" for v in values)
            target = targets.get(name)
            verdict = (
                f"(target >= {target:g}x): {'PASS' if median >= target else 'FAIL'}"
                if target
                else "(information)"
            )
            each = f" [rounds: {rounds}]" if len(values) > 1 else ""
            print(f"{name}: {median:.2f}x{each} {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="same,new-entry", help="upstream modes, in order")
    parser.add_argument(
        "--formats", default="atom,rss,json", help="the formats served and measured, in order"
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the four runs, interleaved; ratios are medians",
    )
    parser.add_argument("--nginx-workers", default="1", help="worker_processes: 1 or auto")
    su.add_cleaner_option(parser)
    parser.add_argument(
        "--no-fastpath",
        action="store_true",
        help="run feedfix with FEEDFIX_FASTPATH=0 (aiohttp answers every request)",
    )
    parser.add_argument(
        "--backend", choices=("sqlite", "redis"), default="sqlite",
        help="[storage] backend (redis: a redis-server of its own, on loopback)",
    )  # fmt: skip
    parser.add_argument("--save", metavar="FILE", help="keep a copy of the served f0 bytes")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            parser.error(f"{tool} not found (Debian: apt-get install wrk nginx-light)")
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if not args.formats or set(args.formats) - set(SUFFIXES):
        parser.error(f"--formats: choose among {', '.join(SUFFIXES)}")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in su.MODES:
            parser.error(f"unknown mode {mode!r} (choose from {', '.join(su.MODES)})")
    if args.no_fastpath:
        os.environ["FEEDFIX_FASTPATH"] = "0"  # inherited by the feedfix child
    su.exit_on_sigterm()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_serve-") as tmp, contextlib.ExitStack() as stack:
        Path(tmp).chmod(0o755)
        if args.backend == "redis":
            redis, url = su.start_redis(Path(tmp))
            stack.callback(su.stop_process, redis)
        for mode in modes:
            if args.backend == "redis":
                su.use_redis(url, "15s", f"{mode}:")
            results.append(run_mode(mode, args, Path(tmp)))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
