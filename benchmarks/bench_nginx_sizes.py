"""nginx's own rate for files of nearly the same size: why bench_serve's per-format ratios
against nginx are read against feedfix's own Atom.

Usage::

    .venv/bin/python benchmarks/bench_nginx_sizes.py [--sizes 180000,187761,...] [--duration 4]
        [--repeat 2]

Serves random files of each size with nginx (bench_serve's configuration: one worker,
sendfile, tcp_nopush) and runs wrk against each in turn, ``--repeat`` rounds. On loopback
the rate is not a smooth function of the size: on the 2-core VM of 2026-12-07 files of
200,000–207,870 bytes went at 38–42k requests/s and files of 209,000–215,000 at 23–31k, so
the RSS of bench_serve's feed (207,870 bytes) is served by nginx ~30 % faster than its Atom
(210,643), while feedfix, bound by its per-request CPU, serves both at the same rate.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_serve as bs  # noqa: E402
import serve_upstream as su  # noqa: E402

SIZES = "180000,187761,200000,205000,207870,209000,210643,215000"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=SIZES, help="comma-separated byte counts")
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    rates: dict[int, list[float]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="bench_nginx_sizes-") as tmp:
        folder = Path(tmp)
        bodies = {f"{size}": (os.urandom(size), "application/octet-stream") for size in sizes}
        nginx, urls, _ = bs.serve_static(folder, bodies, "1")
        try:
            for _ in range(args.repeat):
                for size in sizes:
                    run = bs.run_wrk(urls[f"{size}"], f"nginx {size}", args, [])
                    rates[size].append(run.rps)
        finally:
            su.stop_process(nginx, signal.SIGQUIT)
    print(f"{'bytes':>9}  requests/s by round")
    for size, values in rates.items():
        print(f"{size:>9,}  " + "  ".join(f"{v:>8,.0f}" for v in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
