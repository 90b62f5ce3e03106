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
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from feedfix import __version__
from feedfix.config import NO_FEEDS, Config, StorageConfig, with_image_proxy
from feedfix.core.errors import ConfigError
from feedfix.files.config_file import config_path, load_config
from feedfix.service.catalog import Catalog
from feedfix.service.first_run import listen_error, unwritable
from feedfix.service.http.connections import Limits
from feedfix.service.http.fastpath import FastPath
from feedfix.service.http.heads import MAX_FIELD, MAX_HEADERS, MAX_LINE
from feedfix.service.http.server import make_app
from feedfix.service.images import ImageService
from feedfix.service.images.wiring import open_images
from feedfix.service.logs import LOGGER, log, use_masker
from feedfix.service.masking import masker_for
from feedfix.service.metrics import Metrics
from feedfix.service.poll.poller import Poller
from feedfix.service.poll.worker import FormatJob, Worker
from feedfix.service.readers_first import ReaderTraffic
from feedfix.service.reloads import Reloads
from feedfix.service.state import Published
from feedfix.service.store import Store, StoreError, open_configured, redacted
from feedfix.service.web import ImageCache

if TYPE_CHECKING:
    from feedfix.service.replicas.leases import RedisCoordinator
    from feedfix.service.replicas.replication import Replicator

SHUTDOWN_TIMEOUT = 3.0
REFUSAL_TEXT = 200  # characters of aiohttp's reason for a 400 kept in the debug log line


class _ClientFaults(logging.Filter):
    """aiohttp logs every malformed request it refuses (its 400s) as an error with the whole
    traceback: noise anyone on the network can make, and not a fault of the service. Those
    become one debug line; anything else it logs (a handler that crashed) stays an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a client's malformed request to debug (dropped unless debug is on)."""
        exc = record.exc_info[1] if record.exc_info else None
        if not (isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500):
            return True
        if not LOGGER.isEnabledFor(logging.DEBUG):
            return False
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
        reason = " ".join(str(exc.message).split())[:REFUSAL_TEXT]
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args, record.exc_info = "bad request refused", (), None
        record.fields = {"status": exc.code, "peer": peer, "reason": reason}
        return True


def _http_logger() -> logging.Logger:
    """The logger aiohttp's server writes to: feedfix's JSON log, client faults demoted."""
    logger = LOGGER.getChild("http")
    if not any(isinstance(f, _ClientFaults) for f in logger.filters):
        logger.addFilter(_ClientFaults())
    return logger


async def run(path: str, environ: Mapping[str, str], config: Config, cleaner: Worker) -> None:
    """Serve until SIGTERM or SIGINT.

    Every step that starts something registers how to stop it on one exit stack, so a
    failure at any step (or the stop signal) stops what had started, in reverse order: the
    signal handlers, the reloads, the polls, the listener, aiohttp, and the store last.
    """
    use_masker(masker_for(config))
    for warning in config.warnings:
        log("config warning", logging.WARNING, message=warning)
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        store = _open_store(path, config)
        stack.callback(store.close)
        coordinator = _coordinator(store, config.storage)
        catalog, metrics, traffic = Catalog(), Metrics(), ReaderTraffic()
        images, proxy = open_images(config, store, metrics, stack, traffic)  # closed after aiohttp
        config = with_image_proxy(config, proxy)

        def forget_removed(name: str) -> None:
            """A feed that a reload removed (it left the catalog) loses its /metrics series."""
            if name not in catalog.status:
                metrics.forget_feed(name)

        catalog.listeners.append(forget_removed)
        catalog.render = _formats(cleaner, config.server.base_url)
        archiver = images.archiver if images is not None else None
        poller = Poller(
            config,
            store,
            catalog,
            metrics,
            cleaner,
            coordinator=coordinator,
            clock=coordinator.now if coordinator else time.time,
            images=archiver,  # each poll's published entries: their images are archived
        )
        replicator = await _replicator(store, coordinator, poller, config.storage.sync_every)
        await poller.load()
        log("loaded from storage", feeds=len(catalog.served), storage=_where(config.storage))
        if archiver is not None:  # stopped with the image service
            await archiver.start([feed.name for feed in config.feeds])
        runner = web.AppRunner(
            _app(catalog, metrics, poller, images),
            access_log=None,
            logger=_http_logger(),
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            keepalive_timeout=config.server.keepalive_timeout,
            max_line_size=MAX_LINE,
            max_field_size=MAX_FIELD,
            max_headers=MAX_HEADERS,
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        front = _front(runner, config, catalog, metrics, environ, images=images, traffic=traffic)
        stack.callback(front.close)
        listener = await _listen(front, config, path)
        stack.callback(listener.close)
        log(
            "listening",
            url=f"http://{config.server.host}:{config.server.port}/",
            version=__version__,
        )
        stack.push_async_callback(poller.stop)
        await poller.start()
        if replicator is not None:  # replicas on one Redis: follow the others' writes
            stack.push_async_callback(replicator.stop)
            await replicator.start()
        # a reload keeps the running proxy (its key and cache): [images] needs a restart
        reloads = Reloads(
            lambda: with_image_proxy(load_config(path, environ), proxy),
            poller,
            archiver.reload if archiver is not None else None,
        )
        stack.push_async_callback(reloads.close)
        stop = asyncio.Event()
        handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set, signal.SIGHUP: reloads.ask}
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
            stack.callback(loop.remove_signal_handler, sig)
        await stop.wait()
        log("stopping")
    log("stopped")


def _formats(
    cleaner: Worker, base_url: str | None
) -> Callable[[str, Published, str], Awaitable[Published]]:
    """How the catalog renders a feed's RSS and JSON Feed: in the cleaning worker, from the
    Atom (a worker process that died is replaced, as a poll replaces it)."""

    async def render(name: str, atom: Published, fmt: str) -> Published:
        self_url = f"{base_url.rstrip('/')}/feeds/{name}.atom" if base_url else None
        generation = cleaner.generation
        try:
            return await cleaner.render_format(FormatJob(name, atom, fmt, self_url))
        except BrokenProcessPool:
            if cleaner.generation == generation:
                log("cleaning worker died; restarting it", logging.ERROR)
                cleaner.restart()
            raise

    return render


def _app(
    catalog: Catalog, metrics: Metrics, poller: Poller, images: ImageService | None
) -> web.Application:
    """The aiohttp application; the image proxy's route and summary when it is on."""
    if images is None:
        return make_app(catalog, metrics, poller)
    return make_app(
        catalog,
        metrics,
        poller,
        images.handler,
        lambda: _image_cache(images),
        archive=images.archiver,
    )


def _image_cache(images: ImageService) -> ImageCache:
    """The image cache's figures, for the index and its JSON."""
    stats, count = images.stats(), images.metrics.value
    asked = sum(count(outcome) for outcome in ("hit", "miss", "coalesced"))
    return ImageCache(stats.entries, stats.bytes, int(count("hit")), int(asked))


def _front(
    runner: web.AppRunner,
    config: Config,
    catalog: Catalog,
    metrics: Metrics,
    environ: Mapping[str, str],
    *,
    images: ImageService | None = None,
    traffic: ReaderTraffic | None = None,
) -> FastPath:
    """The connection limits and the fast path in front of aiohttp's server.

    ``FEEDFIX_FASTPATH=0`` leaves every request to aiohttp (the limits still hold): a
    benchmarking switch, to measure what the fast path is for, not a setting.
    """
    if runner.server is None:
        raise RuntimeError("aiohttp runner has no server after setup()")
    limits = Limits(
        config.server.max_connections,
        config.server.header_timeout,
        config.server.keepalive_timeout,
        config.server.body_timeout,
        config.server.client_share,
    )
    fast = environ.get("FEEDFIX_FASTPATH", "1") != "0"
    if not fast:
        log("fast path off (FEEDFIX_FASTPATH=0): aiohttp answers every request", logging.WARNING)
    return FastPath(
        runner.server,
        limits,
        catalog,
        _feed_counter(metrics),
        answer_feeds=fast,
        images=images.http if images is not None else None,
        traffic=traffic,
    )


async def _listen(front: FastPath, config: Config, config_file: str) -> asyncio.Server:
    """Listen on ``[server] host:port``; a ConfigError naming the address, and what to
    change, when that fails."""
    host, port = config.server.host, config.server.port
    try:
        return await asyncio.get_running_loop().create_server(
            front, host, port, backlog=1024, reuse_address=True
        )
    except OSError as exc:
        raise ConfigError(listen_error(config_file, config, exc)) from exc


def _open_store(config_file: str, config: Config) -> Store:
    """The store, or one line saying why not and what to change (a newcomer's likely
    mistake: a storage folder feedfix may not write)."""
    storage = config.storage
    try:
        return open_configured(storage)
    except StoreError as exc:
        if storage.backend == "redis":
            raise ConfigError(f"[storage] url: {exc} (see {config_file})") from exc
        raise unwritable(config_file, config, exc) from exc
    except OSError as exc:
        raise unwritable(config_file, config, exc) from exc


def _where(storage: StorageConfig) -> str:
    """The store, for the log: the file, or the Redis URL without its password."""
    return redacted(storage.url) if storage.backend == "redis" and storage.url else storage.path


def _coordinator(store: Store, storage: StorageConfig) -> RedisCoordinator | None:
    """Leases for replicas on Redis (imported only then: redis-py costs a process ~5 MB)."""
    if storage.backend != "redis":
        return None
    from feedfix.service.replicas.replication import shared_parts  # noqa: PLC0415

    return shared_parts(store, storage)


async def _replicator(
    store: Store, coordinator: RedisCoordinator | None, poller: Poller, sync_every: float
) -> Replicator | None:
    if coordinator is None:
        return None
    from feedfix.service.replicas.replication import replication_for  # noqa: PLC0415

    return await replication_for(store, coordinator, poller, sync_every)


def _feed_counter(metrics: Metrics) -> Callable[[int], None]:
    """Count feed requests answered by the front, with the labelled counters bound once."""
    children = {status: metrics.requests.labels("feed", str(status)) for status in (200, 304)}
    return lambda status: children[status].inc()


def _cleaner(process: bool) -> Worker:
    """The cleaning worker; a thread when no process can be started (no /dev/shm, say)."""
    if process:
        try:
            return Worker(process=True)
        except (OSError, ImportError) as exc:
            log(
                "cannot start a cleaning process; cleaning in a thread",
                logging.ERROR,
                error=str(exc),
            )
    return Worker(process=False)


def serve(given: str | None) -> None:
    """Run the service in the foreground (the ``feedfix serve`` command)."""
    environ = dict(os.environ)
    path = config_path(given, environ)
    from feedfix.service import logs  # noqa: PLC0415

    logs.setup(environ.get("FEEDFIX_LOG_LEVEL", "info"))
    config = load_config(path, environ)
    if not config.feeds:
        raise ConfigError(f"{path}: {NO_FEEDS} (see config.example.toml)")
    cleaner = _cleaner(config.poll.cleaner == "process")  # forks before any thread
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(path, environ, config, cleaner))
    finally:
        cleaner.close()
