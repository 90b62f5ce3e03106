"""Load under failure: wrk against the service while every feed's upstream fails a third of
the time. Prints requests, errors, p99 and resident memory drift.

    .venv/bin/python benchmarks/bench_load.py              # 100 feeds, 60 s, 64 connections

Pass criteria (printed, not enforced): no response other than 200/304 for the known feeds,
and resident memory at the end within 10% of its value after the warm-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_serve as bs
import serve_upstream as su
import targets

LUA = """
local feeds = {FEEDS}
local i = 0
request = function()
  i = i + 1
  local path = "/feeds/f" .. (i % feeds) .. ".atom"
  if i % 2 == 0 then
    return wrk.format("GET", path, {["Accept-Encoding"] = "gzip"})
  end
  return wrk.format("GET", path)
end
"""


def main(argv: list[str] | None = None) -> int:
    """Run the load and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    su.add_cleaner_option(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_load-") as tmp_name:
        tmp = Path(tmp_name)
        upstream = su.spawn_upstream(args.feeds, args.items, "new-entry", fail_every=3)
        service = su.start_feedfix(
            tmp,
            upstream.url,
            feeds=args.feeds,
            intervals=[2, 3, 4, 5],
            extra_poll=f"keep_entries = {args.items}\nmax_backoff = 10\njitter = 0.1",
            cleaner=args.cleaner,
        )
        try:
            su.wait_until(
                lambda: all(su.served(service, f"f{i}") for i in range(args.feeds)),
                120,
                "every feed served",
            )
            script = tmp / "feeds.lua"
            script.write_text(LUA.replace("{FEEDS}", str(args.feeds)), encoding="utf-8")
            url = f"{service.url}/feeds/f0.atom"
            bs.progress(f"warm-up {args.warmup} s ...")
            warm = argparse.Namespace(
                threads=args.threads, connections=args.connections, duration=args.warmup
            )
            bs.run_wrk(url, "warm-up", warm, [], script=script)
            before_requests = bs.feed_requests(service)
            rss_warm = su.memory_mb(service.pid)["Rss"]
            polls_before = len(service.log.update())
            bs.progress(f"load {args.duration} s ...")
            started = time.monotonic()
            result = bs.run_wrk(url, "feedfix", args, [], script=script)
            elapsed = time.monotonic() - started
            rss_end = su.memory_mb(service.pid)["Rss"]
            polls = service.log.update()[polls_before:]
            after_requests = bs.feed_requests(service)
            upstream_stats = upstream.stats()
        finally:
            service.stop()
            su.stop_process(upstream.proc)
    statuses = {k: after_requests.get(k, 0) - before_requests.get(k, 0) for k in after_requests}
    bad = {k: v for k, v in statuses.items() if k not in {"200", "304"} and v}
    failed_polls = sum(1 for p in polls if p.get("status") == "error")
    drift = (rss_end - rss_warm) / rss_warm
    print(
        f"{args.feeds} feeds, upstream failing every third request; wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s over all feeds (half asking for gzip)"
    )
    print(
        f"requests {result.requests} in {elapsed:.1f} s = {result.rps:.0f}/s; "
        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms; wrk errors: "
        f"{result.errors or 'none'}"
    )
    print(
        f"served statuses: {statuses}; polls during the load: {len(polls)} "
        f"({failed_polls} failed upstream); upstream answers: {upstream_stats}"
    )
    print(
        f"resident memory (RSS of the service): {rss_warm:.1f} MB after warm-up, "
        f"{rss_end:.1f} MB at the end ({drift:+.1%})"
    )
    ok_status = not bad and not result.errors
    print(f"only 200/304 for known feeds: {'PASS' if ok_status else 'FAIL ' + str(bad)}")
    within = targets.LOAD_DRIFT
    print(f"memory drift within {within:.0%}: {'PASS' if abs(drift) <= within else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
