"""What rendering RSS 2.0 and JSON Feed costs beside the Atom, on the same cleaned feed.

Usage::

    .venv/bin/python benchmarks/bench_formats.py [--items 1000] [--repeat 15] [--json]

Makes the ZAKER-shaped feed of ``make_feed.py`` (``--items``, 1,000 ≈ 5 MB), converts it once
(parse and clean: the model every format is rendered from), then renders it as Atom, RSS and
JSON Feed, interleaved, ``--repeat`` times each, in this process (the render alone: no parse,
no cleaning, no I/O), and reports the median and best time of each and each format's median
over the Atom's median in the same run, against targets.py's ``RENDER_RATIO``.

It also times what the service does on the first request for a format after a change: read
the Atom back (``republish.other_format``: parse and render) and compress the result, for
information beside a poll's whole clean-and-render.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import targets  # noqa: E402
from make_feed import make_feed  # noqa: E402

from feedfix.core.pipeline import convert  # noqa: E402
from feedfix.core.render import FORMATS  # noqa: E402
from feedfix.core.republish import other_format  # noqa: E402

TARGET = targets.RENDER_RATIO
SELF_URL = "https://feeds.example/feeds/f0.atom"


def timed(work: Callable[[], object]) -> float:
    """Seconds one call of ``work`` takes (the garbage collector held off, as a render in the
    worker runs between collections)."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    data = make_feed(args.items)
    started = time.perf_counter()
    cleaned = convert(data, "bench.xml").feed
    clean_s = time.perf_counter() - started
    times: dict[str, list[float]] = {name: [] for name in FORMATS}
    sizes = {}
    for _ in range(args.repeat):
        for name, fmt in FORMATS.items():
            url = SELF_URL.replace(".atom", f".{name}")
            times[name].append(timed(partial(fmt.render, cleaned, self_url=url)))
    for name, fmt in FORMATS.items():
        sizes[name] = len(fmt.render(cleaned, self_url=SELF_URL.replace(".atom", f".{name}")))
    atom = FORMATS["atom"].render(cleaned, self_url=SELF_URL)
    derive: dict[str, list[float]] = {"rss": [], "json": []}

    def first_request(name: str) -> bytes:
        return gzip.compress(other_format(atom, name, SELF_URL), 6, mtime=0)

    for _ in range(max(3, args.repeat // 3)):
        for name, seconds in derive.items():
            seconds.append(timed(partial(first_request, name)))
    medians = {name: statistics.median(values) for name, values in times.items()}
    render: dict[str, dict[str, float]] = {
        name: {
            "median_s": round(medians[name], 4),
            "best_s": round(min(values), 4),
            "bytes": sizes[name],
            "ratio_to_atom": round(medians[name] / medians["atom"], 3),
        }
        for name, values in times.items()
    }
    first = {n: round(statistics.median(v), 4) for n, v in derive.items()}
    result = {
        "items": args.items,
        "input_bytes": len(data),
        "parse_and_clean_s": round(clean_s, 3),
        "render": render,
        "first_request_render_s": first,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{args.items} items ({len(data):,} bytes in), parsed and cleaned once in "
        f"{clean_s:.2f} s; each render {args.repeat} times, interleaved"
    )
    print(f"{'format':<6} {'median s':>9} {'best s':>8} {'bytes':>11} {'/ atom':>7}")
    for name, row in render.items():
        print(
            f"{name:<6} {row['median_s']:>9.4f} {row['best_s']:>8.4f} {row['bytes']:>11,} "
            f"{row['ratio_to_atom']:>6.2f}x"
        )
    for name in ("rss", "json"):
        ratio = render[name]["ratio_to_atom"]
        verdict = "PASS" if ratio <= TARGET else "FAIL"
        print(f"{name} render / atom render: {ratio:.2f}x (target <= {TARGET:g}x): {verdict}")
    for name, median in first.items():
        print(
            f"first request of {name} after a change (read the Atom back, render, gzip): "
            f"{median:.3f} s (information)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
