"""Where parsing, cleaning and rendering run (a feed's RSS and JSON Feed too).

One worker does it all, one job at a time, and keeps every feed's last rendering (its spans:
a digest and two offsets per entry) in its ``Cleaner``. A job carries the feed's config (its
rules as their frozen spec: the compiled rules are built in the worker, once per spec), the
upstream's bytes, the output being served and the feed's archive as the store holds it (the
service reads it for the poll and lets it go after: the archive lives in the store), and its
answer only the new output and the archive rows that changed.

``[poll] cleaner`` says where the worker runs:

- ``thread`` (the default): a thread of the server. Least memory. The work holds the GIL,
  so while many feeds change at once serving slows down: each time the event loop gives up
  the GIL for a socket call it may wait for the worker to hand it back.
- ``process``: a child process, forked at start before the event loop, threads or sockets
  exist (it shares the imported code's pages); it dies with the server (``PR_SET_PDEATHSIG``),
  ignores Ctrl-C (the server stops it), and is started again if it dies. Serving keeps its
  pace; it costs a second interpreter's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from feedfix.config import FeedConfig
from feedfix.core.archive import Archived
from feedfix.core.errors import InputError
from feedfix.core.model import Entry, Feed, Link
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.pipeline import posts_folder_id
from feedfix.core.render import Rendering
from feedfix.core.republish import other_format, republish
from feedfix.files.sources import FolderOptions, posts_feed
from feedfix.service.image_archive import FEED_LEVEL, EntryImages, ages, entry_paths, feed_paths
from feedfix.service.masking import without_credentials
from feedfix.service.poll.fetch_types import PostFile, SourceUnreadable
from feedfix.service.served import strong_etag
from feedfix.service.state import ArchiveUpdate, Published
from feedfix.service.store import bounded_sources
from feedfix.service.trim import Trimmer

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Job:
    """One upstream response to republish."""

    feed: FeedConfig  # plain frozen data: its rules travel as their spec
    data: bytes
    now: float
    self_url: str | None
    encoding_hint: str | None
    # the output being served: equal bytes are not sent back, and its unchanged entries are
    # copied from it (inflated only then; a gzip is a fifth of the bytes to send a process)
    served: Published | None
    resend: bool  # the last archive rows sent were not stored: send every row
    want_sources: bool = False  # the store holds no sources for this feed: send them anyway
    # the feed's archive as the store holds it, read for this job (the worker keeps none)
    archive: Mapping[str, Archived] = field(default_factory=dict)
    posts: tuple[PostFile, ...] | None = None  # a folder source's files, instead of ``data``
    # [server] base_url when the image archive is on: the images of the entries cleaned anew
    # are found (``image_archive``) and handed back in ``Cleaned.images``
    image_base: str | None = None


@dataclass(frozen=True)
class FormatJob:
    """A feed's Atom (as served) to render in another format (``render.FORMATS``)."""

    name: str
    atom: Published
    fmt: str
    self_url: str | None  # where the Atom is served (``[server] base_url``), if known


@dataclass(frozen=True)
class Cleaned:
    """What a job made."""

    published: Published | None  # new bytes to serve, when the output changed
    entries: int
    rule_changes: dict[str, int]  # per rule, the changes it made
    window: int  # entries in the upstream's response
    cleaned: int
    reused: int
    rendered: int
    ttl_minutes: int | None
    archive: ArchiveUpdate
    # The window's entries as received, when any was cleaned anew (else the stored ones hold).
    sources: tuple[Entry, ...] | None = None
    images: EntryImages | None = None  # for the image archive (``Job.image_base``)


# ---- in the worker ----------------------------------------------------------------------


class Cleaner:
    """The worker's state and work: every feed's last rendering.

    One is made per worker (by the server's ``Worker`` for a thread, by a child process at
    its start) and lives as long as it does: a replaced process starts with a new, empty one
    (its first job of each feed renders every entry).
    """

    def __init__(self) -> None:
        self.renderings: dict[str, tuple[str, Rendering]] = {}  # feed: (etag, without body)
        self.trim = Trimmer()  # what a job read and made is let go: give its pages back

    @staticmethod
    def _source(job: Job) -> bytes | Feed:
        """What to republish: the upstream's bytes, parsed here when the config overrides
        the feed's own title, link or id; a folder's posts read as one feed."""
        if job.posts is not None:
            return _folder_feed(job.feed, job.posts, job.self_url)
        if not (job.feed.title or job.feed.link or job.feed.id):
            return job.data
        options = ParseOptions(base_url=job.feed.url, encoding_hint=job.encoding_hint, strict=True)
        return _own_metadata(parse_document(job.data, job.feed.name, options), job.feed)

    def forget(self, name: str) -> None:
        """Drop a feed that left the config."""
        self.renderings.pop(name, None)

    def render_format(self, job: FormatJob) -> Published:
        """The feed in another format, read back from its Atom: compressed and tagged here,
        dated as the Atom is (a format's bytes change exactly when the Atom's do). The same
        Atom always gives the same bytes, so every replica serves the same ETag."""
        self.trim()
        body = other_format(job.atom.identity(), job.fmt, job.self_url)
        return Published.of(body, strong_etag(body), job.atom.last_modified, job.atom.entries)

    def clean(self, job: Job) -> Cleaned:
        """Republish one response against the feed's archive and last rendering."""
        self.trim()  # what the jobs before this one read and made is garbage by now
        name = job.feed.name
        archive = job.archive
        kept = self.renderings.get(name)  # its spans fit only the very bytes being served
        served = job.served
        last = None
        if served is not None and kept is not None and kept[0] == served.etag:
            last = replace(kept[1], body=served.identity())
        made = republish(
            self._source(job),
            _public(job.feed),
            archive,
            job.now,
            self_url=job.self_url,
            encoding_hint=job.encoding_hint,
            last=last,
        )
        etag = strong_etag(made.atom)
        self.renderings[name] = (etag, replace(made.rendering, body=b""))  # the server has it
        entries = len(made.feed.entries)
        same = served is not None and served.etag == etag
        published = None if same else Published.of(made.atom, etag, job.now, entries)
        changed = {
            key: entry
            for key, entry in made.archive.items()
            if job.resend or archive.get(key) is not entry
        }
        return Cleaned(
            published=published,
            entries=entries,
            rule_changes={n: c.changes for n, c in made.report.counts.items() if c.changes},
            window=made.window,
            cleaned=made.cleaned,
            reused=made.reused,
            rendered=made.rendering.rendered,
            ttl_minutes=made.ttl_minutes,
            archive=ArchiveUpdate(frozenset(made.archive), changed),
            sources=_kept(made.sources) if made.cleaned or job.want_sources else None,
            images=_images(job, made.feed, made.archive, changed) if job.image_base else None,
        )


def _images(
    job: Job, feed: Feed, archive: Mapping[str, Archived], changed: Mapping[str, Archived]
) -> EntryImages:
    """The published entries (each with its age) and the images of those cleaned anew, found
    here, off the event loop, in the entries just cleaned (``changed``: new rows only)."""
    base = job.image_base or ""
    images = {key: entry_paths(a.entry, base) for key, a in changed.items()}
    images[FEED_LEVEL] = feed_paths(feed, base)
    return EntryImages(job.feed.name, job.now, ages(archive), images)


def _kept(sources: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """Only the sources the store keeps: a huge entry does not travel back from a worker
    process (nor wait in the server for the store to drop it)."""
    return tuple(bounded_sources(sources))


def _public(feed: FeedConfig) -> FeedConfig:
    """The feed as republishing may see it: the URL it is fetched from stands in for the
    feed's base and id when the feed has none of its own, so it goes without credentials
    (userinfo, ``key=``, ``token=``…), the same in every replica and after every restart."""
    public = without_credentials(feed.url) if feed.url is not None else None
    return feed if public == feed.url else replace(feed, url=public)


def _folder_feed(feed: FeedConfig, posts: tuple[PostFile, ...], served_at: str | None) -> Feed:
    """A folder source's posts as one feed, with the config's ``title``, ``link`` and ``id``
    (as ``convert --title/--link/--id``); without a title it is titled with the folder's
    name, and with a link each post links to its page on the blog (``files/permalinks.py``).
    Files that are not posts are skipped, as ``convert`` skips them. Its id: the config's,
    else the address it is served at (``served_at``) or its link, else made from the folder
    as ``convert`` does."""
    files = ((p.name, InputError(p.error) if p.error else p.data) for p in posts)
    options = FolderOptions(home=feed.link, permalink=feed.permalink)
    try:
        read = posts_feed(files, options, lambda _warning: None)
    except InputError as exc:
        raise SourceUnreadable(f"{feed.path}: {exc}") from exc
    folder = PurePath(feed.path or feed.name).name or feed.name
    title = feed.title or folder
    made_up = posts_folder_id(folder, title) if served_at is None and not feed.link else None
    links = (Link(href=feed.link),) if feed.link else ()
    return replace(read, title=title, id=feed.id or made_up, links=links)


def _own_metadata(parsed: Feed, feed: FeedConfig) -> Feed:
    """A url feed with the title, site link and id its config gives over the upstream's."""
    links = parsed.links
    if feed.link:
        links = (Link(href=feed.link), *(k for k in links if k.rel != "alternate"))
    return replace(parsed, title=feed.title or parsed.title, links=links, id=feed.id or parsed.id)


_process_cleaner: Cleaner | None = None  # a worker process's own (its pool calls functions)


def _start_process() -> None:
    """Make the process's Cleaner; die with the server; leave Ctrl-C to it."""
    global _process_cleaner  # noqa: PLW0603 (one per process, made once at its start)
    _process_cleaner = Cleaner()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own pipes end the worker
        pass
    if os.getppid() == 1:  # the server died before prctl took effect
        os._exit(0)


def _ready() -> int:
    return os.getpid()


def _in_process(method: Callable[..., Any], *args: Any) -> Any:
    """Call a Cleaner method on the process's own Cleaner (a pool sends a function and its
    arguments, so the method goes unbound: ``Cleaner.clean`` pickles by name)."""
    if _process_cleaner is None:  # pragma: no cover - the pool's initializer made it
        raise RuntimeError("the worker process has no Cleaner")
    return method(_process_cleaner, *args)


# ---- in the server ----------------------------------------------------------------------


class Worker:
    """The server's handle on the worker."""

    def __init__(self, *, process: bool = False) -> None:
        self.process = process
        self.generation = 0  # how many times the worker was replaced
        self._cleaner = Cleaner()  # the thread worker's (a worker process makes its own)
        self._pool = self._start(first=True)

    def _start(self, *, first: bool = False) -> Executor:
        if not self.process:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedfix-clean")
        if first:  # what exists now (the imported code) stays shared, untouched by either GC
            gc.collect()
            gc.freeze()
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_process,
        )
        pool.submit(_ready).result()  # fork now, not at the first poll
        return pool

    def restart(self) -> None:
        """A new worker process after the old one died (it starts with no renderings).

        This fork happens in a running server, threads and all: only the forking thread goes
        on in the child, which touches nothing the other threads lock (no logging, no store).
        """
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()
        self.generation += 1

    async def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        """Run a Cleaner method in the worker, on the thread worker's Cleaner or on the
        process's own."""
        loop = asyncio.get_running_loop()
        if self.process:
            return await loop.run_in_executor(self._pool, _in_process, method, *args)
        return await loop.run_in_executor(self._pool, method, self._cleaner, *args)

    async def forget(self, name: str) -> None:
        """Drop a feed that left the config."""
        with contextlib.suppress(BrokenProcessPool):
            await self._call(Cleaner.forget, name)

    async def render_format(self, job: FormatJob) -> Published:
        """Render a feed in another format (``Cleaner.render_format``), after the jobs
        before it. Raises ``BrokenProcessPool`` when the worker process died."""
        result: Published = await self._call(Cleaner.render_format, job)
        return result

    async def republish(self, job: Job) -> Cleaned:
        """Republish one response (``job.feed``'s rules are built in the worker, once per spec).

        Raises ``BrokenProcessPool`` when the worker process died.
        """
        result: Cleaned = await self._call(Cleaner.clean, job)
        return result

    def close(self) -> None:
        """Stop the worker."""
        self._pool.shutdown(wait=True, cancel_futures=True)
