"""Reading inputs from the file system and standard input (the shell side of ``convert``).

Every limit is checked before the bytes are read, and every failure becomes an InputError
that names the problem, so the CLI can print one line.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import BinaryIO

from feedfix.core.errors import InputError, InputTooLarge
from feedfix.core.model import Entry, Feed
from feedfix.core.parse import encoding
from feedfix.core.parse.post import looks_like_post, newest_first, parse_post
from feedfix.core.sizes import DEFAULT_MAX_SIZE
from feedfix.files.permalinks import with_post_url

MAX_FOLDER_FILES = 100_000
MAX_FOLDER_DEPTH = 32


def describe_os_error(exc: OSError) -> str:
    """An OSError in a few words, as the one-line messages want it."""
    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return exc.strerror or str(exc)


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def open_regular(path: str | Path) -> BinaryIO:
    """The file open for reading; InputError when it is not a regular file (a FIFO would
    wait for a writer for ever, a device never end), told at once: opened without blocking,
    judged by ``fstat`` (no name swapped in between), read as usual after that."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
            raise InputError(f"not a regular file ({kind})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _too_large(size: int, limit: int) -> InputTooLarge:
    return InputTooLarge(f"input is {size:,} bytes, over the {limit:,}-byte limit (--max-size)")


def read_bytes(path: str, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """A file's bytes, or stdin's for ``-``; refuses anything over ``max_size``."""
    if path == "-":
        data = sys.stdin.buffer.read(max_size + 1)
        if len(data) > max_size:
            raise _too_large(len(data), max_size)
        return data
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_size:
                raise _too_large(size, max_size)
            data = handle.read(max_size + 1)
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from exc
    if len(data) > max_size:  # a file that grew, or a device that reports no size
        raise _too_large(len(data), max_size)
    return data


def walk(
    root: Path,
    suffixes: frozenset[str] | None = None,
    refuse_link: Callable[[Path], bool] | None = None,
) -> Iterator[tuple[Path, tuple[int, int]]]:
    """Files below ``root`` (only those ending in ``suffixes`` when given) in a stable order,
    each with its (device, inode) so a caller can tell two names of one file apart; hidden
    files and folders left out, symlink loops cut, at most ``MAX_FOLDER_DEPTH`` deep.
    A symlink (to a folder, or to a file that would be yielded) is not followed when
    ``refuse_link(path)`` says so."""
    stack: list[tuple[Path, int]] = [(root, 0)]
    seen: set[tuple[int, int]] = set()
    while stack:
        folder, depth = stack.pop()
        try:
            stat = folder.stat()
            if (stat.st_dev, stat.st_ino) in seen or depth > MAX_FOLDER_DEPTH:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            children = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for child in children:
            if child.name.startswith("."):
                continue
            link = refuse_link if refuse_link is not None and child.is_symlink() else None
            if child.is_dir():
                if link is None or not link(Path(child.path)):
                    subfolders.append((Path(child.path), depth + 1))
            elif child.is_file() and (
                suffixes is None or Path(child.name).suffix.lower() in suffixes
            ):
                if link is not None and link(Path(child.path)):
                    continue
                key = (stat.st_dev, child.inode())
                if child.is_symlink():  # the inode above is the link's
                    target = child.stat()
                    key = (target.st_dev, target.st_ino)
                yield Path(child.path), key
        stack.extend(reversed(subfolders))


@dataclass(frozen=True)
class FolderOptions:
    """How to read a folder of posts."""

    max_size: int = DEFAULT_MAX_SIZE
    timezone: tzinfo | None = None
    strict: bool = False
    home: str | None = None  # the blog's home: each post links to its page there
    permalink: str | None = None  # the pattern of those pages (``permalinks.py``)


def folder_files(root: Path) -> list[Path]:
    """The files below a folder, in a stable order, at most ``MAX_FOLDER_FILES`` of them."""
    files = []
    for index, (path, _) in enumerate(walk(root)):
        if index >= MAX_FOLDER_FILES:
            raise InputError(f"more than {MAX_FOLDER_FILES:,} files below the folder")
        files.append(path)
    return files


def read_posts_folder(
    folder: str,
    options: FolderOptions,
    warn: Callable[[str], None],
    progress: Callable[[int, int], None] | None = None,
) -> Feed:
    """Every post below ``folder`` as one feed, newest first; other files skipped with a warning."""
    root = Path(folder)
    files = folder_files(root)

    def read() -> Iterator[tuple[str, bytes | InputError]]:
        for done, path in enumerate(files, 1):
            name = str(path.relative_to(root))
            try:
                yield name, read_bytes(str(path), options.max_size)
            except InputError as exc:
                yield name, exc
            finally:
                if progress is not None:
                    progress(done, len(files))

    return posts_feed(read(), options, warn)


def posts_feed(
    files: Iterable[tuple[str, bytes | InputError]],
    options: FolderOptions,
    warn: Callable[[str], None],
) -> Feed:
    """Posts as one feed, newest first: each file's name and bytes (or why it could not be
    read). A file that is not a post is skipped with a warning; ``convert`` and a served
    folder (``local.py``, read in the cleaning worker) share this."""
    from datetime import UTC  # noqa: PLC0415

    entries: list[Entry] = []
    for name, data in files:
        try:
            if isinstance(data, InputError):
                raise data
            text = encoding.decode(data).text if data.strip() else ""
            if not looks_like_post(text):
                warn(f"{name}: skipped, not a post (no front matter)")
                continue
            entry = parse_post(text, name, options.timezone or UTC)
            if options.home:
                entry = with_post_url(entry, options.home, options.permalink, name)
            entries.append(entry)
        except InputError as exc:
            if options.strict:
                raise InputError(f"{name}: {exc}") from exc
            warn(f"{name}: skipped, {exc}")
    if not entries:
        raise InputError("no posts found in the folder (files with YAML front matter)")
    ordered = newest_first(entries)
    return Feed(entries=tuple(ordered))  # a folder has no title: --title, else its name
