"""What a feed's state becomes outside the poller: its served copy and status row in the
catalog, its metrics, and the log line of each poll."""

from __future__ import annotations

import logging
from dataclasses import replace

from feedfix.config import Config
from feedfix.service.advice import advice
from feedfix.service.catalog import Catalog, Status
from feedfix.service.logs import log
from feedfix.service.metrics import Metrics
from feedfix.service.poll.decide import Attempt, Decision
from feedfix.service.poll.runtime import FeedRuntime
from feedfix.service.poll.worker import Cleaned
from feedfix.service.served import ServedFeed


class Publisher:
    """Publishes feeds into the catalog, counts polls in the metrics, logs them."""

    def __init__(self, catalog: Catalog, metrics: Metrics) -> None:
        self.catalog = catalog
        self.metrics = metrics
        self.store_down_since: float | None = None  # the shared store did not answer since

    def publish(self, runtime: FeedRuntime, config: Config) -> None:
        """Serve the feed's copy (made again only when what is served changed) and its row;
        while the store is down every copy is served stale."""
        feed, state, published = runtime.config, runtime.memory.state, runtime.memory.published
        if state.stale_since is None and self.store_down_since is not None:
            state = replace(state, stale_since=self.store_down_since)  # served, not shared
        max_age = min(feed.interval, config.server.cache_max_age)
        served = self.catalog.served.get(feed.name)
        if published is None:
            served = None
        elif served is None or served.published != published:
            served = ServedFeed.of(
                feed.name, published, max_age, state.stale_since, self.catalog.identities
            )
        elif (served.stale_since, served.max_age) != (state.stale_since, max_age):
            served = served.again(max_age, state.stale_since)  # the formats rendered are kept
        # else a 304 poll changes nothing that is served: the replies stay as they are
        entries = published.entries if published else 0
        status = Status(
            feed.name, feed.shown_source, state, entries, advice(feed, runtime.error_kind)
        )
        self.catalog.publish(feed.name, served, status)
        stale = sum(1 for s in self.catalog.status.values() if s.state.stale_since is not None)
        self.metrics.stale_feeds.set(stale)
        self.metrics.feed_entries.labels(feed.name).set(entries)

    def count(self, name: str, decision: Decision, attempt: Attempt, made: Cleaned | None) -> None:
        """The poll in ``/metrics``: its outcome, duration, bytes, rules' changes, entries."""
        metrics = self.metrics
        metrics.count_poll(name, decision.outcome)
        metrics.poll_seconds.labels(name).observe(attempt.duration)
        if decision.error_kind is not None:
            metrics.poll_errors.labels(name, decision.error_kind).inc()
        elif attempt.result is not None and attempt.result.status == 200:
            metrics.upstream_bytes.labels(name).inc(attempt.result.size)
        if made is not None:
            for rule, changes in made.rule_changes.items():
                metrics.rule_changes.labels(rule).inc(changes)
            metrics.entries_cleaned.labels("cleaned").inc(made.cleaned)
            metrics.entries_cleaned.labels("reused").inc(made.reused)

    def log(
        self,
        runtime: FeedRuntime,
        decision: Decision,
        attempt: Attempt,
        made: Cleaned | None,
        max_backoff: float,
    ) -> None:
        """One line per poll; once per feed config, that the upstream's ttl lengthens it."""
        published = runtime.memory.published
        record = decision.write.record
        log(
            "poll",
            logging.WARNING if decision.outcome == "error" else logging.INFO,
            feed=runtime.config.name,
            status=decision.outcome,
            http=record.http_status,
            duration_ms=round(attempt.duration * 1000, 1),
            entries=published.entries if published else 0,
            window=made.window if made else None,
            cleaned=made.cleaned if made else None,
            rendered=made.rendered if made else None,
            changed=decision.changed,
            next_in_s=round(decision.delay, 1),
            error=record.error,
        )
        ttl = made.ttl_minutes * 60 if made is not None and made.ttl_minutes else 0
        feed = runtime.config
        lengthens = min(ttl, max_backoff) > feed.interval
        if lengthens and feed.url is not None and not runtime.ttl_noted:
            runtime.ttl_noted = True  # once per feed config: a reload that changes it says again
            log(
                "interval lengthened by the upstream's ttl",
                logging.WARNING,
                feed=feed.name,
                interval_s=feed.interval,
                ttl_s=ttl,
                max_backoff_s=max_backoff,
            )
