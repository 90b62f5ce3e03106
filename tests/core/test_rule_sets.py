"""Choosing entries (filter, limit) and building rule sets from what the config says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedfix.core.errors import ConfigError
from feedfix.core.model import Category, Entry, Feed
from feedfix.core.rules import RULES, build_ruleset
from feedfix.core.rules.select import Filter, Limit


def _entry(title: str, day: int, content: str = "", categories: tuple[str, ...] = ()) -> Entry:
    return Entry(
        id=f"urn:x:{title}",
        title=title,
        content=content,
        categories=tuple(Category(term=c) for c in categories),
        published=datetime(2022, 1, day, tzinfo=UTC),
    )


def test_filter_drop_and_keep() -> None:
    """filter drops matches, or keeps only matches, over title/content/category."""
    feed = Feed(
        entries=(
            _entry("新品发布", 1),
            _entry("广告：优惠", 2),
            _entry("plain", 3, content="<p>内含广告</p>"),
            _entry("tagged", 4, categories=("广告",)),
        )
    )
    kept, dropped = Filter(drop="广告").feed(feed)
    assert [e.title for e in kept.entries] == ["新品发布"]
    assert dropped == 3
    kept, _ = Filter(keep="新品|plain").feed(feed)
    assert [e.title for e in kept.entries] == ["新品发布", "plain"]
    kept, _ = Filter(drop="广告", fields=["title"]).feed(feed)
    assert [e.title for e in kept.entries] == ["新品发布", "plain", "tagged"]


def test_filter_bad_regex_is_a_config_error() -> None:
    """An invalid regular expression names the option."""
    with pytest.raises(ConfigError, match="'drop'"):
        build_ruleset({"filter": {"drop": "(unclosed"}})


def test_limit_keeps_newest_in_original_order() -> None:
    """limit keeps the N newest entries; their order in the feed does not change."""
    feed = Feed(entries=(_entry("b", 2), _entry("d", 4), _entry("a", 1), _entry("c", 3)))
    kept, dropped = Limit(count=2).feed(feed)
    assert [e.title for e in kept.entries] == ["d", "c"]
    assert dropped == 2


def test_default_ruleset_and_disabling() -> None:
    """The first four rules are on by default; --no-rule and config switch them off."""
    assert build_ruleset().names == (
        "unwrap-proxies",
        "fix-lazy-images",
        "sanitize",
        "drop-empty-junk",
    )
    assert "sanitize" not in build_ruleset(disabled=["sanitize"]).names
    assert "limit" in build_ruleset({"limit": {"count": 3}}).names
    assert "sanitize" not in build_ruleset({"sanitize": {"enabled": False}}).names


def test_unknown_rule_and_option_are_errors() -> None:
    """A misspelt rule or option is an error naming it, never silently ignored."""
    with pytest.raises(ConfigError, match="unwrap-proxy"):
        build_ruleset(disabled=["unwrap-proxy"])
    with pytest.raises(ConfigError, match="selector"):
        build_ruleset({"drop-empty-junk": {"selector": ["#x"]}})


def test_every_rule_is_documented() -> None:
    """Each rule has a name, help text and documented options (its docstring is --help)."""
    for name, cls in RULES.items():
        assert cls.name == name
        assert len(cls.help().splitlines()[0]) > 20, name
        for option, text in cls.options.items():
            assert text, f"{name}.{option} has no help"
