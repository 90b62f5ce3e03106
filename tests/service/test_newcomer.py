"""A newcomer's first hour, tried as a new user would: ``feedfix serve`` as a subprocess.

Their likely mistakes each get one clear line and no traceback (a missing config file, no
feeds, a port in use, a storage folder feedfix cannot write); and the traps found by trying
it: a feed that failed before a restart is polled at once after it, the index's "next poll"
is the real one (also after SIGHUP), the 503 body and the index say what to do, and the
``reloaded`` log line says what changed.
"""

from __future__ import annotations

import contextlib
import html
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import upstream as up
from feedfix.core.schedule import STARTUP_SPREAD, first_delay
from service_helpers import REPO, TEST_POLL, Service, free_port, render_config, run_cli, wait_for

EXAMPLE = REPO / "feedfix" / "examples" / "zaker-channel.rss.xml"


@pytest.fixture
def upstream() -> Iterator[up.Upstream]:
    """A fresh scripted upstream for one test."""
    with up.Upstream() as server:
        yield server


def late_name(prefix: str) -> str:
    """A feed name whose first poll after a start comes late in the startup spread (more
    than half of it), so a test can look at the index before that poll happens."""
    for n in range(1000):
        name = f"{prefix}-{n}"
        if first_delay(name, None, 0.0, 600.0) > STARTUP_SPREAD * 0.6:
            return name
    raise AssertionError("no late name found")


def _epoch(iso: str | None) -> float:
    assert iso, "expected a time"
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _row(svc: Service, name: str) -> dict[str, Any]:
    rows = {r["name"]: r for r in svc.get("/?format=json").json()["feeds"]}
    row: dict[str, Any] = rows[name]
    return row


def _error_line(result: Any) -> str:
    """The one non-JSON line on stderr (log records may come before it); exit 2, no traceback."""
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, f"expected one line besides the log records: {result.stderr!r}"
    line: str = lines[0]
    return line


def _serve(config: Path) -> Any:
    return run_cli("serve", "--config", str(config), timeout=30)


# ---- one clear line per likely mistake ------------------------------------------------------


def test_a_missing_config_file_says_so_and_where_to_start(tmp_path: Path) -> None:
    """No such file: named, with the example to start from."""
    missing = tmp_path / "config.toml"
    assert _error_line(_serve(missing)) == (
        f"feedfix: {missing}: no such file (start from config.example.toml, or give --config FILE)"
    )


def test_a_config_without_feeds_says_how_to_add_one(tmp_path: Path) -> None:
    """A service with nothing to serve is refused, saying what to add."""
    config = tmp_path / "config.toml"
    config.write_text(f"[storage]\npath = '{tmp_path / 'db'}'\n", "utf-8")
    assert _error_line(_serve(config)) == (
        f"feedfix: {config}: no feeds configured: add a [[feeds]] table with a name and a url "
        "or a path (see config.example.toml)"
    )


@contextlib.contextmanager
def _port_in_use() -> Iterator[int]:
    """A loopback port another program listens on, while the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_port_in_use_names_the_port_and_how_to_change_it(tmp_path: Path) -> None:
    """Another program on the port: the line names it, and the key and variable to change."""
    with _port_in_use() as port:
        config = tmp_path / "config.toml"
        config.write_text(
            render_config(
                {"server": {"port": port}, "storage": {"path": str(tmp_path / "f.db")}},
                [{"name": "x", "path": str(EXAMPLE)}],
            ),
            "utf-8",
        )
        line = _error_line(_serve(config))
    assert line == (
        f"feedfix: cannot listen on 127.0.0.1:{port}: port {port} is already in use (another "
        f"feedfix?); stop that program, or choose another port: [server] port in {config}, "
        "or FEEDFIX_SERVER__PORT=8081"
    )


@pytest.mark.parametrize("decided_by", ["environment", "defaults file"])
def test_a_port_in_use_names_the_setting_that_decided_it(tmp_path: Path, decided_by: str) -> None:
    """The port came from an environment variable or an image's defaults file, not from the
    config file: the line names that, not a key in the file that would change nothing."""
    with _port_in_use() as port:
        config = tmp_path / "config.toml"
        config.write_text(
            render_config(
                {"storage": {"path": str(tmp_path / "f.db")}},
                [{"name": "x", "path": str(EXAMPLE)}],
            ),
            "utf-8",
        )
        defaults = tmp_path / "defaults.toml"
        defaults.write_text(f"[server]\nport = {port}\n", "utf-8")
        env = (
            {"FEEDFIX_SERVER__PORT": str(port)}
            if decided_by == "environment"
            else {"FEEDFIX_DEFAULTS": str(defaults)}
        )
        line = _error_line(run_cli("serve", "--config", str(config), env=env, timeout=30))
    busy = f"feedfix: cannot listen on 127.0.0.1:{port}: port {port} is already in use (another "
    if decided_by == "environment":
        assert line == (
            f"{busy}feedfix?); stop that program, or choose another port: FEEDFIX_SERVER__PORT "
            "in the environment decided it: change or unset that variable"
        )
    else:
        assert line == (
            f"{busy}feedfix?); stop that program, or choose another port: the default of "
            f"FEEDFIX_DEFAULTS={defaults} decided it: set [server] port in {config}, or "
            "FEEDFIX_SERVER__PORT=8081"
        )


def _storage_config(tmp_path: Path, db: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        render_config(
            {"server": {"port": free_port()}, "storage": {"path": str(db)}},
            [{"name": "x", "path": str(EXAMPLE)}],
        ),
        "utf-8",
    )
    return config


def test_a_storage_path_under_a_file_says_what_to_change(tmp_path: Path) -> None:
    """``[storage] path`` inside something that is not a folder: one line, the fix named."""
    blocker = tmp_path / "data"
    blocker.write_text("not a folder", "utf-8")
    db = blocker / "feedfix.db"
    config = _storage_config(tmp_path, db)
    assert _error_line(_serve(config)) == (
        f"feedfix: [storage] path {db}: cannot open the store: {blocker} is a file, not a "
        f"folder; make it a file in a folder feedfix can write: [storage] path in {config}, "
        "or FEEDFIX_STORAGE__PATH=/data/feedfix.db"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes any folder whatever its mode")
def test_a_storage_folder_not_writable_says_so(tmp_path: Path) -> None:
    """A read-only storage folder: named as such."""
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    line = _error_line(_serve(_storage_config(tmp_path, folder / "feedfix.db")))
    assert f"the folder {folder} is not writable" in line


def test_serve_puts_a_relative_store_beside_its_config_file(tmp_path: Path) -> None:
    """``cd elsewhere; feedfix serve --config ../cfgdir/feedfix.toml`` with ``path =
    "store.db"``: the store is made in cfgdir, beside the config (as a feed's path is read
    from there), not in the current folder."""
    svc = Service(tmp_path / "cfgdir", [{"name": "x", "path": str(EXAMPLE)}], poll=TEST_POLL)
    svc.storage = {"path": "store.db"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    svc.cwd = elsewhere
    svc.command = ["serve", "--config", "../cfgdir/feedfix.toml"]
    with svc:
        svc.wait_served("x")
        svc.stop()
    assert (tmp_path / "cfgdir" / "store.db").is_file()
    assert list(elsewhere.iterdir()) == []


# ---- the traps ------------------------------------------------------------------------------


def test_after_a_restart_a_feed_that_failed_is_polled_at_once(
    tmp_path: Path, upstream: up.Upstream
) -> None:
    """The upstream was down (here: a 404) and is fixed; after a restart the feed, which has
    no copy to serve, is polled at once, not at the stored next poll 10 minutes away nor late
    in the startup spread, and the index shows that real next poll."""
    name = late_name("restarted")
    feed = {"name": name, "url": upstream.url("/zaker/channel/13"), "interval": "10m"}
    with Service(tmp_path, [feed]) as svc:
        svc.wait_for_poll(name, status="error")
        svc.stop()
        upstream.script("/zaker/channel/13", up.feed(up.zaker_rss(range(1, 4))))
        svc.start()
        row = _row(svc, name)
        if row["last_success"] is None:  # not polled yet (a loaded machine may be slow)
            assert _epoch(row["next_poll"]) <= time.time() + 1, "the stored next poll shows"
        svc.wait_for_poll(name, status="ok", timeout=10)
        assert svc.feed(name).status == 200
        svc.stop()


def test_a_feed_added_by_sighup_is_polled_at_once(tmp_path: Path, upstream: up.Upstream) -> None:
    """A feed a reload adds has no copy: it is polled at once (it answered 503 for seconds,
    waiting for its place in the startup spread), and the index shows that real next poll."""
    upstream.script("/f", up.feed(up.zaker_rss(range(1, 4))))
    first = {"name": "first", "path": str(EXAMPLE)}
    with Service(tmp_path, [first]) as svc:
        added = late_name("added")  # one that the spread would have placed late
        assert first_delay(added, None, 0.0, 600.0) > 3
        svc.feeds.append({"name": added, "url": upstream.url("/f"), "interval": "10m"})
        svc.write_config()
        reloaded_at = time.monotonic()  # the upstream's clock for its requests
        svc.reload()
        wait_for(lambda: svc.events("reloaded"), 10, "the reload")
        row = _row(svc, added)
        assert _epoch(row["next_poll"]) <= time.time() + 1 or row["last_success"]
        poll = svc.wait_for_poll(added, status="ok", timeout=10)
        started = upstream.requests_for("/f")[0].at
        assert started - reloaded_at < 3, f"first poll {started - reloaded_at:.1f} s after SIGHUP"
        assert poll["http"] == 200 and svc.feed(added).status == 200
        svc.stop()


def test_the_503_body_and_the_index_say_what_to_do(tmp_path: Path) -> None:
    """RSSHub not running: the 503 says why and what to do, and so does the index."""
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/zaker/channel/13"
    with Service(tmp_path, [{"name": "tech", "url": url}]) as svc:
        svc.wait_for_poll("tech", status="error")
        answer = svc.feed("tech")
        advice = (
            f"upstream unreachable: start RSSHub (or whatever serves this feed) at "
            f"http://127.0.0.1:{port}, or change `url` of feed 'tech' in the config"
        )
        assert answer.status == 503
        lines = answer.text().splitlines()
        assert lines[0].startswith(f"no good copy of tech yet: {url}: cannot connect")
        assert lines[1:] == [advice]
        shown = advice.replace("`url`", "<code>url</code>")  # on the page, names are code
        assert shown in html.unescape(svc.get("/").text())  # any escaping of its quotes
        assert _row(svc, "tech")["advice"] == advice
        svc.stop()


def test_reloaded_says_which_feeds_were_added_removed_and_changed(tmp_path: Path) -> None:
    """The ``reloaded`` log record names the feeds, not just how many there are."""
    feeds = [{"name": n, "path": str(EXAMPLE)} for n in ("kept", "changed", "removed")]
    with Service(tmp_path, feeds) as svc:
        svc.feeds = [
            feeds[0],
            {**feeds[1], "interval": "1h"},
            {"name": "added", "path": str(EXAMPLE)},
        ]
        svc.write_config()
        svc.reload()
        record = wait_for(lambda: svc.events("reloaded"), 10, "the reload")[0]
        assert (record["added"], record["removed"], record["changed"]) == (
            ["added"],
            ["removed"],
            ["changed"],
        )
        assert record["feeds"] == 3
        svc.stop()


def test_a_failed_poll_is_logged_as_a_warning(tmp_path: Path) -> None:
    """A search of the log for warnings finds a failing feed."""
    missing = tmp_path / "nothing-here.xml"
    with Service(tmp_path / "svc", [{"name": "gone", "path": str(missing)}]) as svc:
        record = svc.wait_for_poll("gone", status="error")
        assert record["level"] == "warning"
        assert record["error"] == f"{missing}: no such file or directory"
        svc.stop()


def test_a_short_interval_that_the_upstreams_ttl_overrides_says_so(
    tmp_path: Path, upstream: up.Upstream
) -> None:
    """``interval = "2s"`` against a feed with ``<ttl>5</ttl>``: the next poll is 5 minutes
    away, and the log says once why (check-config could only say that it may happen)."""
    upstream.script("/ttl", up.feed(up.zaker_rss(range(1, 4), ttl=5)))
    feed = {"name": "ttl", "url": upstream.url("/ttl"), "interval": "2s"}
    with Service(tmp_path, [feed], poll={**TEST_POLL, "max_backoff": "1h"}) as svc:
        record = svc.wait_for_poll("ttl", status="ok")
        assert record["next_in_s"] == 300
        noted = wait_for(
            lambda: svc.events("interval lengthened by the upstream's ttl"), 5, "the note"
        )
        assert (noted[0]["feed"], noted[0]["interval_s"], noted[0]["ttl_s"]) == ("ttl", 2, 300)
        assert noted[0]["level"] == "warning"
        svc.stop()


def test_the_503_during_the_first_poll_says_it_is_under_way(
    tmp_path: Path, upstream: up.Upstream
) -> None:
    """A feed not polled yet is polled at once; while that poll is under way (a slow
    upstream here), its 503 says so and asks the reader to retry within seconds."""
    upstream.script("/slow", up.slow(up.feed(up.zaker_rss(range(1, 4))), 4))
    feed = {"name": "unpolled", "url": upstream.url("/slow"), "interval": "10m"}
    with Service(tmp_path, [feed], poll={**TEST_POLL, "timeout": "20s"}) as svc:
        answer = svc.feed("unpolled")
        assert answer.status == 503
        assert answer.text() == "no good copy of unpolled yet: its first poll is under way\n"
        assert answer.header("Retry-After") == "5"
        assert svc.wait_served("unpolled", timeout=20).status == 200
        svc.stop()
