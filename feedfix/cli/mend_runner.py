"""Examining the files of a ``fix-posts`` run, in this process or in worker processes.

Reading, mending and diffing is CPU work with no shared state, so a large tree is spread over
a few processes; the results come back in the files' order, and every write still happens in
the parent (so killing it stops the writing at once, and the crash guarantees are the same).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from feedfix.core.errors import InputError
from feedfix.core.mend import BodyRules, Edit, Mended, mend, patch
from feedfix.core.mend.edits import OverlappingEdits
from feedfix.files.mend import Source, read_source

PARALLEL_FROM = 1000  # files; below this, starting workers costs more than it saves
MAX_JOBS = 4
CHUNK = 32  # files handed to a worker at a time
_COLOURS = {"-": "\x1b[31m", "+": "\x1b[32m", "@": "\x1b[36m"}


@dataclass(frozen=True)
class MendSettings:
    """What every file is examined with (sent once to each worker)."""

    rules: BodyRules
    max_size: int
    named: frozenset[Path]  # paths given on the command line: "not a post" is an error
    diff: bool  # a dry run: make the patch
    colour: bool
    keep_data: bool  # --write: bring the mended bytes back


@dataclass(frozen=True)
class Outcome:
    """What became of one file."""

    path: Path
    status: str  # "changed" | "unchanged" | "skipped" | "failed"
    message: str = ""
    counts: tuple[tuple[str, int], ...] = ()
    source: Source | None = None  # without its bytes
    data: bytes = b""  # the mended bytes, with keep_data
    diff: bytes = b""  # the patch, with diff


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
    if not mended.changed:
        return Outcome(path, "unchanged")
    return Outcome(
        path,
        "changed",
        counts=tuple(mended.counts.items()),
        source=dataclasses.replace(source, data=b""),
        data=mended.data if settings.keep_data else b"",
        diff=b"".join(unified_diff(str(path), mended, colour=settings.colour))
        if settings.diff
        else b"",
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


def _examine_in_worker(path: Path) -> Outcome:
    assert _settings is not None  # noqa: S101 - set by the pool's initializer
    return examine(path, _settings)


def examine_all(
    paths: Iterable[Path], settings: MendSettings, jobs: int
) -> Generator[Outcome, None, None]:
    """Every file's outcome, in order; with ``jobs`` > 1 from that many forked workers."""
    if jobs <= 1:
        for path in paths:
            yield examine(path, settings)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs, initializer=_start_worker, initargs=(settings,)) as pool:
        yield from pool.imap(_examine_in_worker, paths, chunksize=CHUNK)
