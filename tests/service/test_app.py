"""``feedfix serve``'s wiring: reloads one at a time, and a failed start that stops what it had
started. The service runs as a user runs it (a subprocess), or ``app.run`` in this process
where what must be seen is inside it (an open SQLite connection, threads)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedfix.config import parse_config
from feedfix.core.errors import ConfigError
from feedfix.service.app import run
from feedfix.service.poll.worker import Worker
from feedfix.service.state import FeedState, PollRecord, Published
from feedfix.service.store import StoreError
from feedfix.service.store.sqlite import SqliteStore
from service_helpers import (
    REPO,
    TEST_POLL,
    Service,
    free_port,
    http_request,
    render_config,
    wait_for,
)
from upstream import Upstream, feed, zaker_rss


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """An upstream serving one small feed at /f.xml."""
    with Upstream() as server:
        server.script("/f.xml", feed(zaker_rss(range(2))))
        yield server


def _feeds(upstream: Upstream, names: list[str]) -> list[dict[str, Any]]:
    return [{"name": n, "url": upstream.url("/f.xml"), "interval": "60s"} for n in names]


# ---- SIGHUP ---------------------------------------------------------------------------------


def test_two_quick_sighups_apply_both_in_order(upstream: Upstream, tmp_path: Path) -> None:
    """As a user does it: SIGHUP, a config change, SIGHUP again at once. Both are applied, in
    order (each the file as it was at its signal), numbered in the log, and what is served
    at the end is the second config."""
    added = [f"b{i}" for i in range(60)]
    with Service(tmp_path, _feeds(upstream, ["a"])) as svc:
        svc.feeds = _feeds(upstream, ["a", *added])
        svc.write_config()
        svc.reload()
        wait_for(lambda: svc.events("reload requested"), 10, "the first SIGHUP to be read")
        svc.feeds = _feeds(upstream, ["a", "c"])
        svc.write_config()
        svc.reload()
        wait_for(lambda: len(svc.events("reloaded")) == 2, 20, "both reloads to be applied")
        steps = [
            (r["event"], r["reload"])
            for r in svc.logs()
            if r["event"] in {"reload requested", "reloading", "reloaded"}
        ]
        done = {r["reload"]: r["feeds"] for r in svc.events("reloaded")}
        served = {row["name"] for row in svc.health()["feeds"]}
        errors = [r for r in svc.logs() if r["level"] == "error"]
        svc.stop()
    assert done == {1: 61, 2: 2}, "each reload applies the file as it was at its SIGHUP"
    applying = [step for step in steps if step[0] != "reload requested"]
    assert applying == [("reloading", 1), ("reloaded", 1), ("reloading", 2), ("reloaded", 2)]
    assert served == {"a", "c"}
    assert errors == []


def test_a_sighup_during_a_reload_waits_for_it(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first reload is held mid-way (it adds feed b, and the cleaning worker is busy, so
    seeding b waits) when a second SIGHUP removes b again: the second is not applied until
    the first has finished; then both are, in order, and none is lost or crashes."""
    path, config = _config(tmp_path, free_port(), upstream)
    worker = Worker(process=False)
    gate = threading.Event()
    caplog.set_level(logging.INFO, logger="feedfix")

    def events() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.startswith("feedfix")]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        serving = asyncio.create_task(run(str(path), {}, config, worker))
        await _until(lambda: "listening" in events(), "the service to listen")
        busy = loop.run_in_executor(worker._pool, gate.wait)  # a long clean, say
        path.write_text(_config_text(tmp_path, config.server.port, upstream, ["a", "b"]))
        os.kill(os.getpid(), signal.SIGHUP)
        while "b" not in await _health_names(config.server.port):  # reload 1 is applying
            await asyncio.sleep(0.02)
        path.write_text(_config_text(tmp_path, config.server.port, upstream, ["a"]))
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.3)
        assert events().count("reloaded") == 0, "a reload finished while the worker was held"
        gate.set()
        await busy
        await _until(lambda: events().count("reloaded") == 2, "both reloads to be applied")
        assert await _health_names(config.server.port) == {"a"}
        os.kill(os.getpid(), signal.SIGTERM)
        await serving

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        gate.set()
        worker.close()
    applying = [e for e in events() if e in {"reloading", "reloaded", "reload failed"}]
    assert applying == ["reloading", "reloaded", "reloading", "reloaded"]


async def _until(condition: Any, what: str, timeout: float = 10.0) -> None:
    """Wait, letting the loop run, until ``condition()`` is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _health_names(port: int) -> set[str]:
    """The feeds /healthz lists (asked from a thread: the server runs on this loop)."""
    loop = asyncio.get_running_loop()
    return set(await loop.run_in_executor(None, _health_names_blocking, port))


def _health_names_blocking(port: int) -> list[str]:
    answer = http_request(port, "/healthz")
    return [row["name"] for row in answer.json()["feeds"]]


# ---- a failed start -------------------------------------------------------------------------


def _config_text(
    tmp_path: Path, port: int, upstream: Upstream, names: list[str], **poll: Any
) -> str:
    sections: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": port},
        "storage": {"path": str(tmp_path / "feedfix.db")},
        "poll": {**TEST_POLL, **poll},
    }
    return render_config(sections, _feeds(upstream, names))


def _config(tmp_path: Path, port: int, upstream: Upstream, **poll: Any) -> tuple[Path, Any]:
    """A config file serving feed a on ``port``, and the config parsed from it."""
    path = tmp_path / "feedfix.toml"
    path.write_text(_config_text(tmp_path, port, upstream, ["a"], **poll), "utf-8")
    return path, parse_config(path.read_text("utf-8"), str(path), {})


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port of 127.0.0.1 that something else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _store_left_open(db: Path) -> bool:
    """SQLite in WAL mode deletes ``-wal`` when its last connection closes."""
    return Path(f"{db}-wal").exists()


def _run_in_process(path: Path, config: Any) -> None:
    worker = Worker(process=False)
    try:
        asyncio.run(run(str(path), {}, config, worker))
    finally:
        worker.close()


def test_a_busy_port_stops_what_had_started(
    upstream: Upstream, tmp_path: Path, busy_port: int
) -> None:
    """The listener fails after the store is open and the feeds loaded: the store is closed
    (while the error is still held, so nothing else closed it) and no thread is left."""
    path, config = _config(tmp_path, busy_port, upstream)
    threads = set(threading.enumerate())
    with pytest.raises(ConfigError, match=rf"cannot listen on 127.0.0.1:{busy_port}"):
        _run_in_process(path, config)
    assert not _store_left_open(tmp_path / "feedfix.db")
    assert set(threading.enumerate()) <= threads


def test_a_store_that_cannot_be_read_is_closed_again(upstream: Upstream, tmp_path: Path) -> None:
    """Loading the feeds fails (the file's pages were damaged on disk: it opens, but reading
    the feed's rows fails): the error is the store's, and the store it opened is closed."""
    db = tmp_path / "feedfix.db"
    made = SqliteStore(str(db))
    big = Published.of(bytes(range(256)) * 800, '"e"', 1.0, 1)
    made.save("a", FeedState(), PollRecord(started=1.0, status="ok", duration=0.1), big)
    made.close()
    with db.open("r+b") as raw:
        raw.seek(4096 * 2)  # past the header and the schema: the file still opens
        raw.write(b"\xff" * 4096 * 40)
    path, config = _config(tmp_path, 0, upstream)
    with pytest.raises(StoreError, match="cannot read"):
        _run_in_process(path, config)
    assert not _store_left_open(db)


def _processes_running(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (a forked worker keeps its parent's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry.name))
    return found


def test_a_busy_port_is_one_clear_line_and_no_process_left(
    upstream: Upstream, tmp_path: Path, busy_port: int
) -> None:
    """``feedfix serve`` on a port in use, with the cleaning worker in a process (forked
    before the listener fails): exit 2, one line saying which address and why, no
    traceback, and neither the server nor its worker left running."""
    path, _ = _config(tmp_path, busy_port, upstream, cleaner="process")
    done = subprocess.run(
        [sys.executable, "-m", "feedfix", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
        stdin=subprocess.DEVNULL,
    )
    lines = done.stderr.splitlines()
    plain = [line for line in lines if not line.startswith("{")]
    assert done.returncode == 2, done.stderr
    assert plain == [
        f"feedfix: cannot listen on 127.0.0.1:{busy_port}: port {busy_port} is already in use "
        f"(another feedfix?); stop that program, or choose another port: [server] port in "
        f"{path}, or FEEDFIX_SERVER__PORT=8081"
    ]
    assert "Traceback" not in done.stderr
    assert not _store_left_open(tmp_path / "feedfix.db")
    assert _processes_running(str(path)) == []
