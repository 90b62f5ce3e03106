"""Examining the files of a ``fix-posts`` run, in this process or in worker processes.

Reading, mending and diffing is CPU work with no shared state, so a large tree is spread over
a few processes; the results come back in the files' order, and every write still happens in
the parent (so killing it stops the writing at once, and the crash guarantees are the same).
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from feedfix.cli.image_refs import SAVE, ImageRef, compose, home_edits, image_refs
from feedfix.config import ImagesConfig
from feedfix.core.errors import InputError
from feedfix.core.mend import BodyRules, Edit, Mended, mend, patch
from feedfix.core.mend.edits import OverlappingEdits, splice
from feedfix.files.image_names import name_for
from feedfix.files.image_store import ImageStore
from feedfix.files.mend import Source, read_source

if TYPE_CHECKING:
    from multiprocessing.pool import IMapIterator

PARALLEL_FROM = 1000  # files; below this, starting workers costs more than it saves
MAX_JOBS = 4
CHUNK = 32  # files handed to a worker at a time
AHEAD = 8 * CHUNK  # files examined ahead of the reader, at most
SETTLE = 10.0  # seconds the workers are given to finish sending before the pool is ended
_COLOURS = {"-": "\x1b[31m", "+": "\x1b[32m", "@": "\x1b[36m"}


@dataclass(frozen=True)
class ImageTargets:
    """``--save-images DIR --images-url PREFIX``, and how images are fetched: ``[images]``
    (``--per-host`` applied), ``max_fetches`` at once in all, ``retries``."""

    folder: Path
    prefix: str  # without a trailing "/"
    limits: ImagesConfig
    max_fetches: int
    retries: int

    def store(self) -> ImageStore:
        """The folder as a store (``is_image`` loads the service's type checks)."""
        from feedfix.cli.save_images import is_image  # noqa: PLC0415 - aiohttp comes with it

        svg, max_size = self.limits.svg, self.limits.max_size
        return ImageStore(self.folder, lambda head: is_image(head, svg=svg), max_size)


@dataclass(frozen=True)
class MendSettings:
    """What every file is examined with (sent once to each worker)."""

    rules: BodyRules
    max_size: int
    named: frozenset[Path]  # paths given on the command line: "not a post" is an error
    diff: bool  # a dry run: make the patch
    colour: bool
    keep_data: bool  # --write: bring the mended bytes back
    images: ImageTargets | None = None  # --save-images


@dataclass(frozen=True)
class PostImages:
    """A mended post and its images, to point them home once they are on disk."""

    mended: Mended
    refs: tuple[ImageRef, ...]
    home: tuple[tuple[str, str], ...]  # the images already on disk

    def pointed_home(self, home: Mapping[str, str], prefix: str) -> Mended:
        """The mended post with every image in ``home`` pointed at PREFIX/path; its edits
        are of the original text (for the diff)."""
        edits = home_edits(self.refs, home, prefix)
        if not edits:
            return self.mended
        m = self.mended
        after = splice(m.after, edits)
        counts = Counter(m.counts)
        counts[SAVE] += len(edits)
        return dataclasses.replace(
            m,
            data=m.bom + after.encode(m.encoding),
            after=after,
            counts=counts,
            edits=tuple(compose(m.edits, edits, m.after)),
        )


@dataclass(frozen=True)
class Outcome:
    """What became of one file."""

    path: Path
    status: str  # "changed" | "unchanged" | "skipped" | "failed" | "pending" (images to fetch)
    message: str = ""
    counts: tuple[tuple[str, int], ...] = ()
    source: Source | None = None  # without its bytes
    data: bytes = b""  # the mended bytes, with keep_data
    diff: bytes = b""  # the patch, with diff
    missing: tuple[str, ...] = ()  # image URLs not in the images folder
    present: int = 0  # image URLs that were
    images: PostImages | None = None  # "pending": what to finish the post with


def unified_diff(name: str, mended: Mended, *, colour: bool) -> Iterator[bytes]:
    """A ``git diff``-style patch of one file, its lines in the file's own encoding (as git
    shows them), so that ``patch -p1`` applies it; lines keep their own line endings."""
    before, edits = mended.before, list(mended.edits)
    if mended.bom:  # the BOM is part of the first line as patch sees it
        before = "\ufeff" + before
        edits = [Edit(e.start + 1, e.end + 1, e.new, e.rule) for e in edits]
    path = name.lstrip("/")
    codec = "utf-8" if mended.encoding.startswith("utf-8") else mended.encoding
    for number, line in enumerate(patch.unified_diff(before, edits, f"a/{path}", f"b/{path}")):
        if number < 2:  # the file names
            yield line.encode("utf-8", "surrogateescape")
            continue
        if colour and line[:1] in _COLOURS:
            line = f"{_COLOURS[line[0]]}{line[:-1]}\x1b[0m\n"  # noqa: PLW2901
        yield line.encode(codec, "surrogateescape")


def examine(path: Path, settings: MendSettings) -> Outcome:
    """Read and mend one file; the patch or the new bytes as the settings ask."""
    try:
        source = read_source(path, settings.max_size)
        mended = mend(source.data, settings.rules, html_file=source.is_html)
    except OverlappingEdits as exc:  # a bug: say so for this file, mend the others
        message = f"internal error while mending, left as it is ({exc}); please report it"
        return Outcome(path, "failed", message)
    except InputError as exc:
        if str(exc).startswith("not a post") and path not in settings.named:
            return Outcome(path, "skipped")
        return Outcome(path, "failed", str(exc))
    if settings.images is None:
        return finished(Outcome(path, "unchanged", source=source), mended, settings)
    return _with_images(Outcome(path, "unchanged", source=source), mended, settings)


def _with_images(outcome: Outcome, mended: Mended, settings: MendSettings) -> Outcome:
    """``--save-images``: the post's images that are in DIR pointed home; with ``--write``
    and images missing, left "pending" for the parent to fetch them."""
    source, targets = outcome.source, settings.images
    assert source is not None and targets is not None  # noqa: S101 - examine's
    refs = image_refs(mended.after, html_file=source.is_html, prefix=targets.prefix)
    store = _stores.get(targets) or _stores.setdefault(targets, targets.store())
    home: dict[str, str] = {}
    missing: list[str] = []
    for url in dict.fromkeys(r.url for r in refs):
        name = name_for(url)
        found = store.find(name) if name is not None else None
        if found is not None:
            home[url] = found
        else:
            missing.append(url)
    outcome = dataclasses.replace(outcome, missing=tuple(missing), present=len(home))
    images = PostImages(mended, tuple(refs), tuple(home.items()))
    if missing and settings.keep_data:  # --write: the parent fetches, then finishes it
        return dataclasses.replace(
            outcome, status="pending", source=dataclasses.replace(source, data=b""), images=images
        )
    return finished(outcome, images.pointed_home(home, targets.prefix), settings)


_stores: dict[ImageTargets, ImageStore] = {}  # one per process


def finished(outcome: Outcome, mended: Mended, settings: MendSettings) -> Outcome:
    """``outcome`` as the final ``mended`` says: changed (with the bytes or the patch that
    the settings ask for) or unchanged."""
    if not mended.changed:
        return dataclasses.replace(outcome, status="unchanged", source=None, images=None)
    assert outcome.source is not None  # noqa: S101 - every examined file has one
    return dataclasses.replace(
        outcome,
        status="changed",
        counts=tuple(mended.counts.items()),
        source=dataclasses.replace(outcome.source, data=b""),
        data=mended.data if settings.keep_data else b"",
        diff=b"".join(unified_diff(str(outcome.path), mended, colour=settings.colour))
        if settings.diff
        else b"",
        images=None,
    )


def jobs_for(requested: int, files: int) -> int:
    """``--jobs``: as asked, or (0) one per CPU up to MAX_JOBS for a large tree."""
    if requested > 0:
        return requested
    if files < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(MAX_JOBS, os.cpu_count() or 1))


_settings: MendSettings | None = None  # a worker's copy


def _start_worker(settings: MendSettings) -> None:
    global _settings  # noqa: PLW0603 - one per worker process, set once at its start
    _settings = settings
    # Ctrl-C reaches the whole process group: the parent handles it (and ends the workers);
    # a worker's own KeyboardInterrupt would print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _examine_in_worker(paths: tuple[Path, ...]) -> list[Outcome]:
    assert _settings is not None  # noqa: S101 - set by the pool's initializer
    return [examine(path, _settings) for path in paths]


def examine_all(
    paths: Iterable[Path], settings: MendSettings, jobs: int
) -> Generator[Outcome, None, None]:
    """Every file's outcome, in order; with ``jobs`` > 1 from that many forked workers."""
    if jobs <= 1:
        for path in paths:
            yield examine(path, settings)
        return
    # Pool.imap hands out every path at once and queues the results however slowly they are
    # taken: with --save-images (a network-bound reader) that held 10,000 mended posts. The
    # paths go out only while fewer than AHEAD results wait.
    ahead = threading.Semaphore(AHEAD)
    stop = threading.Event()

    def handed_out() -> Iterator[Path]:
        for path in paths:
            ahead.acquire()
            if stop.is_set():
                return
            yield path

    context = multiprocessing.get_context("fork")
    with context.Pool(jobs, initializer=_start_worker, initargs=(settings,)) as pool:
        results = pool.imap(_examine_in_worker, _chunks(handed_out()))
        try:
            for chunk in results:
                for outcome in chunk:
                    ahead.release()
                    yield outcome
        finally:  # wake the pool's feeding thread, or ending the pool waits for it forever
            stop.set()
            ahead.release()
            _settle(results)


def _chunks(paths: Iterator[Path]) -> Iterator[tuple[Path, ...]]:
    """``CHUNK`` paths a task, as imap's own ``chunksize`` would hand them out: chunked
    here, its results are the pool's iterator itself, which ``_settle`` can wait on."""
    while chunk := tuple(itertools.islice(paths, CHUNK)):
        yield chunk


def _settle(results: IMapIterator[list[Outcome]]) -> None:
    """Take what the workers still send for the paths they were given (``SETTLE`` seconds
    at most) before the pool is ended: ``Pool.terminate`` kills a worker wherever it is, and
    one killed halfway through sending an outcome larger than a pipe holds left the pool's
    result thread waiting forever for the rest of it (Ctrl-C hung ``fix-posts --jobs``
    about once in 30 under load)."""
    deadline = time.monotonic() + SETTLE
    while (left := deadline - time.monotonic()) > 0:
        try:
            results.next(timeout=left)
        except StopIteration:
            return  # every outcome taken: no worker is sending
        except multiprocessing.TimeoutError:
            return  # a worker still busy after SETTLE is ended where it is, as before
        except Exception:  # noqa: S112 - one file's own error: the reader has stopped
            continue
