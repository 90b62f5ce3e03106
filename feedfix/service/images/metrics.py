"""The image proxy's Prometheus metrics, registered in the registry the service gives."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

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
