"""The image proxy's Prometheus metrics, registered in the registry the service gives."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from feedfix.service.image_archive import ArchiveSummary
from feedfix.service.images.meta import CacheStats

OUTCOMES = ("hit", "miss", "coalesced", "refused", "origin_error", "bad_signature", "malformed")


class ImageMetrics:
    """Requests by outcome, bytes served and fetched, and the cache's size (read at scrape)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "feedfix_image_requests",
            "Image proxy requests by outcome",
            ["outcome"],
            registry=registry,
        )
        # every series exists from the start, at 0; bound once (labels() takes a lock)
        self._by_outcome = {outcome: self.requests.labels(outcome) for outcome in OUTCOMES}
        self.served_bytes = Counter(
            "feedfix_image_served_bytes", "Image body bytes sent to readers", registry=registry
        )
        self.fetched_bytes = Counter(
            "feedfix_image_fetched_bytes",
            "Image body bytes fetched from origins",
            registry=registry,
        )
        self.cache_bytes = Gauge(
            "feedfix_image_cache_bytes", "Bytes of images in the cache", registry=registry
        )
        self.cache_entries = Gauge(
            "feedfix_image_cache_entries", "Images in the cache", registry=registry
        )

    def watch(self, stats: Callable[[], CacheStats]) -> None:
        """Read the cache gauges from ``stats`` at every scrape."""
        self.cache_bytes.set_function(lambda: stats().bytes)
        self.cache_entries.set_function(lambda: stats().entries)

    def count(self, outcome: str, served: int = 0, fetched: int = 0) -> None:
        """Count one request."""
        counter = self._by_outcome.get(outcome) or self.requests.labels(outcome)
        counter.inc()
        if served:
            self.served_bytes.inc(served)
        if fetched:
            self.fetched_bytes.inc(fetched)

    def value(self, outcome: str) -> float:
        """How many requests had ``outcome`` (for the index page and tests)."""
        sample = self.registry.get_sample_value(
            "feedfix_image_requests_total", {"outcome": outcome}
        )
        return sample or 0.0


ARCHIVE_STATES = ("archived", "pending", "retrying", "failed", "unpinned")


class ArchiveMetrics:
    """The archive: images by state and bytes (read from the archiver's last summary at
    each scrape), images whose last attempt failed by reason, fetches by outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.images = Gauge(
            "feedfix_image_archive_images",
            "Images of published entries in the archive, by state",
            ["state"],
            registry=registry,
        )
        self.bytes = Gauge(
            "feedfix_image_archive_bytes", "Bytes of archived (pinned) images", registry=registry
        )
        self.fetches = Counter(
            "feedfix_image_archive_fetches",
            "The archive's fetches by outcome (archived, retrying, failed)",
            ["outcome"],
            registry=registry,
        )
        self._by_outcome = {o: self.fetches.labels(o) for o in ("archived", "retrying", "failed")}
        self.registry = registry

    def watch(self, summary: Callable[[], ArchiveSummary]) -> None:
        """Read the gauges from ``summary`` at every scrape."""
        for state in ARCHIVE_STATES:
            self.images.labels(state).set_function(_reader(summary, state))
        self.bytes.set_function(lambda: summary().bytes)
        self.registry.register(_Reasons(summary))

    def fetched(self, outcome: str) -> None:
        """Count one fetch."""
        self._by_outcome[outcome].inc()


def _reader(summary: Callable[[], ArchiveSummary], state: str) -> Callable[[], float]:
    """A gauge's function: the count of ``state`` in the last summary."""
    return lambda: float(getattr(summary(), state))


class _Reasons(Collector):
    """``feedfix_image_archive_failed{reason}``: its labels are whatever reasons there are."""

    def __init__(self, summary: Callable[[], ArchiveSummary]) -> None:
        self.summary = summary

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per reason of the images whose last attempt failed."""
        family = GaugeMetricFamily(
            "feedfix_image_archive_failed",
            "Archive images whose last attempt failed (retrying or given up), by reason",
            labels=["reason"],
        )
        for reason, count in sorted(self.summary().reasons.items()):
            family.add_metric([reason], count)
        yield family
