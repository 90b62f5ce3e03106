"""Replicas on one Redis: upstream requests with 1 and 3 replicas, failover time, memory.

Starts its own ``redis-server`` (loopback, a free port, no persistence) and the generated
upstream of ``serve_upstream.py``, then:

- ``requests``: FEEDS feeds polled every INTERVAL s by one replica, then by three, for the
  same time; the upstream's request counts, and their ratio (target 1.0);
- ``failover``: a scripted upstream (``tests/upstream.py``) whose feed answers slowly, so
  the replica polling it is caught mid-poll; it is killed with SIGKILL and the time to the
  next request from another replica is measured, ``--kills`` times (median reported);
- ``memory``: one replica with 100 feeds x 50 items on Redis (as ``bench_poll.py`` measures
  SQLite): RSS and PSS after every feed was polled twice.

Usage: ``bench_replicas.py [--parts requests,failover,memory] [--kills 5] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import serve_upstream as su  # noqa: E402

FEEDS = 20
INTERVAL = 2.0
LEASE = "3s"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def requests_part(url: str, workdir: Path, seconds: float) -> dict[str, Any]:
    """Upstream requests with one replica, then three, over the same time."""
    counts = {}
    for replicas in (1, 3):
        upstream = su.spawn_upstream(FEEDS, 10, "same")
        su.use_redis(url, LEASE, f"b{uuid.uuid4().hex[:8]}:")
        services = []
        try:
            for index in range(replicas):
                folder = Path(tempfile.mkdtemp(prefix=f"r{replicas}-{index}-", dir=workdir))
                services.append(
                    su.start_feedfix(folder, upstream.url, feeds=FEEDS, intervals=[INTERVAL])
                )
            for service in services:
                su.wait_until(lambda s=service: su.served(s), 60, "served", step=0.2)
            before = upstream.stats()
            time.sleep(seconds)
            after = upstream.stats()
            counts[replicas] = sum(after.get(k, 0) - before.get(k, 0) for k in ("200", "304"))
        finally:
            for service in services:
                service.stop()
            su.stop_process(upstream.proc)
        progress(f"[requests] {replicas} replica(s): {counts[replicas]} upstream requests")
    return {"one": counts[1], "three": counts[3], "ratio": round(counts[3] / counts[1], 3)}


def failover_part(url: str, workdir: Path, kills: int) -> dict[str, Any]:
    """kill -9 of the replica caught mid-poll; seconds until another polls the feed."""
    import upstream as up  # noqa: PLC0415
    from service_helpers import TEST_POLL, Service  # noqa: PLC0415

    times = []
    with up.Upstream() as server:
        for kill in range(kills):
            server.script("/a", up.feed(up.zaker_rss(range(1, 4))))
            prefix = f"f{uuid.uuid4().hex[:8]}:"
            env = {
                "FEEDFIX_STORAGE__BACKEND": "redis",
                "FEEDFIX_STORAGE__URL": url,
                "FEEDFIX_STORAGE__PREFIX": prefix,
                "FEEDFIX_STORAGE__LEASE": LEASE,
            }
            replicas = [
                Service(
                    workdir / f"k{kill}-{i}",
                    [{"name": "a", "url": server.url("/a")}],
                    poll={
                        **TEST_POLL,
                        "interval": INTERVAL,
                        "user_agent": f"r-{i}",
                        "timeout": "30s",
                    },
                    env=env,
                ).start()
                for i in range(3)
            ]
            try:
                for replica in replicas:
                    replica.wait_served("a", timeout=30)
                server.script("/a", up.slow(up.feed(up.zaker_rss(range(1, 5))), 60))
                seen = len(server.requests_for("/a"))
                server.wait_for_requests("/a", seen + 1, timeout=30, answered=False)
                holder = int((server.requests_for("/a")[-1].header("User-Agent") or "r-0")[2:])
                replicas[holder].kill()
                killed = time.monotonic()
                server.script("/a", up.feed(up.zaker_rss(range(1, 5))))
                after = len(server.requests_for("/a"))
                server.wait_for_requests("/a", after + 1, timeout=30, answered=False)
                times.append(round(server.requests_for("/a")[after].at - killed, 2))
                progress(f"[failover] kill {kill + 1}: {times[-1]} s")
            finally:
                for replica in replicas:
                    replica.close()
    return {
        "lease_s": LEASE,
        "interval_s": INTERVAL,
        "seconds": times,
        "median_s": statistics.median(times),
    }


def memory_part(url: str, workdir: Path) -> dict[str, Any]:
    """One replica, 100 feeds x 50 items on Redis: memory after every feed polled twice."""
    upstream = su.spawn_upstream(100, 50, "same")
    su.use_redis(url, LEASE, f"m{uuid.uuid4().hex[:8]}:")
    folder = Path(tempfile.mkdtemp(prefix="mem-", dir=workdir))
    service = su.start_feedfix(
        folder, upstream.url, feeds=100, intervals=[INTERVAL], extra_poll="keep_entries = 50"
    )
    try:

        def warmed() -> bool:
            su.served(service)
            service.log.update()
            seen = Counter(p["feed"] for p in service.log.polls)
            return len(seen) == 100 and min(seen.values()) >= 2

        su.wait_until(warmed, 300, "every feed polled twice", step=0.5)
        memory = su.memory_mb(service.pid)
    finally:
        service.stop()
        su.stop_process(upstream.proc)
    return {"rss_mb": round(memory["Rss"], 1), "pss_mb": round(memory["Pss"], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="requests,failover,memory")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    su.exit_on_sigterm()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_replicas-") as tmp:
        redis_proc, url = su.start_redis(Path(tmp))
        try:
            parts = args.parts.split(",")
            if "requests" in parts:
                results["requests"] = requests_part(url, Path(tmp), args.seconds)
            if "failover" in parts:
                results["failover"] = failover_part(url, Path(tmp), args.kills)
            if "memory" in parts:
                results["memory"] = memory_part(url, Path(tmp))
        finally:
            redis_proc.send_signal(signal.SIGTERM)
            redis_proc.wait(10)
    for part, figures in results.items():
        print(f"{part}: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
