"""The image proxy's serving side: ``GET``/``HEAD /img/…`` for URLs signed by
``feedfix.core.imagesign``, fetched once from the origin, cached on disk, only ever images.

Wiring (what ``feedfix.service.app`` does with ``[images]``)::

    from feedfix.service.images import ImageService, ImageSettings

    settings = ImageSettings(
        keys=(key, *old_keys),            # bytes; the signing key first ([images] or the store)
        cache_dir=Path(storage_path).parent / "images",
        limits=config.images,             # the parsed [images] table
    )
    images = ImageService.open(settings, metadata_path=storage_path, registry=metrics.registry)
    app.router.add_route("*", "/img/{rest:.*}", images.handler)
    app.on_cleanup.append(lambda _app: images.close())
    images.stats()                        # CacheStats(entries, bytes) for the index page
    images.metrics.value("hit")           # request counts by outcome, for a hit rate

    # optional, in the fast path before aiohttp (http/fastpath.py), for cached images only:
    front = ImageFront(images.http)        # http/image_front.py: answers remembered
    answer = front.answer(head)            # ImageAnswer | None (None: aiohttp's)
    fd = front.file(answer)                # its body's file, kept open (None: gone, hand over)

``ImageService.open`` may run before the event loop starts (the HTTP session is made on
first use). ``metadata_path`` is an SQLite file (the store's own file is fine: the index is
one table, ``image_cache``; its calls are short, indexed and made on the event loop, hits
mostly from a capped in-memory table); ``metadata_path=None`` keeps the index in memory
(tests, one-shots). ``resolver=`` is the DNS seam for tests; it is always wrapped in the SSRF
guard. The keys are fixed for the service's life: build a new one to rotate them.

Modules, one job each: ``settings`` (the frozen settings), ``media`` (which bodies are
images), ``fetch`` (one GET, bounded and guarded by ``feedfix.service.addresses``),
``meta`` (the cache index: a Protocol, SQLite and memory), ``cache`` (single flight, disk,
LRU, failures remembered), ``handler`` (the HTTP answer), ``metrics``; the archive:
``archiver`` (fetches each published entry's images and pins them), ``archive_index``
(its Protocol), ``archive_sqlite`` and ``redis_index`` (the index in the store: SQLite, or
Redis for replicas, whose cache index it also holds).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractResolver
from prometheus_client import CollectorRegistry

from feedfix.service.images.archiver import Archiver
from feedfix.service.images.cache import ImageCache
from feedfix.service.images.fetch import ImageFetcher
from feedfix.service.images.handler import ImageHandler
from feedfix.service.images.meta import CacheMeta, CacheStats, MemoryMeta, SQLiteMeta
from feedfix.service.images.metrics import ImageMetrics
from feedfix.service.images.settings import ImageSettings

__all__ = ["CacheMeta", "CacheStats", "ImageService", "ImageSettings", "MemoryMeta", "SQLiteMeta"]


@dataclass
class ImageService:
    """The proxy's parts, built together: route ``handler``, ``close`` at shutdown."""

    settings: ImageSettings
    cache: ImageCache
    http: ImageHandler
    metrics: ImageMetrics
    archiver: Archiver | None = None  # with [images] archive = true (``wiring.py`` makes it)

    @property
    def handler(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The aiohttp handler for ``GET``/``HEAD /img/{rest:.*}``."""
        return self.http.handle

    @classmethod
    def open(
        cls,
        settings: ImageSettings,
        metadata_path: Path | str | None,
        registry: CollectorRegistry,
        resolver: AbstractResolver | None = None,
        meta: CacheMeta | None = None,
    ) -> ImageService:
        """Open the cache index (``meta``, else one in ``metadata_path``) and build the
        fetcher, cache, handler and metrics."""
        if meta is None:
            meta = SQLiteMeta(metadata_path) if metadata_path else MemoryMeta()
        cache = ImageCache(settings, meta, ImageFetcher(settings, resolver))
        metrics = ImageMetrics(registry)
        metrics.watch(cache.stats)
        return cls(settings, cache, ImageHandler(cache, settings.keys, metrics), metrics)

    def stats(self) -> CacheStats:
        """Entries and bytes in the cache."""
        return self.cache.stats()

    async def close(self) -> None:
        """Stop archiving, write pending cache uses, close the origin connections and the
        index."""
        if self.archiver is not None:
            await self.archiver.stop()
        await self.cache.close()
        if self.archiver is not None:
            self.archiver.index.close()
