"""``feedfix serve``: wire config, store, poller and HTTP server together, and handle signals.

SIGTERM and SIGINT stop it gracefully (in-flight polls are cancelled, the store is closed);
SIGHUP re-reads the config and applies it without dropping any served feed. Every feed is
served from storage before the first poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from feedfix import __version__
from feedfix.config import Config, StorageConfig, parse_config
from feedfix.core.errors import ConfigError
from feedfix.service.catalog import Catalog
from feedfix.service.fastpath import MAX_FIELD, MAX_HEADERS, MAX_LINE, FastPath, Limits
from feedfix.service.logs import log
from feedfix.service.metrics import Metrics
from feedfix.service.poll import Poller
from feedfix.service.server import make_app
from feedfix.service.store import Store, open_configured, redacted
from feedfix.service.worker import Worker

if TYPE_CHECKING:
    from feedfix.service.leases import RedisCoordinator
    from feedfix.service.replication import Replicator

SHUTDOWN_TIMEOUT = 3.0


def config_path(given: str | None, environ: Mapping[str, str]) -> str:
    """``--config``, else ``FEEDFIX_CONFIG``; an error that says so when neither is set."""
    path = given or environ.get("FEEDFIX_CONFIG")
    if not path:
        raise ConfigError("no config: give --config FILE or set FEEDFIX_CONFIG")
    return path


def load_config(path: str, environ: Mapping[str, str]) -> Config:
    """Read and check the config file, with environment overrides applied."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(text, path, environ)


async def run(path: str, environ: Mapping[str, str], config: Config, cleaner: Worker) -> None:
    """Serve until SIGTERM or SIGINT."""
    for warning in config.warnings:
        log("config warning", logging.WARNING, message=warning)
    store = open_configured(config.storage)
    storage = config.storage
    coordinator = _coordinator(store, storage)
    catalog, metrics = Catalog(), Metrics()

    def forget_removed(name: str) -> None:
        """A feed that a reload removed (it left the catalog) loses its /metrics series."""
        if name not in catalog.status:
            metrics.forget_feed(name)

    catalog.listeners.append(forget_removed)
    poller = Poller(config, store, catalog, metrics, cleaner, coordinator=coordinator,
                    clock=coordinator.now if coordinator else time.time)  # fmt: skip
    replicator = await _replicator(store, coordinator, poller, storage.sync_every)
    await poller.load()
    where = redacted(storage.url) if storage.backend == "redis" and storage.url else storage.path
    log("loaded from storage", feeds=len(catalog.served), storage=where)
    runner = web.AppRunner(
        make_app(catalog, metrics),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=config.server.keepalive_timeout,
        max_line_size=MAX_LINE,
        max_field_size=MAX_FIELD,
        max_headers=MAX_HEADERS,
    )
    await runner.setup()
    limits = Limits(
        config.server.max_connections,
        config.server.header_timeout,
        config.server.keepalive_timeout,
    )
    if runner.server is None:
        raise RuntimeError("aiohttp runner has no server after setup()")
    front = FastPath(runner.server, limits, catalog, _feed_counter(metrics))
    loop = asyncio.get_running_loop()
    try:
        listener = await loop.create_server(
            front,
            config.server.host,
            config.server.port,
            backlog=1024,
            reuse_address=True,
        )
    except OSError as exc:
        await runner.cleanup()
        store.close()
        raise ConfigError(
            f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror or exc}"
        ) from exc
    log("listening", url=f"http://{config.server.host}:{config.server.port}/", version=__version__)
    await poller.start()
    if replicator is not None:
        await replicator.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: asyncio.ensure_future(_reload(path, environ, poller))
    )
    await stop.wait()
    log("stopping")
    listener.close()
    front.close()
    await poller.stop()
    if replicator is not None:
        await replicator.stop()
    await runner.cleanup()
    store.close()
    log("stopped")


def _coordinator(store: Store, storage: StorageConfig) -> RedisCoordinator | None:
    """Leases for replicas on Redis (imported only then: redis-py costs a process ~5 MB)."""
    if storage.backend != "redis":
        return None
    from feedfix.service.replication import shared_parts  # noqa: PLC0415

    return shared_parts(store, storage)


async def _replicator(
    store: Store, coordinator: RedisCoordinator | None, poller: Poller, sync_every: float
) -> Replicator | None:
    if coordinator is None:
        return None
    from feedfix.service.replication import replication_for  # noqa: PLC0415

    return await replication_for(store, coordinator, poller, sync_every)


def _feed_counter(metrics: Metrics) -> Callable[[int], None]:
    """Count feed requests answered by the front, with the labelled counters bound once."""
    children = {status: metrics.requests.labels("feed", str(status)) for status in (200, 304)}
    return lambda status: children[status].inc()


async def _reload(path: str, environ: Mapping[str, str], poller: Poller) -> None:
    try:
        config = load_config(path, environ)
    except ConfigError as exc:
        log("reload refused; keeping the running config", logging.ERROR, error=str(exc))
        return
    old = poller.config
    if (config.server, config.storage, config.poll.cleaner) != (
        old.server,
        old.storage,
        old.poll.cleaner,
    ):
        log("reload: [server], [storage] and [poll] cleaner need a restart", logging.WARNING)
    await poller.reload(config)
    log("reloaded", feeds=len(config.feeds))


def _cleaner(process: bool) -> Worker:
    """The cleaning worker; a thread when no process can be started (no /dev/shm, say)."""
    if process:
        try:
            return Worker(process=True)
        except (OSError, ImportError) as exc:
            log("cannot start a cleaning process; cleaning in a thread", logging.ERROR,
                error=str(exc))  # fmt: skip
    return Worker(process=False)


def serve(given: str | None) -> None:
    """Run the service in the foreground (the ``feedfix serve`` command)."""
    environ = dict(os.environ)
    path = config_path(given, environ)
    from feedfix.service import logs  # noqa: PLC0415

    logs.setup(environ.get("FEEDFIX_LOG_LEVEL", "info"))
    config = load_config(path, environ)
    cleaner = _cleaner(config.poll.cleaner == "process")  # forks before any thread
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(path, environ, config, cleaner))
    finally:
        cleaner.close()
