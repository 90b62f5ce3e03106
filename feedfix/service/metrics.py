"""Prometheus metrics for the service, in a registry of its own (so tests can make many).

No ``*_created`` series: prometheus-client adds one per counter and histogram child by
default, which doubles /metrics with timestamps that Prometheus does not use in the text
format. The switch is process-wide, and only feedfix's own metrics live in this process.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client


class Metrics:
    """Every metric the service exports; names start with ``feedfix_``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter(
            "feedfix_polls",
            "Polls by outcome (ok, not_modified, error)",
            ["feed", "outcome"],
            registry=r,
        )
        self.poll_errors = Counter(
            "feedfix_poll_errors", "Failed polls by kind of failure", ["feed", "kind"], registry=r
        )
        self.poll_seconds = Histogram(
            "feedfix_poll_duration_seconds",
            "Time from request to stored result",
            ["feed"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.upstream_bytes = Counter(
            "feedfix_upstream_bytes", "Body bytes received from upstreams", ["feed"], registry=r
        )
        self.not_modified_share = Gauge(
            "feedfix_not_modified_share",
            "Share of this process's polls answered 304 Not Modified",
            ["feed"],
            registry=r,
        )
        self.rule_changes = Counter(
            "feedfix_rule_changes", "Changes made by each cleaning rule", ["rule"], registry=r
        )
        self.entries_cleaned = Counter(
            "feedfix_entries",
            "Entries cleaned anew or reused from the last poll",
            ["kind"],
            registry=r,
        )
        self.requests = Counter(
            "feedfix_http_requests",
            "HTTP requests served by route and status",
            ["route", "status"],
            registry=r,
        )
        self.stale_feeds = Gauge(
            "feedfix_stale_feeds",
            "Feeds served from a copy older than their last poll",
            registry=r,
        )
        self.feed_entries = Gauge(
            "feedfix_feed_entries", "Entries in each published feed", ["feed"], registry=r
        )
        # Replicas on a shared store (Redis); on SQLite only store_up and leases move.
        self.leases = Counter(
            "feedfix_leases",
            "Poll leases asked for: taken, busy (another replica polls the "
            "feed) or error (the store did not answer)",
            ["outcome"],
            registry=r,
        )
        self.fenced = Counter(
            "feedfix_fenced_publishes",
            "Publishes refused: the lease passed on during the poll",
            registry=r,
        )
        self.adopted = Counter(
            "feedfix_adopted_copies",
            "Feed copies loaded from what another replica stored",
            registry=r,
        )
        self.restored = Counter(
            "feedfix_restored_copies",
            "Copies put back into a store that had lost them",
            registry=r,
        )
        self.store_up = Gauge(
            "feedfix_store_up", "1 while the store answers, 0 while it does not", registry=r
        )
        self.store_up.set(1)
        self._poll_counts: dict[str, tuple[int, int]] = {}
        # The metrics with a "feed" label, and their label names in order (for forget_feed).
        self._per_feed: tuple[tuple[MetricWrapperBase, tuple[str, ...]], ...] = (
            (self.polls, ("feed", "outcome")),
            (self.poll_errors, ("feed", "kind")),
            (self.poll_seconds, ("feed",)),
            (self.upstream_bytes, ("feed",)),
            (self.not_modified_share, ("feed",)),
            (self.feed_entries, ("feed",)),
        )

    def forget_feed(self, feed: str) -> None:
        """Drop every series of a feed that left the config, so /metrics stops reporting it
        (a reload that removes a feed calls this)."""
        for metric, names in self._per_feed:
            label_sets = {
                tuple(sample.labels[name] for name in names)
                for family in metric.collect()
                for sample in family.samples
                if sample.labels.get("feed") == feed
            }
            for values in label_sets:
                metric.remove(*values)
        self._poll_counts.pop(feed, None)

    def count_poll(self, feed: str, outcome: str) -> None:
        """Count a poll and update the feed's share of 304s."""
        self.polls.labels(feed, outcome).inc()
        total, not_modified = self._poll_counts.get(feed, (0, 0))
        total, not_modified = total + 1, not_modified + (outcome == "not_modified")
        self._poll_counts[feed] = (total, not_modified)
        self.not_modified_share.labels(feed).set(not_modified / total)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
