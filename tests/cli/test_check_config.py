"""``feedfix check-config`` as a newcomer meets it: what a config with a local source, a
short interval or no feeds prints, as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from service_helpers import run_cli


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
