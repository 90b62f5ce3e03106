"""``feedfix fix-posts PATH... [--write]``: mend a blog's post sources in place.

A dry run prints a unified diff and exits 1 when something would change (like ``ruff format
--check``); ``--write`` replaces the files that change, atomically. Either way a summary goes
to stderr and a file that cannot be read or mended is reported in one line and left alone.
With ``--save-images DIR --images-url PREFIX`` the posts' images are brought home too
(save_images.py); a dry run then fetches nothing and lists what it would.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedfix.cli.fix_tally import ImageTally, Tally, count, say
from feedfix.cli.image_refs import SAVE
from feedfix.cli.mend_runner import ImageTargets, MendSettings, examine_all, jobs_for
from feedfix.cli.progress import TerminalProgress
from feedfix.cli.write_posts import save_and_write_all, write_all
from feedfix.config import Config, ImagesConfig
from feedfix.core.errors import ConfigError
from feedfix.core.mend import (
    JUNK,
    LAZY,
    MENDING_RULES,
    UNWRAP,
    BodyRules,
)
from feedfix.core.rules import RULES, build_ruleset
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DropEmptyJunk
from feedfix.core.rules.unwrap_proxies import UnwrapProxies
from feedfix.files.mend import find_files

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

EXIT_UNCHANGED, EXIT_WOULD_CHANGE, EXIT_FAILED, EXIT_IMAGES_LEFT = 0, 1, 2, 3
MAX_FETCHES, RETRIES = 16, 3  # --max-fetches, --retries
# --images-url: a path or an http(s) URL of characters that stand as they are in YAML, an HTML
# attribute and a Markdown link (no quotes, spaces, brackets, "#", "?" or "&").
IMAGES_URL = re.compile(r"(?:https?://[A-Za-z0-9.:\[\]-]+)?(?:/[A-Za-z0-9._~%@+=,;!$*:-]*)*")
ALL_RULES = "all"  # --rule all: every rule fix-posts applies (what a ZAKER blog needs)


def read_config(path: str | None) -> Config | None:
    """``--config``: its [rules] choose the rules, its [images] how images are fetched."""
    if not path:
        return None
    from feedfix.config import parse_config  # noqa: PLC0415

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(text, path, os.environ)


def mending_rules(
    config: Config | None, wanted: list[str], unwanted: list[str]
) -> tuple[BodyRules, tuple[str, ...]]:
    """The rules to mend with, from the same config and rule names as ``convert``."""
    options: dict[str, Any] = {}
    disabled = list(unwanted)
    if config is not None:
        table = config.rules.table()
        options = {k: dict(v) for k, v in table.items() if k != "disable"}
        disabled += table.get("disable", [])
    wanted = [n for w in wanted for n in (MENDING_RULES if w == ALL_RULES else (w,))]
    for name in [*wanted, *unwanted]:
        if name not in RULES:
            raise ConfigError(f"unknown rule {name!r} (rules: {', '.join(RULES)})")
        if name in wanted and name not in MENDING_RULES:
            raise ConfigError(
                f"fix-posts cannot apply {name!r}; it applies {', '.join(MENDING_RULES)}"
            )
    active = [
        name
        for name in MENDING_RULES
        if name not in disabled
        and (name in wanted or options.get(name, {}).get("enabled", name == UNWRAP))
    ]
    tables = {n: {**options.get(n, {}), "enabled": True} for n in active}
    built = {r.name: r for r in build_ruleset(tables).rules if r.name in active}
    unwrap = built.get(UNWRAP)
    lazy = built.get(LAZY)
    junk = built.get(JUNK)
    return BodyRules(
        unwrapper=unwrap.unwrapper if isinstance(unwrap, UnwrapProxies) else None,
        lazy=lazy if isinstance(lazy, FixLazyImages) else None,
        junk=junk if isinstance(junk, DropEmptyJunk) else None,
    ), tuple(active)


def _max_size(value: str) -> int:
    from feedfix.core.sizes import parse_size  # noqa: PLC0415

    return parse_size(int(value) if value.isdigit() else value, "--max-size")


def run(args: argparse.Namespace, resolver: AbstractResolver | None = None) -> int:
    """The command; returns the exit status (``resolver``: the name lookup for fetching
    images, a test seam; the system's by default)."""
    if args.backup is not None and (not args.write or not args.backup.strip()):
        raise ConfigError("--backup SUFFIX needs --write and a non-empty suffix")
    if args.jobs < 0:
        raise ConfigError(f"--jobs {args.jobs}: give a number of processes, or 0 for auto")
    max_size = _max_size(args.max_size)
    config = read_config(args.config)
    rules, active = mending_rules(config, args.rule, args.no_rule)
    targets = image_targets(args, config.images if config is not None else ImagesConfig())
    if targets is not None:
        active = (*active, SAVE)
    paths = find_files(args.paths, follow_symlinks=args.follow_symlinks, warn=say)
    colour = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    settings = MendSettings(
        rules,
        max_size,
        frozenset(Path(p) for p in args.paths),
        diff=not args.write,
        colour=colour,
        keep_data=args.write,
        images=targets,
    )
    progress = TerminalProgress(sys.stderr, "fix-posts", min_items=1 if targets else None)
    if not args.write and sys.stdout.isatty():
        progress.enabled = False  # the diff is on the same screen
    tally = Tally(files=len(paths), images=ImageTally() if targets else None)
    outcomes = examine_all(paths, settings, jobs_for(args.jobs, len(paths)))
    out = sys.stdout.buffer
    try:
        with closing(outcomes):  # an error or Ctrl-C here ends the workers now, not at exit
            if args.write and targets is not None:
                save_and_write_all(
                    outcomes, tally, args.backup, progress, settings, resolver=resolver
                )
            elif args.write:
                write_all(outcomes, tally, args.backup, progress)
            else:
                for done, outcome in enumerate(outcomes, 1):
                    if count(outcome, tally):
                        out.write(outcome.diff)
                    progress(done, tally.files)
    finally:
        progress.close()
        out.flush()
    return _report(tally, active, args)


def image_targets(args: argparse.Namespace, limits: ImagesConfig) -> ImageTargets | None:
    """``--save-images DIR --images-url PREFIX`` checked (both or neither) with the fetching
    limits; None without them."""
    folder, prefix = args.save_images, args.images_url
    limits_given = [
        n for n in ("per_host", "max_fetches", "retries") if getattr(args, n) is not None
    ]
    if folder is None and prefix is None:
        if limits_given:
            option = "--" + limits_given[0].replace("_", "-")
            raise ConfigError(f"{option} needs --save-images DIR --images-url PREFIX")
        return None
    if prefix is None:
        raise ConfigError("--save-images needs --images-url PREFIX (the URL DIR is served at)")
    if folder is None:
        raise ConfigError("--images-url needs --save-images DIR (where the images go)")
    if not folder.strip():
        raise ConfigError("--save-images: give a folder")
    if not IMAGES_URL.fullmatch(prefix) or not prefix.startswith(("/", "http://", "https://")):
        raise ConfigError(
            f"--images-url {prefix!r}: give a path such as /images/remote or an http(s) "
            "URL, without spaces, quotes, brackets, '#', '?' or '&'"
        )
    for name, low, high in (("per_host", 1, 256), ("max_fetches", 1, 100), ("retries", 0, 10)):
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            option = "--" + name.replace("_", "-")
            raise ConfigError(f"{option} {value}: give a number from {low} to {high}")
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--save-images {folder}: not a folder")
    if args.write:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--save-images {folder}: cannot create it: {exc}") from exc
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"--save-images {folder}: cannot write there")
    if args.per_host is not None:
        limits = replace(limits, per_host=args.per_host)
    return ImageTargets(
        path,
        prefix.rstrip("/"),
        limits,
        MAX_FETCHES if args.max_fetches is None else args.max_fetches,
        RETRIES if args.retries is None else args.retries,
    )


def _report(tally: Tally, active: tuple[str, ...], args: argparse.Namespace) -> int:
    """The summary (or the JSON counts), the images left or to download; the exit status."""
    if args.explain == "json":
        print(tally.as_json(active, written=args.write), file=sys.stderr)
    else:
        say(tally.summary(active))
    images = tally.images or ImageTally()
    for url in images.to_download:
        say(f"would download {url}")
    for url, message in images.failed.items():
        say(f"image left, URL kept: {url}: {message}")
    if tally.failed:
        return EXIT_FAILED
    if images.failed:
        return EXIT_IMAGES_LEFT
    would_change = tally.changed or images.to_download
    return EXIT_WOULD_CHANGE if would_change and not args.write else EXIT_UNCHANGED
