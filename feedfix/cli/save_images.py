"""``fix-posts --write --save-images DIR``: fetching the images posts still need, politely.

Posts come from the examiners (mend_runner) with the images already in DIR pointed home and
the others listed. Here each missing image is fetched once (``ImageFetcher``: the address
guard at every hop, the host rules' Referer, ``[images]`` User-Agent, timeouts, type and size
checks), stored (image_store.py: temporary file, flush, rename), and then the post is
finished: pointed at what is now on disk and handed back to be written. A post is written
only after its images' folders are flushed, so no post ever points at a file that is not
there; an image that cannot be fetched keeps its URL and is reported with its reason.

Limits: ``[images] per_host`` fetches at once per host and ``max_fetches`` in all; a 429, a
5xx, a timeout or a dropped connection is tried again ``retries`` times, after
``Retry-After`` (at most ``MAX_RETRY_AFTER`` s) or 1, 2, 4… s; at most ``WINDOW`` posts are
held at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Executor
from dataclasses import replace
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver

from feedfix.cli.fix_tally import ImageTally
from feedfix.cli.mend_runner import MendSettings, Outcome, finished
from feedfix.core.errors import InputError
from feedfix.core.imagesign import NO_REFERER, Referer, Verified
from feedfix.files.image_names import TYPE_SUFFIXES, fetch_url, name_for
from feedfix.files.image_store import ImageStore
from feedfix.service.images.fetch import FetchedImage, HostSlots, ImageFetcher, ImageFetchError
from feedfix.service.images.media import SVG, matches
from feedfix.service.images.settings import ImageSettings

WINDOW = 64  # posts between reading and writing
BACKOFF = 1.0  # seconds before the first retry when the origin names no time
MAX_RETRY_AFTER = 60.0  # a longer Retry-After gives up on the image instead of waiting
# ImageSettings is the proxy's: it wants a signing key, which fetching never uses.
_UNUSED_KEY = b"fix-posts signs nothing"


def is_image(head: bytes, *, svg: bool) -> bool:
    """Whether a file's first bytes are one of the types the image proxy lets through."""
    return any(matches(t, head) for t in TYPE_SUFFIXES if svg or t != SVG)


def reason_of(exc: ImageFetchError) -> str:
    """A failure's kind, to count failures by: ``HTTP 404``, ``timeout``, ``not an image``…"""
    message = str(exc)
    if exc.origin_status is not None:
        return f"HTTP {exc.origin_status}"
    if exc.status == 504:
        return "timeout"
    if exc.outcome != "refused":
        return "connection failed"
    if "internal address" in message:
        return "address refused"
    if "limit" in message:
        return "too large"
    if "redirect" in message:
        return "redirects"
    if "not a URL" in message:
        return "bad URL"
    return "not an image"


class ImageSaver:
    """Fetches and stores the images posts are missing, each URL once per run."""

    def __init__(
        self,
        settings: MendSettings,
        tally: ImageTally,
        writers: Executor,
        resolver: AbstractResolver | None = None,
    ) -> None:
        assert settings.images is not None  # noqa: S101 - only made for --save-images
        self.settings = settings
        self.targets = targets = settings.images
        self.tally = tally
        self.store: ImageStore = targets.store()
        self.writers = writers
        self.fetcher = ImageFetcher(
            ImageSettings((_UNUSED_KEY,), targets.folder, targets.limits), resolver
        )
        self.hosts = HostSlots(targets.limits.per_host)
        self.overall = asyncio.Semaphore(targets.max_fetches)
        self._fetching: dict[str, asyncio.Task[str | None]] = {}

    async def close(self) -> None:
        """Stop the fetches still going (after Ctrl-C: they are shielded from their posts'
        cancellation), then close the fetcher's connections; a fetch left running would
        find its session closed and end in a traceback."""
        running = list(self._fetching.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self.fetcher.close()

    async def finish_all(
        self, outcomes: Iterator[Outcome], reader: Executor
    ) -> AsyncGenerator[Outcome, None]:
        """Every outcome finished (its images fetched and pointed home), as each is ready;
        ``outcomes`` is read in ``reader`` (a thread of its own: it may be mending)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Queue[Outcome | None] = asyncio.Queue()
        window = asyncio.Semaphore(WINDOW)

        async def finish(outcome: Outcome) -> None:
            ready.put_nowait(await self.finish(outcome))

        async def produce() -> None:
            try:
                async with asyncio.TaskGroup() as group:
                    while True:
                        await window.acquire()
                        outcome = await loop.run_in_executor(reader, next, outcomes, None)
                        if outcome is None:
                            break
                        group.create_task(finish(outcome))
            finally:
                ready.put_nowait(None)

        producer = asyncio.create_task(produce())
        try:
            while (outcome := await ready.get()) is not None:
                window.release()
                yield outcome
            await producer  # its error, if it had one
        finally:  # (Ctrl-C) no post is finished, so no fetch begins, after this
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    async def finish(self, outcome: Outcome) -> Outcome:
        """One post: its missing images fetched, then the post pointed at all on disk."""
        images = outcome.images
        if images is not None:
            homes = await asyncio.gather(*(self.home_of(url) for url in outcome.missing))
            home = dict(images.home)
            home.update((u, h) for u, h in zip(outcome.missing, homes, strict=True) if h)
            mended = images.pointed_home(home, self.targets.prefix)
            outcome = finished(replace(outcome, missing=()), mended, self.settings)
        if outcome.status == "changed":  # the images' folders before the post that needs them
            await asyncio.get_running_loop().run_in_executor(self.writers, self.store.sync)
        return outcome

    async def home_of(self, url: str) -> str | None:
        """Where the image of ``url`` is in DIR once fetched; None when it could not be."""
        if url in self.tally.failed:
            return None
        task = self._fetching.get(url)
        if task is None:
            task = asyncio.create_task(self._bring_home(url))
            self._fetching[url] = task
            task.add_done_callback(lambda _: self._fetching.pop(url, None))
        return await asyncio.shield(task)

    async def _bring_home(self, url: str) -> str | None:
        name = name_for(url)
        absolute = fetch_url(url)
        if name is None or absolute is None:
            return None
        found = self.store.find(name)  # stored since the post was examined
        if found is not None:
            return found
        try:
            image = await self._fetch(absolute)
            loop = asyncio.get_running_loop()
            path = await loop.run_in_executor(
                self.writers, self.store.save, name, image.body, image.media_type
            )
        except ImageFetchError as exc:
            self.tally.fail(url, reason_of(exc), str(exc))
            return None
        except InputError as exc:
            self.tally.fail(url, "cannot store", str(exc))
            return None
        self.tally.saved += 1
        self.tally.bytes += len(image.body)
        return path

    async def _fetch(self, url: str) -> FetchedImage:
        host = urlsplit(url).hostname or ""
        referer = self._referer(host)
        verified = Verified(url, referer, referer.token())
        attempt = 0
        while True:
            async with self.hosts.hold(host), self.overall:
                try:
                    return await self.fetcher.fetch(verified)
                except ImageFetchError as exc:
                    delay = self._delay(exc, attempt)
                    if delay is None:
                        raise
            await asyncio.sleep(delay)
            attempt += 1

    def _delay(self, error: ImageFetchError, attempt: int) -> float | None:
        """How long to wait before trying again; None: do not."""
        status = error.origin_status
        again = error.outcome == "origin_error" and (
            status is None or status == 429 or status >= 500
        )
        if not again or attempt >= self.targets.retries:
            return None
        asked = error.retry_after
        if asked is not None and asked > MAX_RETRY_AFTER:
            return None
        return asked if asked is not None else BACKOFF * 2**attempt

    def _referer(self, host: str) -> Referer:
        """The first ``[images.hosts]`` rule naming the host decides; else none is sent."""
        rule = next((r for r in self.targets.limits.hosts if r.matches(host)), None)
        return rule.referer if rule is not None and rule.referer is not None else NO_REFERER
