"""/metrics: no ``*_created`` series, and a feed that leaves the config leaves /metrics too.

`Metrics.forget_feed` is tested on its own, then end to end: `feedfix serve` with two feeds,
a config reload (SIGHUP) that drops one, and the service's own /metrics.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import upstream as up
from feedfix.service.metrics import Metrics
from service_helpers import Service, wait_for


def samples_of(text: bytes) -> list[Sample]:
    """Every sample of a Prometheus text exposition."""
    families = text_string_to_metric_families(text.decode("utf-8"))
    return [sample for family in families for sample in family.samples]


def feeds_in(samples: list[Sample]) -> set[str]:
    """The values of the ``feed`` label across ``samples``."""
    return {s.labels["feed"] for s in samples if "feed" in s.labels}


def record_polls(metrics: Metrics, feed: str) -> None:
    """What a poller records for a feed: each metric with a feed label gets a series."""
    metrics.count_poll(feed, "ok")
    metrics.count_poll(feed, "error")
    metrics.poll_errors.labels(feed, "timeout").inc()
    metrics.poll_seconds.labels(feed).observe(0.2)
    metrics.upstream_bytes.labels(feed).inc(1234)
    metrics.feed_entries.labels(feed).set(6)


def test_metrics_have_no_created_series() -> None:
    """Counters and histograms export their values without a ``*_created`` timestamp."""
    metrics = Metrics()
    record_polls(metrics, "a")
    metrics.requests.labels("feed", "200").inc()
    names = {s.name for s in samples_of(metrics.render())}
    assert "feedfix_polls_total" in names
    assert "feedfix_poll_duration_seconds_count" in names
    assert not [name for name in names if name.endswith("_created")]


def test_forget_feed_drops_every_series_of_that_feed_only() -> None:
    """After ``forget_feed("gone")`` no sample has ``feed="gone"``; the other feed's series
    and the feed-less ones stay; the forgotten feed's 304 share starts afresh if it returns."""
    metrics = Metrics()
    record_polls(metrics, "gone")
    record_polls(metrics, "kept")
    metrics.requests.labels("feed", "200").inc()
    before = samples_of(metrics.render())
    assert feeds_in(before) == {"gone", "kept"}

    metrics.forget_feed("gone")
    after = samples_of(metrics.render())
    assert feeds_in(after) == {"kept"}
    kept = sorted(
        (s.name, sorted(s.labels.items())) for s in before if s.labels.get("feed") != "gone"
    )
    assert sorted((s.name, sorted(s.labels.items())) for s in after) == kept

    metrics.count_poll("gone", "not_modified")
    share = [s for s in samples_of(metrics.render()) if s.name == "feedfix_not_modified_share"]
    assert {s.labels["feed"]: s.value for s in share} == {"kept": 0.0, "gone": 1.0}


def test_a_feed_removed_by_reload_leaves_metrics(tmp_path: Path) -> None:
    """`feedfix serve` polls two feeds; SIGHUP with one of them gone from the config removes
    every /metrics series labelled with it, and the remaining feed keeps its series."""
    with up.Upstream() as upstream:
        upstream.script("/a", up.feed(up.zaker_rss(range(1, 4))))
        upstream.script("/b", up.feed(up.zaker_rss(range(1, 4))))
        feeds = [{"name": n, "url": upstream.url(f"/{n}"), "interval": 3600} for n in "ab"]
        with Service(tmp_path, feeds) as svc:
            svc.wait_for_poll("a")
            svc.wait_for_poll("b")
            assert feeds_in(samples_of(svc.get("/metrics").body)) == {"a", "b"}
            svc.feeds = feeds[:1]
            svc.write_config()
            svc.reload()
            wait_for(
                lambda: feeds_in(samples_of(svc.get("/metrics").body)) == {"a"},
                10,
                "feed b's series to leave /metrics",
                interval=0.1,
            )
