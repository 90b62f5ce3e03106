"""``feedfix.service.images.wiring``: the key from the config or the store, the cache beside
the store, a ``:memory:`` store's cache in a temporary folder removed at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from feedfix.config import ImagesConfig, parse_config
from feedfix.service.images import ImageSettings
from feedfix.service.images.settings import BROWSER_UA
from feedfix.service.images.wiring import KEY_NAME, cache_dir, image_settings, open_images
from feedfix.service.metrics import Metrics
from feedfix.service.store import open_store

ON = "[server]\nbase_url = 'https://f.example'\n[images]\nproxy = 'all'\n"


def test_the_store_keeps_the_key_and_the_cache_sits_beside_it(tmp_path: Path) -> None:
    """No configured key: one is made, kept in the store, and signs the proxy step; the cache
    is ``{stem}-images`` beside the store file. A configured key wins over the stored one."""
    path = str(tmp_path / "feedfix.db")
    config = parse_config(ON + f"[storage]\npath = '{path}'\n")

    async def run() -> bytes:
        store = open_store(path)
        try:
            async with contextlib.AsyncExitStack() as stack:
                service, proxy = open_images(config, store, Metrics(), stack)
                assert service is not None and proxy is not None
                assert service.settings.cache_dir == tmp_path / "feedfix-images"
                assert service.settings.keys == (proxy.key,)
                assert proxy.key.decode() == store.secret(KEY_NAME, lambda: "other")
                return proxy.key
        finally:
            store.close()

    first = asyncio.run(run())
    assert asyncio.run(run()) == first  # kept
    assert len(first) >= 32 and (tmp_path / "feedfix-images").is_dir()
    configured = parse_config(ON + f"key = '{'c' * 32}'\n[storage]\npath = '{path}'\n")

    async def with_key() -> bytes:
        store = open_store(path)
        try:
            async with contextlib.AsyncExitStack() as stack:
                _service, proxy = open_images(configured, store, Metrics(), stack)
                assert proxy is not None
                return proxy.key
        finally:
            store.close()

    assert asyncio.run(with_key()) == b"c" * 32
    assert cache_dir("/data/feedfix.db") == Path("/data/feedfix-images")


def test_a_memory_store_caches_in_a_temporary_folder_removed_at_shutdown() -> None:
    """``:memory:``: a memory index, a temporary cache folder, gone when the stack closes."""
    config = parse_config(ON + "[storage]\npath = ':memory:'\n")

    async def run() -> Path:
        store = open_store(":memory:")
        async with contextlib.AsyncExitStack() as stack:
            service, _proxy = open_images(config, store, Metrics(), stack)
            assert service is not None
            folder = Path(service.settings.cache_dir)
            assert folder.is_dir()
        return folder

    assert not asyncio.run(run()).exists()


def test_off_opens_nothing(tmp_path: Path) -> None:
    """Proxy off: no service, no proxy step, no key made."""
    path = str(tmp_path / "f.db")
    config = parse_config(f"[storage]\npath = '{path}'\n")

    async def run() -> None:
        store = open_store(path)
        async with contextlib.AsyncExitStack() as stack:
            assert open_images(config, store, Metrics(), stack) == (None, None)
        assert store.secret(KEY_NAME, lambda: "fresh") == "fresh"
        store.close()

    asyncio.run(run())
    assert not (tmp_path / "f-images").exists()


def test_every_limit_in_images_reaches_the_proxy(tmp_path: Path) -> None:
    """Each of ``[images]``'s limits is what the serving side uses; unset, the config's
    defaults (the serving side reads the parsed table: one set of defaults)."""
    text = (
        "connect_timeout = '2s'\ntimeout = '7s'\nmax_redirects = 0\nper_host = 9\n"
        "remember_failures = '5m'\nsvg = true\nmax_size = '3MB'\ncache_size = '50MB'\n"
        "user_agent = 'reader/1'\nallow_private = ['10.0.0.0/8']\n"
    )
    made = image_settings(parse_config(ON + text), "k" * 32, tmp_path)
    limits = made.limits
    assert (limits.connect_timeout, limits.timeout, limits.max_redirects, limits.per_host) == (
        2, 7, 0, 9,
    )  # fmt: skip
    assert (limits.remember_failures, limits.svg, limits.max_size, limits.cache_size) == (
        300, True, 3_000_000, 50_000_000,
    )  # fmt: skip
    assert (made.user_agent, limits.allow_private) == ("reader/1", ("10.0.0.0/8",))
    default = image_settings(parse_config(ON), "k" * 32, tmp_path)
    assert default == ImageSettings((b"k" * 32,), tmp_path, ImagesConfig(proxy="all"))
    assert default.user_agent == BROWSER_UA
