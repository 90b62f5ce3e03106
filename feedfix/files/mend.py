"""The file side of ``fix-posts``: which files, reading them, and replacing them atomically.

A mended file is written to a temporary file beside it, flushed to disk and renamed over the
original, so a crash, a kill or a full disk leaves either the old file or the new one, never a
partial one. A file whose bytes would not change is never opened for writing, so its
modification time stays and ``git status`` lists only the files that were mended.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from feedfix.core.errors import InputError
from feedfix.files.sources import MAX_FOLDER_FILES, describe_os_error, open_regular, walk
from feedfix.files.temporary import TEMP_SUFFIX, create_beside

POST_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".html", ".htm"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
# The data and what is needed to read it back (the size), not the access time: enough
# before a rename, and cheaper where the system has it.
_datasync = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True)
class Source:
    """One file to mend: the name to show, the real file behind it, what it held when read."""

    name: str
    path: Path  # symlinks resolved: the file that is rewritten
    data: bytes
    mtime_ns: int
    size: int
    mode: int

    @property
    def is_html(self) -> bool:
        """A plain HTML page by its name (a generated site's ``public/``)."""
        return self.path.suffix.lower() in HTML_SUFFIXES


def find_files(
    paths: Iterable[str],
    *,
    follow_symlinks: bool = False,
    warn: Callable[[str], None] = lambda _message: None,
) -> list[Path]:
    """Every file to look at: named files as given, folders searched for post-like files.

    InputError (bad input, nothing is done) for a path that does not exist or a tree over
    ``MAX_FOLDER_FILES``; the same file reached twice (a symlink) is mended once. A symlink
    found in a folder whose target is outside every path given is left alone (``warn``
    names it), unless ``follow_symlinks``: mending must not write outside what was named.
    """
    given_paths = list(paths)
    trees = [Path(p).resolve() for p in given_paths]

    def leaves(link: Path) -> bool:
        target = link.resolve()
        if any(target == tree or target.is_relative_to(tree) for tree in trees):
            return False
        warn(f"{link}: a symlink out of the paths given; left alone (--follow-symlinks)")
        return True

    refuse_link = None if follow_symlinks else leaves
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for given in given_paths:
        path = Path(given)
        try:
            stat = path.stat()
        except OSError as exc:
            raise InputError(f"{given}: {describe_os_error(exc)}") from exc
        named = [(path, (stat.st_dev, stat.st_ino))]
        walked = walk(path, POST_SUFFIXES, refuse_link) if path.is_dir() else named
        for candidate, key in walked:
            if key in seen:
                continue
            seen.add(key)
            found.append(candidate)
            if len(found) > MAX_FOLDER_FILES:
                raise InputError(f"{given}: more than {MAX_FOLDER_FILES:,} files to mend")
    return found


def read_source(path: Path, max_size: int) -> Source:
    """The file's bytes and the facts needed to replace it safely later."""
    try:
        real = path.resolve() if path.is_symlink() else path
        with open_regular(real) as handle:  # a FIFO is refused, not waited on
            fd = handle.fileno()
            stat = os.fstat(fd)
            if stat.st_size > max_size:
                raise InputError(
                    f"is {stat.st_size:,} bytes, over the {max_size:,}-byte limit (--max-size)"
                )
            # Ask for the size it has (plus one, to see growth), not the limit: a 50 MB
            # request would allocate 50 MB per file.
            chunks = [os.read(fd, stat.st_size + 1)]
            total = len(chunks[0])
            while chunks[-1] and total <= max_size:
                chunks.append(os.read(fd, min(1 << 20, max_size + 1 - total)))
                total += len(chunks[-1])
            data = b"".join(chunks)
    except OSError as exc:
        raise InputError(f"cannot read: {describe_os_error(exc)}") from exc
    if len(data) > max_size:
        raise InputError(f"is over the {max_size:,}-byte limit (--max-size)")
    return Source(str(path), real, data, stat.st_mtime_ns, stat.st_size, stat.st_mode)


def replace_file(source: Source, data: bytes, backup_suffix: str | None, *, sync: bool) -> None:
    """Put ``data`` in place of the file, atomically; InputError naming the problem.

    Refuses when the file changed since it was read (someone else is editing it). With a
    backup suffix, the original stays under ``NAME + SUFFIX`` (a hard link where possible).
    The temporary file is ``temporary.create_beside``'s.
    """
    target = source.path
    try:
        fd, tmp = create_beside(target, source.mode & 0o7777)
    except OSError as exc:
        raise InputError(f"cannot write beside it: {describe_os_error(exc)}") from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, source.mode & 0o7777)  # the umask may have narrowed it
            if sync:
                _datasync(fd)
        finally:
            os.close(fd)
        now = target.stat()
        if (now.st_mtime_ns, now.st_size) != (source.mtime_ns, source.size):
            raise InputError("changed while being mended; left as it is")
        if backup_suffix:
            _backup(target, Path(f"{target}{backup_suffix}"))
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write: {describe_os_error(exc)}") from exc
    except BaseException:  # InputError above, or an interrupt: no temporary file stays
        tmp.unlink(missing_ok=True)
        raise


def _backup(target: Path, backup: Path) -> None:
    """Keep the original's bytes under ``backup``, replacing an older backup atomically."""
    staging = backup.with_name(f".{backup.name}{TEMP_SUFFIX}")
    staging.unlink(missing_ok=True)
    try:
        os.link(target, staging)
    except OSError:
        staging.write_bytes(target.read_bytes())
    staging.replace(backup)


def sync_folders(folders: Iterable[Path]) -> None:
    """Flush the renames themselves (the folder entries) to disk."""
    for folder in folders:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
