"""The memory trim after republishing polls runs at most once per its period."""

from __future__ import annotations

import sys

import pytest

from feedfix.service import trim


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trims_at_most_once_per_period() -> None:
    """The first call trims; calls within the period do not; one after it does again."""
    trimmer = trim.Trimmer(every=0.2)
    assert trimmer() is True
    assert trimmer() is False
    trimmer._last -= 0.3  # the period has passed
    assert trimmer() is True


def test_redis_is_not_imported_by_a_sqlite_service() -> None:
    """A process on SQLite does not pay for redis-py (about 5 MB): only Redis imports it."""
    import subprocess  # noqa: PLC0415

    code = "import sys, feedfix.service.app; print('redis' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "False"
