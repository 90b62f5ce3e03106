"""A feed whose source is a local file or a folder of posts, read as an upstream is fetched.

A feed with ``path`` instead of ``url`` is polled like any other: the poller asks ``read_local``
where it would ask the HTTP fetcher and gets the same ``FetchResult``, a 200 with the bytes or
a 304 when nothing changed, so the cleaning, the ETag/304 answers and the stale rules are the
same. Whether anything changed is told by ``stat`` alone: the validator is a digest of the
name, inode, size and modification time of the file (or of every post file below the folder),
so polling an unchanged blog costs one ``stat`` per file and no read. A file replaced by a
rename, rewritten in place, or a post added or removed, changes it.

A path that is missing or unreadable, or a folder without posts, is a failing source
(``SourceUnreadable``, naming the path): the last good copy stays served, marked stale.
Blocking file I/O: run it off the event loop.
"""

from __future__ import annotations

import hashlib
import stat
from email.utils import formatdate
from pathlib import Path

from feedfix.core.errors import InputError
from feedfix.files.sources import describe_os_error, folder_files, read_bytes
from feedfix.service.poll.fetch_types import (
    FetchRequest,
    FetchResult,
    PostFile,
    SourceUnreadable,
    TooLarge,
)

# The files of a folder source that are read as posts (a blog's _posts also holds images).
POST_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd", ".html", ".htm", ".txt"})


def _signature(entries: list[tuple[str, int, int, int]]) -> str:
    """A strong validator from (name, inode, size, mtime in ns) of every file read."""
    digest = hashlib.blake2b(digest_size=16)
    for name, inode, size, mtime in entries:
        digest.update(f"{name}\x1f{inode}\x1f{size}\x1f{mtime}\x1e".encode("utf-8", "replace"))
    return f'"{digest.hexdigest()}"'


def read_local(path: str, request: FetchRequest) -> FetchResult:
    """The file's bytes (or the folder's posts), or a 304 when ``request.etag`` still holds.

    ``max_size`` caps the file, or the folder's posts all together.
    """
    root = Path(path)
    try:
        info = root.stat()
        if stat.S_ISDIR(info.st_mode):
            files = [p for p in folder_files(root) if p.suffix.lower() in POST_SUFFIXES]
            stats = [(str(p.relative_to(root)), p.stat()) for p in files]
        else:
            files, stats = [root], [("", info)]
    except OSError as exc:
        raise SourceUnreadable(f"{path}: {describe_os_error(exc)}") from exc
    except InputError as exc:  # too many files below the folder
        raise SourceUnreadable(f"{path}: {exc}") from exc
    etag = _signature([(n, s.st_ino, s.st_size, s.st_mtime_ns) for n, s in stats])
    newest = max((s.st_mtime for _, s in stats), default=info.st_mtime)
    total = sum(s.st_size for _, s in stats)
    if total > request.max_size:
        raise TooLarge(f"{path}: {total:,} bytes, over the {request.max_size:,}-byte cap")
    if request.etag == etag:
        return _result(304, b"", etag, newest)
    if files == [root]:
        try:
            body = read_bytes(path, request.max_size)
        except InputError as exc:
            raise SourceUnreadable(f"{path}: {exc}") from exc
        return _result(200, body, etag, newest)
    if not files:
        raise SourceUnreadable(
            f"{path}: no post files in the folder ({', '.join(sorted(POST_SUFFIXES))})"
        )
    posts = []
    for file, (name, _) in zip(files, stats, strict=True):
        try:
            posts.append(PostFile(name, read_bytes(str(file), request.max_size)))
        except InputError as exc:  # gone since the stat, say: the worker skips it
            posts.append(PostFile(name, b"", str(exc)))
    return _result(200, b"", etag, newest, tuple(posts))


def _result(
    status: int, body: bytes, etag: str, mtime: float, posts: tuple[PostFile, ...] | None = None
) -> FetchResult:
    return FetchResult(
        status=status,
        body=body,
        etag=etag,
        last_modified=formatdate(mtime, usegmt=True),
        charset=None,
        content_type=None,
        cache_control=None,
        retry_after=None,
        final_url="",
        permanent_redirect=None,
        elapsed=0.0,
        posts=posts,
    )
