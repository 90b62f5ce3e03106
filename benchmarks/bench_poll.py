"""What a poll round costs ``feedfix serve``: CPU per round by upstream behaviour, and memory.

Each phase starts a fresh upstream (``serve_upstream.py``, 100 generated ZAKER-shaped feeds of
50 items, ~250 KB each) and a fresh ``feedfix serve`` (100 feeds polled every 2 s, SQLite in a
temporary folder, ``keep_entries = 50`` so every published feed holds exactly 50 entries). After
a warm-up (every feed polled at least twice: the first poll of each is a full 200 with 50
entries cleaned), it reads the service's CPU time (utime + stime of all its threads, and of any
child process, from ``/proc/PID/stat``) over at least K rounds of 100 polls, counted from the
service's JSON poll log. CPU per round = CPU in the window / polls in the window x 100.

Phases (upstream ``--mode``):

- ``same``: every poll is a conditional GET answered 304 (no parsing at all);
- ``changed``: every poll gets a 200 in which all 50 items were edited (all cleaned again);
- ``build``: a 200 in which only ``lastBuildDate`` moved (parsed, nothing cleaned, same bytes);
- ``new-entry``: a 200 with one new item on top and the oldest gone; every poll after a
  feed's first must clean exactly one entry (``cleaned == 1`` in the log), which is checked.

Targets (reported, not enforced; targets.py): a 304 round's CPU against a changed round's, and
resident memory with 100 feeds x 50 entries after several rounds, as RSS summed over the service's
processes (one today; the sum would count pages shared after a fork twice, so it is an upper
bound; PSS is shown too). ``--items N`` gives feeds of N items and ``keep_entries = N``, to see
how memory grows; the memory target is for 50.

Usage: ``bench_poll.py [--phases same,changed,build,new-entry] [--rounds 10] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import serve_upstream as su  # noqa: E402
import targets  # noqa: E402

FEEDS = 100
ITEMS = 50
INTERVAL = 2.0
TARGET_304_SHARE = targets.POLL_304_SHARE
TARGET_RSS_MB = targets.POLL_RSS_MB
DEFAULT_ROUNDS = {"same": 10, "changed": 3, "build": 5, "new-entry": 5}


@dataclass
class Phase:
    """One mode's measurement."""

    mode: str
    rounds: float = 0.0
    polls: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    cpu_per_round_s: float = 0.0
    cpu_per_poll_ms: float = 0.0
    median_poll_ms: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    cleaned: dict[str, int] = field(default_factory=dict)
    changed: int = 0
    rss_sum_mb: float = 0.0  # over the service's processes: the target's measure
    pss_mb: float = 0.0
    vm_hwm_mb: float = 0.0  # the server process's peak
    entries_served: dict[str, int] = field(default_factory=dict)
    upstream: dict[str, Any] = field(default_factory=dict)
    check: str = ""


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def polls_per_feed(polls: list[dict[str, Any]]) -> Counter[str]:
    return Counter(p["feed"] for p in polls)


def run_phase(
    mode: str, rounds: int, workdir: Path, timeout: float, items: int, *, cleaner: str
) -> Phase:
    """Start upstream and service, warm up, measure ``rounds`` rounds, stop both."""
    phase = Phase(mode)
    folder = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=workdir))
    upstream = su.spawn_upstream(FEEDS, items, mode, extra=100 if mode == "new-entry" else None)
    service = None
    try:
        progress(f"[{mode}] upstream: {upstream.banner}")
        service = su.start_feedfix(
            folder,
            upstream.url,
            feeds=FEEDS,
            intervals=[INTERVAL],
            extra_poll=f"keep_entries = {items}",
            cleaner=cleaner,
        )
        log = service.log

        def warmed() -> bool:
            su.served(service)  # raises if the service died
            log.update()
            seen = polls_per_feed(log.polls)
            return len(seen) == FEEDS and min(seen.values()) >= 2

        su.wait_until(warmed, timeout, f"[{mode}] every feed polled twice", step=0.5)
        start_polls, cpu0, t0 = len(log.polls), su.cpu_seconds(service.pid), time.monotonic()
        want = rounds * FEEDS

        def measured() -> bool:
            log.update()
            return len(log.polls) - start_polls >= want

        su.wait_until(measured, timeout, f"[{mode}] {rounds} rounds", step=0.05)
        cpu1, t1 = su.cpu_seconds(service.pid), time.monotonic()
        window = log.polls[start_polls:]
        phase.polls = len(window)
        phase.rounds = round(phase.polls / FEEDS, 2)
        phase.wall_s = round(t1 - t0, 2)
        phase.cpu_s = round(cpu1 - cpu0, 2)
        phase.cpu_per_round_s = round((cpu1 - cpu0) / phase.polls * FEEDS, 4)
        phase.cpu_per_poll_ms = round((cpu1 - cpu0) / phase.polls * 1000, 2)
        phase.median_poll_ms = statistics.median(p["duration_ms"] for p in window)
        phase.outcomes = dict(Counter(f"{p['status']}/{p['http']}" for p in window))
        phase.cleaned = dict(Counter(str(p["cleaned"]) for p in window))
        phase.changed = sum(1 for p in window if p["changed"])
        phase.entries_served = dict(Counter(str(p["entries"]) for p in window))
        memory = su.memory_mb(service.pid)
        phase.pss_mb, phase.rss_sum_mb = round(memory["Pss"], 1), round(memory["Rss"], 1)
        phase.vm_hwm_mb = round(memory["VmHWM"], 1)
        phase.upstream = upstream.stats()
        if mode == "new-entry":
            phase.check = check_new_entry(log.polls)
        progress(f"[{mode}] {phase.polls} polls in {phase.wall_s} s, CPU {phase.cpu_s} s")
    finally:
        if service is not None:
            service.stop()
        su.stop_process(upstream.proc)
    return phase


def check_new_entry(polls: list[dict[str, Any]]) -> str:
    """Every poll after a feed's first (a 200 with one new item) cleaned exactly one entry."""
    by_feed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for poll in polls:
        by_feed[poll["feed"]].append(poll)
    later = [p for feed_polls in by_feed.values() for p in feed_polls[1:]]
    firsts = Counter(str(ps[0]["cleaned"]) for ps in by_feed.values())
    ones = sum(1 for p in later if p["cleaned"] == 1)
    other = Counter(
        f"cleaned={p['cleaned']} {p['status']}/{p['http']}" for p in later if p["cleaned"] != 1
    )
    verdict = "PASS" if later and ones == len(later) else "FAIL"
    return (
        f"{verdict}: {ones} of {len(later)} polls after each feed's first cleaned exactly 1 "
        f"entry (first polls: cleaned {dict(firsts)}; others: {dict(other) or 'none'})"
    )


def report(phases: dict[str, Phase], items: int) -> None:
    print(
        f"\nfeedfix serve, {FEEDS} feeds x {items} items (~{items * 5} KB each), "
        f"interval {INTERVAL:g} s, loopback upstream; CPU = utime+stime of the service; "
        "memory = RSS (and PSS) summed over its processes"
    )
    head = (
        f"{'phase':<10} {'rounds':>6} {'wall s':>7} {'CPU s':>6} {'CPU s/round':>11} "
        f"{'CPU ms/poll':>11} {'med poll ms':>11} {'RSS MB':>7} {'PSS MB':>7}  outcomes"
    )
    print(head)
    print("-" * len(head))
    for p in phases.values():
        print(
            f"{p.mode:<10} {p.rounds:>6} {p.wall_s:>7} {p.cpu_s:>6} {p.cpu_per_round_s:>11} "
            f"{p.cpu_per_poll_ms:>11} {p.median_poll_ms:>11} {p.rss_sum_mb:>7} {p.pss_mb:>7}  "
            f"{p.outcomes} cleaned={p.cleaned} changed={p.changed}"
        )
    print()
    same, changed = phases.get("same"), phases.get("changed")
    if same and changed and changed.cpu_per_round_s > 0:
        share = same.cpu_per_round_s / changed.cpu_per_round_s
        verdict = "PASS" if share < TARGET_304_SHARE else "FAIL"
        print(
            f"304 round / changed round CPU: {share:.1%} (target < {TARGET_304_SHARE:.0%}): "
            f"{verdict}"
        )
    build = phases.get("build")
    if build and changed and changed.cpu_per_round_s > 0:
        print(
            f"build-only round / changed round CPU: "
            f"{build.cpu_per_round_s / changed.cpu_per_round_s:.1%}"
        )
    new = phases.get("new-entry")
    if new:
        print(f"new-entry: {new.check}")
        if changed and changed.cpu_per_round_s > 0:
            print(
                f"new-entry round / changed round CPU: "
                f"{new.cpu_per_round_s / changed.cpu_per_round_s:.1%}"
            )
    for p in phases.values():
        verdict = "PASS" if p.rss_sum_mb <= TARGET_RSS_MB else "FAIL"
        print(
            f"memory after {p.mode}: RSS {p.rss_sum_mb} MB (PSS {p.pss_mb} MB, peak "
            f"{p.vm_hwm_mb} MB), entries served {p.entries_served} "
            f"(target RSS <= {TARGET_RSS_MB:g} MB): {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--phases",
        default="same,changed,build,new-entry",
        help="comma-separated upstream modes, in order",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds measured per phase (default: same 10, changed 3, build 5, new-entry 5)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds each wait may take at most"
    )
    parser.add_argument(
        "--items", type=int, default=ITEMS, help="items per feed, and keep_entries (default 50)"
    )
    su.add_cleaner_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.phases.split(",") if m.strip()]
    for mode in modes:
        if mode not in su.MODES:
            parser.error(f"unknown phase {mode!r} (choose from {', '.join(su.MODES)})")
    su.exit_on_sigterm()
    phases: dict[str, Phase] = {}
    with tempfile.TemporaryDirectory(prefix="bench_poll-") as tmp:
        for mode in modes:
            rounds = args.rounds or DEFAULT_ROUNDS[mode]
            phases[mode] = run_phase(
                mode, rounds, Path(tmp), args.timeout, args.items, cleaner=args.cleaner
            )
    if args.json:
        print(json.dumps({m: asdict(p) for m, p in phases.items()}, indent=2))
    else:
        print(f"[poll] cleaner = {args.cleaner!r}")
        report(phases, args.items)
    return 0


if __name__ == "__main__":
    sys.exit(main())
