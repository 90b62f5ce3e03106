"""The commands that say what feedfix would do: ``rules`` and ``check-config``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from feedfix.cli.common import EXIT_OK, warn
from feedfix.core.rules import RULE_CLASSES, ProxyImages, Rule


def run_rules() -> int:
    """``feedfix rules``: every rule, its default and its options."""
    steps: tuple[type[Rule], ...] = (*RULE_CLASSES, ProxyImages)
    for cls in steps:
        state = "on by default" if cls.default_on else "off unless configured"
        if cls is ProxyImages:
            state = "after every rule, when [images] proxy is on"
        print(f"{cls.name} ({state})")
        for line in cls.help().splitlines():
            print(f"    {line}" if line else "")
        for option, help_text in cls.options.items():
            print(f"    option {option}: {help_text}")
        print()
    return EXIT_OK


def run_check_config(given: str | None, *, show_secrets: bool = False) -> int:
    """``feedfix check-config``: validate a config, print the effective settings (the
    credentials in feed URLs and header values masked, as the pages mask them, unless
    ``show_secrets``: the output ends up in CI logs and issues)."""
    from feedfix.config import effective  # noqa: PLC0415
    from feedfix.files.config_file import config_path, load_config  # noqa: PLC0415
    from feedfix.service.masking import masker_for  # noqa: PLC0415

    path = config_path(given, os.environ)
    config = load_config(path, os.environ)
    masker = None if show_secrets else masker_for(config, every_header=False)

    def shown(value: Any) -> Any:
        return value if masker is None else masker.data(value)

    for warning in config.warnings:
        warn(shown(f"{path}: {warning}"))
    for index, feed in enumerate(config.feeds):
        if feed.path is not None and not Path(feed.path).exists():
            warn(
                f"{path}: feeds[{index}].path: {feed.path} does not exist (yet); the feed "
                "fails until it does"
            )
    print(json.dumps(shown(effective(config)), ensure_ascii=False, indent=2))
    feeds = len(config.feeds)
    print(f"feedfix: {path}: ok, {feeds} feed{'' if feeds == 1 else 's'}", file=sys.stderr)
    return EXIT_OK
