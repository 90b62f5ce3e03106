"""Serving stays live while a big feed is cleaned, with either cleaner.

A timing assertion, but a relative one: the big poll must take over half a second (else the test
proves nothing and says so), and no request for another feed may wait a quarter of it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import upstream as up
from service_helpers import TEST_POLL, Service, http_request

BIG_ITEMS = 4000  # about 5 MB of RSS: a second or more of parsing and cleaning


@pytest.mark.parametrize("cleaner", ["thread", "process"])
def test_a_big_feed_being_cleaned_never_stalls_serving(tmp_path: Path, cleaner: str) -> None:
    """While a ~5 MB feed is parsed and cleaned, another feed keeps being served at once."""
    big_body = up.zaker_rss(range(BIG_ITEMS))
    assert len(big_body) > 4_000_000
    with up.Upstream() as upstream:
        upstream.script("/small.xml", up.feed(up.zaker_rss(range(3))))
        upstream.script("/big.xml", up.feed(up.zaker_rss(range(2))))
        feeds = [
            {"name": "small", "url": upstream.url("/small.xml"), "interval": "60s"},
            {"name": "big", "url": upstream.url("/big.xml"), "interval": "1s"},
        ]
        poll = {**TEST_POLL, "cleaner": cleaner, "timeout": "30s"}
        with Service(tmp_path, feeds, poll=poll) as svc:
            svc.wait_served("small")
            svc.wait_served("big")
            seen = len(svc.polls("big"))
            upstream.script("/big.xml", up.feed(big_body))
            latencies: list[float] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                started = time.monotonic()
                assert http_request(svc.port, "/feeds/small.atom").status == 200
                latencies.append(time.monotonic() - started)
                polls = svc.polls("big")[seen:]
                if any(p["changed"] for p in polls):
                    break
            else:
                pytest.fail("the big feed was never republished")
    busy = next(p for p in polls if p["changed"])["duration_ms"] / 1000
    assert busy > 0.5, f"the big poll took {busy:.2f} s: too short to show a stall"
    assert len(latencies) > 20
    assert max(latencies) < busy / 4, (
        f"a request waited {max(latencies):.2f} s during a {busy:.2f} s poll"
    )
