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
from feedfix.core.rules.proxy_images import ImageProxySettings
from feedfix.service.images import ImageService, ImageSettings
from feedfix.service.metrics import Metrics
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
    config: Config, store: Store, metrics: Metrics, stack: contextlib.AsyncExitStack
) -> tuple[ImageService | None, ImageProxySettings | None]:
    """The image service and the proxy step's settings; both None while the proxy is off.

    Closed through ``stack``. The cache index goes in the store's SQLite file; a ``:memory:``
    store gets a memory index and a temporary cache folder, removed at shutdown.
    """
    if config.images.proxy == "off":
        return None, None
    key = signing_key(config, store)
    path = config.storage.path
    if path == ":memory:":
        directory, metadata = Path(tempfile.mkdtemp(prefix="feedfix-images-")), None
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
    else:
        directory, metadata = cache_dir(path), path
    service = ImageService.open(image_settings(config, key, directory), metadata, metrics.registry)
    stack.push_async_callback(service.close)
    return service, image_proxy(config, key)
