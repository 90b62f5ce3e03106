"""The image proxy in the service: its signing key, its settings, and where its cache lives.

The key is ``[images] key`` (or ``FEEDFIX_IMAGES__KEY``); without one, a key is made at the
first start and kept in the store, so that a restart, or another replica on the same store,
signs the same URLs: readers' cached feeds keep loading their images. The proxy's settings
are fixed for the life of the process (a reload keeps them; a restart applies new ones).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from pathlib import Path

from feedfix.config import Config, image_proxy
from feedfix.core.errors import ConfigError
from feedfix.core.rules.proxy_images import ImageProxySettings
from feedfix.service.images import ImageService, ImageSettings
from feedfix.service.images.archive_index import ArchiveIndex
from feedfix.service.images.archive_sqlite import SQLiteArchiveIndex
from feedfix.service.images.archiver import Archiver, ArchiveSettings
from feedfix.service.images.meta import CACHE_SCHEMA, CacheMeta
from feedfix.service.images.metrics import ArchiveMetrics
from feedfix.service.metrics import Metrics
from feedfix.service.readers_first import GiveWay, ReaderTraffic
from feedfix.service.store import Store

KEY_NAME = "images.key"  # the store's name for the generated key
KEY_BYTES = 32  # of randomness in a generated key (43 base64url characters)


def signing_key(config: Config, store: Store) -> str:
    """``[images] key``, else the store's (made and kept the first time)."""
    return config.images.key or store.secret(KEY_NAME, lambda: secrets.token_urlsafe(KEY_BYTES))


def cache_dir(storage_path: str) -> Path:
    """Beside the store: ``/data/feedfix.db`` caches images in ``/data/feedfix-images/``."""
    path = Path(storage_path)
    return path.with_name(f"{path.stem}-images")


def image_settings(config: Config, key: str, directory: Path) -> ImageSettings:
    """The serving side's settings from ``[images]``: the key first, then the old ones."""
    keys = (key.encode(), *(old.encode() for old in config.images.old_keys))
    return ImageSettings(keys, directory, config.images)


def open_images(
    config: Config,
    store: Store,
    metrics: Metrics,
    stack: contextlib.AsyncExitStack,
    traffic: ReaderTraffic | None = None,
) -> tuple[ImageService | None, ImageProxySettings | None]:
    """The image service and the proxy step's settings; both None while the proxy is off.

    Closed through ``stack``. The images go in ``[images] path``, else beside the store
    file; their index in the store's SQLite file, or in Redis for replicas that archive (one
    folder, one index: they share both). A ``:memory:`` store gets a temporary folder,
    removed at shutdown, with a memory index (an SQLite file in it when archiving). The
    archive gives way to readers while ``traffic`` says they are many (``readers_first.py``).
    """
    if config.images.proxy == "off":
        return None, None
    key = signing_key(config, store)
    images, storage = config.images, config.storage
    meta: CacheMeta | None = None
    index: ArchiveIndex | None = None
    if storage.backend == "redis" and images.archive and storage.url:
        from feedfix.service.images import redis_index, redis_meta  # noqa: PLC0415 (redis-py only then)

        db = redis_meta.client(storage.url)
        meta = redis_meta.RedisMeta(db, storage.prefix)
        index = redis_index.RedisArchiveIndex(db, storage.prefix)
        directory, metadata = Path(images.path or cache_dir(storage.path)), None
    elif storage.path == ":memory:":
        directory = Path(images.path or tempfile.mkdtemp(prefix="feedfix-images-"))
        if images.path is None:
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
        metadata = str(directory / "index.db") if images.archive else None
    else:
        directory, metadata = Path(images.path or cache_dir(storage.path)), storage.path
    settings = image_settings(config, key, directory)
    service = ImageService.open(settings, metadata, metrics.registry, meta=meta)
    stack.push_async_callback(service.close)
    if images.archive:
        if index is None:
            index = SQLiteArchiveIndex(metadata or ":memory:", CACHE_SCHEMA)
        base = config.server.base_url or ""
        service.archiver = Archiver(
            ArchiveSettings(images, base, settings.keys),
            service.cache,
            index,
            store,
            ArchiveMetrics(metrics.registry),
            readers=GiveWay(traffic) if traffic is not None else None,
        )
    return service, image_proxy(config, key)


def open_archive_index(config: Config) -> ArchiveIndex:
    """The archive's index in the configured store, for ``feedfix images`` (the service
    may be running: every call is one short transaction). ConfigError when there is none."""
    storage = config.storage
    if storage.backend == "redis" and storage.url:
        from feedfix.service.images import redis_index, redis_meta  # noqa: PLC0415 (redis-py only then)

        return redis_index.RedisArchiveIndex(redis_meta.client(storage.url), storage.prefix)
    if storage.path == ":memory:":
        raise ConfigError('[storage] path = ":memory:" keeps no image archive')
    if not Path(storage.path).exists():
        raise ConfigError(f"[storage] path {storage.path}: no store yet (has feedfix served?)")
    return SQLiteArchiveIndex(storage.path, CACHE_SCHEMA)
