"""``feedfix images``: the image archive as the store holds it, with the service running or
not: counts and sizes (per feed), the images that could not be kept and why, and a retry."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from feedfix.cli.common import EXIT_OK
from feedfix.core.errors import ConfigError
from feedfix.files.config_file import config_path, load_config
from feedfix.service.image_archive import STATE_WORDS, ArchiveSummary, ImageRow, plain
from feedfix.service.images.archiver import IDLE
from feedfix.service.images.wiring import open_archive_index
from feedfix.service.masking import masker_for


def run(args: argparse.Namespace) -> int:
    """Report on the archive (``--retry`` first makes the failed images pending again)."""
    path = config_path(args.config, os.environ)
    config = load_config(path, os.environ)
    names = [feed.name for feed in config.feeds]
    if args.feed is not None and args.feed not in names:
        raise ConfigError(f"{path}: no feed named {args.feed!r} (feeds: {', '.join(names)})")
    masker = masker_for(config)
    index = open_archive_index(config)
    try:
        retried = index.retry(args.feed, time.time()) if args.retry else None
        total = index.summary(args.feed)
        feeds = {} if args.feed else {name: index.summary(name) for name in names}
        failed = index.failures(args.feed, limit=1_000_000) if args.failed else None
    finally:
        index.close()
    if failed is not None:
        failed = [_masked(row, masker.text) for row in failed]
    if args.json:
        print(json.dumps(_data(config.images.archive, total, feeds, failed, retried), indent=2))
        return EXIT_OK
    if not config.images.archive:
        print("The archive is off ([images] archive = false); what the store holds:")
    if retried is not None:
        print(f"{retried} images made pending again (a running service tries them within "
              f"{IDLE:.0f} s).")  # fmt: skip
    print(_line(args.feed or "all feeds", total))
    for name, summary in feeds.items():
        print("  " + _line(name, summary))
    for row in failed or ():
        due = f", next try {_iso(row.due)}" if row.due and row.state == "retrying" else ""
        print(f"{row.reason:<12} {STATE_WORDS[row.state]}{due}: {row.url}")
        if row.error:
            print(f"{'':<12} {row.error}")
    return EXIT_OK


def _line(name: str, s: ArchiveSummary) -> str:
    words = (
        f"{name}: {s.archived} images archived, {s.bytes / 1e6:.1f} MB; {s.pending} pending, "
        f"{s.retrying} to be tried again, {s.failed} could not be kept"
    )
    return words + (f", {s.unpinned} past archive_size" if s.unpinned else "")


def _masked(row: ImageRow, mask: Callable[[str], str]) -> ImageRow:
    return replace(row, url=mask(row.url), error=mask(row.error) if row.error else None)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _data(
    on: bool,
    total: ArchiveSummary,
    feeds: dict[str, ArchiveSummary],
    failed: list[ImageRow] | None,
    retried: int | None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"archive": on, "total": plain(total)}
    if feeds:
        data["feeds"] = {name: plain(summary) for name, summary in feeds.items()}
    if retried is not None:
        data["retried"] = retried
    if failed is not None:
        data["failed"] = [
            {"url": r.url, "state": r.state, "reason": r.reason, "error": r.error,
             "attempts": r.attempts, "next_try": _iso(r.due) if r.due else None}
            for r in failed
        ]  # fmt: skip
    return data
