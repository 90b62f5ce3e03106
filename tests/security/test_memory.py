"""Issue 18, class 3: memory bounded by the input.

A single 9.8 MB entry (under the service's 10 MB cap) took ``convert`` to 874 MB and the
service from 129 MB to 990 MB: the HTML of one entry becomes one lxml tree (hundreds of
bytes per element), then copies of it per rule. Many small entries of the same total size
cost a few times their size. The bound asked for: peak memory at most 15x the input, for
one huge entry as for many small ones.

Measured as the kernel counts it: ``ru_maxrss`` of a ``convert`` child (``os.wait4``), and
``VmHWM`` of the ``feedfix serve`` process, each less the same process's peak on a trivial
input, so that the interpreter and its libraries are not counted against the input.
"""

from __future__ import annotations

import os
from pathlib import Path

from security_helpers import rss, rss_item, run_feedfix

from service_helpers import Service
from upstream import Upstream, feed

MAX_FACTOR = 15
SIZE = 4_000_000  # bytes of input: big enough that today's ~60-90x shows, cheap once fixed


def _one_huge_entry(size: int) -> bytes:
    """One entry whose content (in CDATA, as RSSHub writes it) is ``size`` bytes of small
    paragraphs: the most elements per byte a real article has."""
    body = "<p>x</p>" * (size // 8)
    return rss(rss_item("").replace("<description></description>",
                                    f"<description><![CDATA[{body}]]></description>"))  # fmt: skip


def _many_small_entries(size: int) -> bytes:
    """Entries of 2 KB each, ``size`` bytes in all."""
    body = "<p>x</p>" * 250
    count = size // 2100
    return rss(*(rss_item("", n=i).replace("<description></description>",
                                           f"<description><![CDATA[{body}]]></description>")
                 for i in range(count)))  # fmt: skip


def _convert_peak(tmp_path: Path, name: str, data: bytes) -> int:
    source = tmp_path / f"{name}.xml"
    source.write_bytes(data)
    run = run_feedfix(["convert", str(source), "-o", os.devnull], timeout=300)
    assert run.returncode == 0, run.err[-500:]
    return run.peak_rss


def _check(tmp_path: Path, name: str, data: bytes) -> None:
    base = _convert_peak(tmp_path, "tiny", rss(rss_item()))
    peak = _convert_peak(tmp_path, name, data)
    factor = (peak - base) / len(data)
    assert factor <= MAX_FACTOR, (
        f"{name}: {len(data) / 1e6:.1f} MB of input took {(peak - base) / 1e6:.0f} MB "
        f"over the {base / 1e6:.0f} MB baseline: {factor:.0f}x (at most {MAX_FACTOR}x)"
    )


def test_convert_one_huge_entry_is_bounded(tmp_path: Path) -> None:
    """Attack: one entry of 4 MB of ``<p>x</p>`` (half a million elements).

    Must hold: ``convert``'s peak RSS grows by at most 15x the input."""
    _check(tmp_path, "one huge entry", _one_huge_entry(SIZE))


def test_convert_many_small_entries_is_bounded(tmp_path: Path) -> None:
    """Guard (holds today, ~8x): 4 MB of 2 KB entries stays within 15x too."""
    _check(tmp_path, "many small entries", _many_small_entries(SIZE))


def _vm_hwm(pid: int) -> int:
    """The peak resident set of a running process (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_the_service_polling_one_huge_entry_is_bounded(tmp_path: Path) -> None:
    """Attack: an upstream feed of one 4 MB entry (the service's cap is 10 MB).

    Must hold: the service's peak RSS while it polls, cleans, stores and serves it grows by
    at most 15x the feed's size over its peak with a one-entry feed."""
    big = _one_huge_entry(SIZE)
    with Upstream() as upstream:
        upstream.script("/f.xml", feed(rss(rss_item())))
        rows = [{"name": "f", "url": upstream.url("/f.xml"), "interval": "2s"}]
        with Service(tmp_path, rows) as service:
            service.wait_served("f")
            assert service.proc is not None
            polls = len(service.polls("f"))
            service.wait_for_poll("f", after=polls, timeout=10)  # a steady state
            base = _vm_hwm(service.proc.pid)
            upstream.script("/f.xml", feed(big))
            polls = len(service.polls("f"))
            record = service.wait_for_poll("f", after=polls, where=lambda r: bool(r.get("changed")),
                                           timeout=60)  # fmt: skip
            assert record["status"] == "ok", record
            assert service.feed("f").status == 200
            peak = _vm_hwm(service.proc.pid)
    factor = (peak - base) / len(big)
    assert factor <= MAX_FACTOR, (
        f"the service grew from {base / 1e6:.0f} MB to {peak / 1e6:.0f} MB for a "
        f"{len(big) / 1e6:.1f} MB feed: {factor:.0f}x (at most {MAX_FACTOR}x)"
    )
