# ruff: noqa: PTH103, PTH105, PTH108, PTH116, PTH118, PTH120, PTH123 - see ImageStore.find
"""The images folder of ``fix-posts --save-images``: finding a saved image, saving one whole.

The disk is the only record. An image appears under its name (image_names.py) only by a
rename, after its bytes were checked by the caller, written to a hidden temporary file beside
it and flushed; so a name that exists holds a whole image, and a run that was killed leaves at
most a hidden ``.NAME.*.feedfix-tmp``. ``find`` still reads each file's first bytes before
trusting it (something else may have put a file there).

Identical bytes under different URLs are kept once: ``.by-sha256/ab/cdef…`` (hidden, so Hexo
and Jekyll do not publish it) is a hard link to the first copy, and later names are hard links
to it: one file on disk with several names. Where the file system has no hard links each name
is a copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from feedfix.core.errors import InputError
from feedfix.files.image_names import ImageName
from feedfix.files.mend import sync_folders
from feedfix.files.sources import describe_os_error
from feedfix.files.temporary import CLOEXEC, temporary_name

INDEX = ".by-sha256"
SNIFF_BYTES = 512
STRIPES = 64
_datasync = getattr(os, "fdatasync", os.fsync)


class ImageStore:
    """The folder ``root``; ``is_image(first_bytes)`` says whether a file is an image and
    ``max_size`` bounds what ``find`` accepts."""

    def __init__(self, root: Path, is_image: Callable[[bytes], bool], max_size: int) -> None:
        self.root = root
        self.is_image = is_image
        self.max_size = max_size
        self._unsynced: set[str] = set()
        self._lock = threading.Lock()
        # the same bytes saved by two threads at once: the second waits and links
        self._stripes = [threading.Lock() for _ in range(STRIPES)]

    def find(self, name: ImageName) -> str | None:
        """The relative path of the saved image, or None when no whole image is there.

        Paths here are strings, not ``Path``s: pathlib interns every part it parses, for
        good, and a run can see 80,000 image names."""
        for path in name.candidates():
            if self._holds_image(os.path.join(self.root, path)):
                return path
        return None

    def _holds_image(self, path: str) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | CLOEXEC)
        except OSError:
            return False
        try:
            size = os.fstat(fd).st_size
            return 0 < size <= self.max_size and self.is_image(os.read(fd, SNIFF_BYTES))
        except OSError:
            return False
        finally:
            os.close(fd)

    def save(self, name: ImageName, body: bytes, media_type: str) -> str:
        """Store a checked image under its name; InputError (``cannot store: …``) when the
        disk refuses. Safe to call from several threads."""
        relative = name.path_for(media_type)
        target = os.path.join(self.root, relative)
        folder = os.path.dirname(target)
        digest = hashlib.sha256(body).hexdigest()
        index = os.path.join(self.root, INDEX, digest[:2], digest[2:])
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = temporary_name(target)
            with self._stripes[int(digest[:8], 16) % STRIPES]:
                try:
                    linked = _same_bytes(index, body) and _link(index, tmp)
                    if not linked:
                        _write(tmp, body)
                    os.replace(tmp, target)
                except BaseException:
                    _remove(tmp)
                    raise
                if not linked:
                    _index(target, index)
        except OSError as exc:
            raise InputError(f"cannot store {relative}: {describe_os_error(exc)}") from exc
        with self._lock:
            self._unsynced.add(folder)
        return relative

    def sync(self) -> None:
        """Flush the folders that got new names to disk (before a post points at them)."""
        with self._lock:
            folders, self._unsynced = self._unsynced, set()
        sync_folders(Path(f) for f in sorted(folders))


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _same_bytes(path: str, body: bytes) -> bool:
    try:
        if os.stat(path).st_size != len(body):
            return False
        with open(path, "rb") as handle:
            return handle.read() == body
    except OSError:
        return False


def _link(existing: str, new: str) -> bool:
    try:
        os.link(existing, new)
    except OSError:
        return False
    return True


def _write(path: str, body: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | CLOEXEC, 0o644)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
        _datasync(fd)
    finally:
        os.close(fd)


def _index(target: str, index: str) -> None:
    """Make ``index`` a name of ``target``'s bytes (replacing a stale one); best effort: an
    index that cannot be made only costs a second copy of these bytes later."""
    staging = temporary_name(index)
    try:
        os.makedirs(os.path.dirname(index), exist_ok=True)
        os.link(target, staging)
        os.replace(staging, index)
    except OSError:
        _remove(staging)
