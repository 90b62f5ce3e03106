"""Writing mended posts: a few writer threads, each file replaced atomically.

Without ``--save-images`` the files are written in the order they were read. With it, a post
is written once its images are home (``ImageSaver.finish_all``), so in the order the posts
finish; the counting and the bookkeeping stay on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING

from feedfix.cli.fix_tally import ImageTally, Tally, count, say, size_text
from feedfix.cli.mend_runner import MendSettings, Outcome
from feedfix.cli.progress import TerminalProgress
from feedfix.core.errors import FeedfixError
from feedfix.files.mend import Source, replace_file, sync_folders

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

WRITERS = 4  # fsync waits on the disk, not the CPU: a few writers overlap those waits
MAX_PENDING = 64  # mended files held in memory while they wait for a writer


def write_all(
    outcomes: Iterable[Outcome], tally: Tally, backup: str | None, progress: TerminalProgress
) -> None:
    """Count each outcome and write the changed files, in order."""
    folders: set[Path] = set()
    pending: list[tuple[Source, Future[None]]] = []

    def settle(keep: int) -> None:
        while len(pending) > keep:
            source, future = pending.pop(0)
            try:
                future.result()
            except FeedfixError as exc:
                _failed_write(tally, source, exc)

    with ThreadPoolExecutor(max_workers=WRITERS) as writers:
        for done, outcome in enumerate(outcomes, 1):
            if count(outcome, tally) and outcome.source is not None:
                source = outcome.source
                future = writers.submit(replace_file, source, outcome.data, backup, sync=True)
                pending.append((source, future))
                folders.add(source.path.parent)
                settle(MAX_PENDING)
            progress(done, tally.files)
        settle(0)
    sync_folders(sorted(folders))


def _failed_write(tally: Tally, source: Source, exc: BaseException) -> None:
    tally.failed += 1
    tally.changed -= 1
    say(f"{source.name}: {exc}")


def save_and_write_all(
    outcomes: Iterator[Outcome],
    tally: Tally,
    backup: str | None,
    progress: TerminalProgress,
    settings: MendSettings,
    *,
    resolver: AbstractResolver | None = None,
) -> None:
    """``--write --save-images``: fetch what each post misses, then write it."""
    from feedfix.cli.save_images import ImageSaver  # noqa: PLC0415 - aiohttp only for this

    images = tally.images = ImageTally()
    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(WRITERS) as writers:

        async def main() -> None:
            saver = ImageSaver(settings, images, writers, resolver)
            try:
                finished = saver.finish_all(outcomes, reader)
                await _write_as_finished(finished, tally, backup, progress, writers)
            finally:
                await saver.close()

        asyncio.run(main())


async def _write_as_finished(
    finished: AsyncGenerator[Outcome, None],
    tally: Tally,
    backup: str | None,
    progress: TerminalProgress,
    writers: ThreadPoolExecutor,
) -> None:
    loop = asyncio.get_running_loop()
    folders: set[Path] = set()
    writes: set[asyncio.Future[None]] = set()
    images = tally.images
    assert images is not None  # noqa: S101 - set by the caller

    def settle(source: Source, future: asyncio.Future[None]) -> None:
        writes.discard(future)
        error = None if future.cancelled() else future.exception()
        if isinstance(error, FeedfixError):
            _failed_write(tally, source, error)

    async with aclosing(finished):
        done = 0
        async for outcome in finished:
            done += 1
            if count(outcome, tally) and outcome.source is not None:
                write = functools.partial(
                    replace_file, outcome.source, outcome.data, backup, sync=True
                )
                future = loop.run_in_executor(writers, write)
                writes.add(future)
                future.add_done_callback(functools.partial(settle, outcome.source))
                folders.add(outcome.source.path.parent)
                if len(writes) >= MAX_PENDING:
                    await asyncio.wait(writes, return_when=asyncio.FIRST_COMPLETED)
            note = f"{images.saved:,} images ({size_text(images.bytes)})"
            progress(done, tally.files, f"{note}, {len(images.failed):,} failed")
    if writes:
        await asyncio.wait(writes)
    sync_folders(sorted(folders))
