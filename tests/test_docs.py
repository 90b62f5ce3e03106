"""The docs keep their own promises: one heading per kind under each CHANGELOG version, and
performance figures kept in one place (benchmarks/README.md) that the others link to."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from feedfix.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"(?<![\d.])(?<!RSS )\d+(?:\.\d+)?x\b")  # a ratio like 4.5x (not "RSS 0.9x")


def test_changelog_has_one_heading_per_kind_under_each_version() -> None:
    """Keep a Changelog: ``### Added`` etc. at most once under each ``## [version]``."""
    text = (ROOT / "CHANGELOG.md").read_text("utf-8")
    versions = re.split(r"^## ", text, flags=re.M)[1:]
    assert versions, "CHANGELOG.md has no versions"
    for version in versions:
        kinds = Counter(re.findall(r"^### (\w+)", version, flags=re.M))
        repeated = sorted(kind for kind, n in kinds.items() if n > 1)
        assert not repeated, f"{version.splitlines()[0]}: repeated headings {repeated}"


def test_performance_figures_live_only_in_the_benchmarks_readme() -> None:
    """README and CHANGELOG quote no speed ratios; they link to benchmarks/README.md, which
    holds them."""
    assert FIGURE.search((ROOT / "benchmarks" / "README.md").read_text("utf-8"))
    for name in ("README.md", "CHANGELOG.md"):
        text = (ROOT / name).read_text("utf-8")
        found = FIGURE.findall(text)
        assert not found, f"{name} quotes figures {found}: link to benchmarks/README.md"
        assert "benchmarks/README.md" in text, f"{name} does not link to the figures"


def test_the_example_config_serves_the_bundled_example_by_package_path() -> None:
    """config.example.toml's one active feed is the example, found inside the package."""
    text = (ROOT / "config.example.toml").read_text("utf-8")
    active = [line for line in text.splitlines() if line.startswith(("path =", "url ="))]
    assert active[-1].startswith('path = "feedfix:examples/zaker-channel.rss.xml"')
    assert '# url = "http://localhost:1200/zaker/channel/13"' in text


def test_the_commented_rsshub_feed_works_once_uncommented() -> None:
    """What the example tells a user to uncomment is a valid feed at RSSHub's address."""
    text = (ROOT / "config.example.toml").read_text("utf-8")
    head, marker, tail = text.partition("# RSSHub's ZAKER channel 13")
    assert marker, "config.example.toml has no commented RSSHub feed"
    assert "# [[feeds]]" in tail, "no [[feeds]] table to uncomment"
    start = tail.index("# [[feeds]]")
    uncommented = "\n".join(
        line.removeprefix("# ") for line in tail[start:].splitlines() if line.startswith("# ")
    )
    config = parse_config(head + uncommented, "config.example.toml")
    names = {feed.name: feed for feed in config.feeds}
    assert names["zaker-tech"].url == "http://localhost:1200/zaker/channel/13"
    assert names["zaker-example"].path is not None
