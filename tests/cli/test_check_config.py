"""``feedfix check-config`` as a newcomer meets it: what a config with a local source, a
short interval or no feeds prints, as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from service_helpers import REPO, run_cli


def _check(tmp_path: Path, text: str) -> tuple[dict[str, object], list[str]]:
    config = tmp_path / "config.toml"
    config.write_text(text, "utf-8")
    result = run_cli("check-config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout), result.stderr.splitlines()


def test_no_feeds_is_a_warning(tmp_path: Path) -> None:
    """A config without feeds is valid to check, but says that nothing will be served."""
    _, lines = _check(tmp_path, "[server]\nport = 8080\n")
    assert lines[0] == (
        f"feedfix: warning: {tmp_path / 'config.toml'}: no feeds configured: add a [[feeds]] "
        "table with a name and a url or a path"
    )


def test_a_path_is_shown_resolved_and_a_missing_one_warns(tmp_path: Path) -> None:
    """A relative path is shown from the config's folder; one that does not exist warns."""
    (tmp_path / "feed.xml").write_bytes(b"<rss/>")
    text = (
        "[[feeds]]\nname = 'here'\npath = 'feed.xml'\n[[feeds]]\nname = 'later'\npath = 'posts'\n"
    )
    data, lines = _check(tmp_path, text)
    feeds = data["feeds"]
    assert isinstance(feeds, list)
    assert feeds[0]["path"] == str(tmp_path / "feed.xml") and "url" not in feeds[0]
    assert lines == [
        f"feedfix: warning: {tmp_path / 'config.toml'}: feeds[1].path: {tmp_path / 'posts'} "
        "does not exist (yet); the feed fails until it does",
        f"feedfix: {tmp_path / 'config.toml'}: ok, 2 feeds",
    ]


def test_a_short_interval_warns_that_ttl_may_lengthen_it(tmp_path: Path) -> None:
    """``interval = "10"`` is 10 s; the warning says an upstream's ttl may override it."""
    data, lines = _check(tmp_path, "[[feeds]]\nname = 'a'\nurl = 'http://127.0.0.1:9/'\n"
                                   "interval = '10'\n")  # fmt: skip
    feeds = data["feeds"]
    assert isinstance(feeds, list) and feeds[0]["interval"] == 10
    assert "10 s is short" in lines[0] and "<ttl>" in lines[0] and "lengthen it" in lines[0]


def test_each_rule_is_shown_with_its_options(tmp_path: Path) -> None:
    """The effective settings show every active rule with the options set for it."""
    data, _ = _check(
        tmp_path,
        "[rules.limit]\ncount = 5\n[[feeds]]\nname = 'a'\nurl = 'http://127.0.0.1:9/'\n",
    )
    rules = data["rules"]
    assert isinstance(rules, dict) and rules["limit"] == {"count": 5}
    feeds = data["feeds"]
    assert isinstance(feeds, list) and feeds[0]["rules"]["limit"] == {"count": 5}


def test_each_setting_says_where_it_came_from(tmp_path: Path) -> None:
    """A value from an environment variable, from the config file, from a defaults file
    (``FEEDFIX_DEFAULTS``, an image's own defaults) and feedfix's own default: the file wins
    over the defaults file, the environment over both, and ``origins`` says which decided."""
    defaults = tmp_path / "image" / "defaults.toml"
    defaults.parent.mkdir()
    defaults.write_text(
        "[server]\nhost = '0.0.0.0'\nport = 8080\n[storage]\npath = 'data/feedfix.db'\n", "utf-8"
    )
    config = tmp_path / "config.toml"
    config.write_text("[server]\nport = 18080\n[poll]\ninterval = '20m'\n", "utf-8")
    env = {"FEEDFIX_DEFAULTS": str(defaults), "FEEDFIX_POLL__INTERVAL": "'30m'"}
    result = run_cli("check-config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["server"]["host"], data["server"]["port"]) == ("0.0.0.0", 18080)
    assert data["poll"]["interval"] == 1800
    assert data["storage"]["path"] == str(defaults.parent / "data" / "feedfix.db")
    origins = data["origins"]
    assert origins["server.port"] == f"file: {config}"
    assert origins["server.host"] == f"default: FEEDFIX_DEFAULTS={defaults}"
    assert origins["storage.path"] == f"default: FEEDFIX_DEFAULTS={defaults}"
    assert origins["poll.interval"] == "environment: FEEDFIX_POLL__INTERVAL"
    assert origins["server.max_connections"] == "default"
    assert set(origins) >= {"images.proxy", "storage.backend", "poll.cleaner"}


def test_a_bad_value_in_the_defaults_file_names_that_file(tmp_path: Path) -> None:
    """A defaults file is checked like a config file, and its errors say it is the one."""
    defaults = tmp_path / "defaults.toml"
    defaults.write_text("[server]\nport = 'x'\n", "utf-8")
    config = tmp_path / "config.toml"
    config.write_text("[[feeds]]\nname = 'a'\nurl = 'http://127.0.0.1:9/'\n", "utf-8")
    result = run_cli("check-config", str(config), env={"FEEDFIX_DEFAULTS": str(defaults)})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"feedfix: {config}: server.port (in {defaults}, named by FEEDFIX_DEFAULTS): expected "
        "a whole number from 0 to 65535, got 'x'"
    )


def test_relative_paths_start_at_the_config_files_folder(tmp_path: Path) -> None:
    """``[storage] path`` and a feed's ``path``, relative, both start at the config file's
    folder whatever the current folder is (the store used to start at the current folder),
    and are shown absolute; ``:memory:`` stays itself."""
    folder = tmp_path / "cfgdir"
    folder.mkdir()
    (folder / "c.toml").write_text(
        "[storage]\npath = 'store.db'\n[[feeds]]\nname = 'a'\npath = 'feed.xml'\n", "utf-8"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "feedfix", "check-config", "../cfgdir/c.toml"],
        capture_output=True, text=True, cwd=elsewhere, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["storage"]["path"] == str(folder / "store.db")
    assert data["feeds"][0]["path"] == str(folder / "feed.xml")
    memory, _ = _check(tmp_path, "[storage]\npath = ':memory:'\n")
    storage = memory["storage"]
    assert isinstance(storage, dict) and storage["path"] == ":memory:"


def test_a_short_interval_warns_for_a_url_feed_only(tmp_path: Path) -> None:
    """A path feed polled every few seconds costs a stat, and burdens no upstream: no
    warning, as the README says (config.example.toml's own feed polls every 5 s)."""
    (tmp_path / "feed.xml").write_bytes(b"<rss/>")
    _, lines = _check(tmp_path, "[[feeds]]\nname = 'p'\npath = 'feed.xml'\ninterval = '5s'\n")
    assert lines == [f"feedfix: {tmp_path / 'config.toml'}: ok, 1 feed"]
    readme = " ".join((REPO / "README.md").read_text("utf-8").split())
    assert "a `url` feed's interval under a minute" in readme


def test_a_base_url_off_ports_80_and_443_warns_about_readers(tmp_path: Path) -> None:
    """tt-rss refuses feed URLs on other ports and drops the port from image URLs: a
    base_url on 8080 is warned about, one on the default port is not."""
    feed = "[[feeds]]\nname = 'a'\nurl = 'http://127.0.0.1:9/'\n"
    _, lines = _check(tmp_path, f"[server]\nbase_url = 'http://feeds.example:8080'\n{feed}")
    assert "port 8080" in lines[0] and "tt-rss" in lines[0] and 'README "Readers"' in lines[0]
    for quiet in ("http://feeds.example", "https://feeds.example:443/"):
        _, lines = _check(tmp_path, f"[server]\nbase_url = '{quiet}'\n{feed}")
        assert len(lines) == 1 and lines[0].endswith("ok, 1 feed"), lines
