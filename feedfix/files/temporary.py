"""Temporary files beside a target, for writes that replace it atomically.

A temporary name is hidden, ends with ``TEMP_SUFFIX`` (so that a leftover is recognised)
and holds the pid and a counter; ``O_EXCL`` guarantees nobody else's file is taken.
``tempfile``'s random names cost more, and its import 4-5 ms of every conversion's start.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

TEMP_SUFFIX = ".feedfix-tmp"
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_SERIAL = itertools.count()


def temporary_name(target: str) -> str:
    """A hidden name beside ``target`` that nobody else uses (strings: the image store's
    loop works on them, see ``ImageStore.find``)."""
    folder, name = os.path.split(target)
    hidden = f".{name}.{os.getpid()}.{next(_SERIAL)}{TEMP_SUFFIX}"
    return os.path.join(folder, hidden)  # noqa: PTH118


def create_beside(target: Path, mode: int) -> tuple[int, Path]:
    """A new file (``mode``, less the umask) beside ``target`` to write into, and its path;
    a leftover of an earlier process that had this pid is passed over."""
    for _ in range(100):
        tmp = Path(temporary_name(str(target)))
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | CLOEXEC, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")
