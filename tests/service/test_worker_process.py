"""``[poll] cleaner = "process"``: parsing and cleaning in a worker process, as a user runs it.

The service runs as a subprocess; its worker is found as its child in ``/proc``. What must
hold: the same output and incremental cleaning as with the worker thread, a worker killed
mid-life is replaced without losing the archive, the worker never outlives the server, and
SIGTERM stops both cleanly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import upstream as up
from atomcheck import served_titles
from service_helpers import TEST_POLL, Service, wait_for
from upstream import titles

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PROCESS_POLL = {**TEST_POLL, "cleaner": "process", "keep_entries": 10}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text(encoding="ascii").split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not collected it yet


def served_titles_of(svc: Service, name: str) -> list[str]:
    return served_titles(svc.feed(name).body)


@contextlib.contextmanager
def _running(tmp_path: Path) -> Iterator[tuple[Service, up.Upstream, int]]:
    """A service with a process cleaner serving feed z (items 1-3); and its worker's pid."""
    with up.Upstream() as upstream:
        upstream.script("/z.xml", up.feed(up.zaker_rss(range(1, 4))))
        feeds = [{"name": "z", "url": upstream.url("/z.xml"), "interval": "1s"}]
        with Service(tmp_path, feeds, poll=PROCESS_POLL) as svc:
            assert svc.proc is not None
            workers = _children(svc.proc.pid)
            assert len(workers) == 1, workers
            svc.wait_served("z")
            yield svc, upstream, workers[0]


def test_a_worker_process_cleans_incrementally_and_stops_with_the_server(
    tmp_path: Path,
) -> None:
    """One child process; a new entry is the only one cleaned and rendered; SIGTERM ends
    both with status 0 and nothing but JSON on stderr."""
    with _running(tmp_path) as (svc, upstream, worker):
        assert served_titles_of(svc, "z") == titles(range(1, 4))
        seen = len(svc.polls("z"))
        upstream.script("/z.xml", up.feed(up.zaker_rss(range(1, 5))))
        record = svc.wait_for_poll("z", after=seen, where=lambda r: r["changed"])
        assert record["status"] == "ok"
        assert (record["cleaned"], record["rendered"]) == (1, 1)
        assert served_titles_of(svc, "z") == titles(range(1, 5))
        svc.stop()
        assert not _alive(worker)


def test_a_killed_worker_is_replaced_and_the_archive_kept(tmp_path: Path) -> None:
    """kill -9 the worker: the feed is still served at once, a new worker takes over, and an
    entry that has since left the upstream's window is still published (the new worker was
    seeded from the store)."""
    with _running(tmp_path) as (svc, upstream, worker):
        assert svc.proc is not None
        os.kill(worker, signal.SIGKILL)
        assert svc.feed("z").status == 200
        upstream.script("/z.xml", up.feed(up.zaker_rss(range(2, 5))))  # 1 leaves, 4 comes
        wait_for(
            lambda: served_titles_of(svc, "z") == titles([1, 2, 3, 4]),
            20,
            "the new entry, with the rotated one kept",
        )
        (replacement,) = _children(svc.proc.pid)
        assert replacement != worker
        assert "cleaning worker died" in svc.log_text()


def test_the_worker_dies_with_the_server(tmp_path: Path) -> None:
    """kill -9 the server: its worker does not live on as an orphan."""
    with _running(tmp_path) as (svc, _, worker):
        svc.kill()
        deadline = time.monotonic() + 5
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), "the worker outlived the server"
