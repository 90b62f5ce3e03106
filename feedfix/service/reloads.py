"""SIGHUP's reloads: the config as it was when the signal came, applied in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from feedfix.config import Config
from feedfix.core.errors import ConfigError
from feedfix.service.logs import LOGGER, log, use_masker
from feedfix.service.masking import masker_for
from feedfix.service.poll.poller import Poller


class Reloads:
    """SIGHUP's reloads, applied one at a time in the order the signals came.

    The config file is read when the signal arrives (what a reload applies is the file as it
    was then; a bad one is refused at once), and queued; one task applies the queue in order,
    so a second SIGHUP never starts a reload while the first is still applying.
    """

    def __init__(
        self,
        read: Callable[[], Config],
        poller: Poller,
        archive: Callable[[Sequence[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.read = read
        self.poller = poller
        self.archive = archive  # told the feeds after each reload (removed ones' images go)
        self.asked = 0
        self._queue: asyncio.Queue[tuple[int, Config]] = asyncio.Queue()
        self._task = asyncio.create_task(self._apply_in_order(), name="reloads")

    def ask(self) -> None:
        """A SIGHUP: read the config now and queue it (refused, and logged, if it is bad)."""
        self.asked += 1
        number = self.asked
        log("reload requested", reload=number)
        try:
            config = self.read()
        except ConfigError as exc:
            log(
                "reload refused; keeping the running config",
                logging.ERROR,
                reload=number,
                error=str(exc),
            )
            return
        self._queue.put_nowait((number, config))

    async def _apply_in_order(self) -> None:
        while True:
            number, config = await self._queue.get()
            log("reloading", reload=number)
            old = self.poller.config
            if (config.server, config.storage, config.poll.cleaner, config.images) != (
                old.server,
                old.storage,
                old.poll.cleaner,
                old.images,
            ):
                log(
                    "reload: [server], [storage], [images] and [poll] cleaner need a restart",
                    logging.WARNING,
                    reload=number,
                )
            use_masker(masker_for(config))  # the new config's secrets, before any log line
            try:
                changes = await self.poller.reload(config)
            except Exception:  # a bug: say so with its traceback, and keep serving
                LOGGER.exception("reload failed", extra={"fields": {"reload": number}})
                continue
            if self.archive is not None and changes["removed"]:
                await self.archive([feed.name for feed in config.feeds])
            log("reloaded", logging.INFO, reload=number, feeds=len(config.feeds), **changes)

    async def close(self) -> None:
        """Stop applying (at shutdown): a reload in progress is cancelled with the polls."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
