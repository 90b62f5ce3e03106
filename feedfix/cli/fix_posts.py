"""``feedfix fix-posts PATH... [--write]``: mend a blog's post sources in place.

A dry run prints a unified diff and exits 1 when something would change (like ``ruff format
--check``); ``--write`` replaces the files that change, atomically. Either way a summary goes
to stderr and a file that cannot be read or mended is reported in one line and left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedfix.cli.mend_runner import Outcome, Settings, examine_all, jobs_for
from feedfix.cli.progress import TerminalProgress
from feedfix.core.errors import ConfigError, FeedfixError
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
from feedfix.service.mend_files import Source, find_files, replace_file, sync_folders

EXIT_UNCHANGED, EXIT_WOULD_CHANGE, EXIT_FAILED = 0, 1, 2
WRITERS = 4  # fsync waits on the disk, not the CPU: a few writers overlap those waits
MAX_PENDING = 64  # mended files held in memory while they wait for a writer
UNITS = {UNWRAP: "URLs unwrapped", LAZY: "lazy images fixed", JUNK: "junk elements removed"}


def mending_rules(
    config: str | None, wanted: list[str], unwanted: list[str]
) -> tuple[BodyRules, tuple[str, ...]]:
    """The rules to mend with, from the same config and rule names as ``convert``."""
    options: dict[str, Any] = {}
    disabled = list(unwanted)
    if config:
        from feedfix.config import parse_config  # noqa: PLC0415

        try:
            text = Path(config).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config}: cannot read: {exc}") from exc
        table = parse_config(text, config, os.environ).rules.table()
        options = {k: dict(v) for k, v in table.items() if k != "disable"}
        disabled += table.get("disable", [])
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


@dataclass
class Tally:
    """What happened to the files, for the summary and ``--explain``."""

    files: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    changes: Counter[str] = field(default_factory=Counter)
    files_by_rule: Counter[str] = field(default_factory=Counter)

    def summary(self, rules: tuple[str, ...]) -> str:
        """``1,234 files, 9,876 URLs unwrapped in 1,200 files; 34 files unchanged``."""
        parts = [f"{self.files:,} {_files(self.files)}"]
        for name in rules:
            count, files = self.changes[name], self.files_by_rule[name]
            parts.append(f"{count:,} {UNITS[name]} in {files:,} {_files(files)}")
        tail = [f"{self.unchanged:,} {_files(self.unchanged)} unchanged"]
        if self.skipped:
            tail.append(f"{self.skipped:,} skipped (not posts)")
        if self.failed:
            tail.append(f"{self.failed:,} failed")
        return ", ".join(parts) + "; " + "; ".join(tail)

    def as_json(self, rules: tuple[str, ...], *, written: bool) -> str:
        """The counts as one JSON object."""
        data: Mapping[str, object] = {
            "files": self.files,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "written": written,
            "rules": {
                n: {"changes": self.changes[n], "files": self.files_by_rule[n]} for n in rules
            },
        }
        return json.dumps(data)


def _files(count: int) -> str:
    return "file" if count == 1 else "files"


def _max_size(value: str) -> int:
    from feedfix.core.sizes import parse_size  # noqa: PLC0415

    return parse_size(int(value) if value.isdigit() else value, "--max-size")


def _warn(message: str) -> None:
    print(f"feedfix: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """The command; returns the exit status."""
    if args.backup is not None and (not args.write or not args.backup.strip()):
        raise ConfigError("--backup SUFFIX needs --write and a non-empty suffix")
    if args.jobs < 0:
        raise ConfigError(f"--jobs {args.jobs}: give a number of processes, or 0 for auto")
    max_size = _max_size(args.max_size)
    rules, active = mending_rules(args.config, args.rule, args.no_rule)
    paths = find_files(args.paths)
    colour = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    settings = Settings(
        rules,
        max_size,
        frozenset(Path(p) for p in args.paths),
        diff=not args.write,
        colour=colour,
        keep_data=args.write,
    )
    progress = TerminalProgress(sys.stderr, "fix-posts")
    if not args.write and sys.stdout.isatty():
        progress.enabled = False  # the diff is on the same screen
    tally = Tally(files=len(paths))
    outcomes = examine_all(paths, settings, jobs_for(args.jobs, len(paths)))
    out = sys.stdout.buffer
    try:
        with closing(outcomes):  # an error or Ctrl-C here ends the workers now, not at exit
            if args.write:
                _write_all(outcomes, tally, args.backup, progress)
            else:
                for done, outcome in enumerate(outcomes, 1):
                    if _count(outcome, tally):
                        out.write(outcome.diff)
                    progress(done, tally.files)
    finally:
        progress.close()
        out.flush()
    if args.explain == "json":
        print(tally.as_json(active, written=args.write), file=sys.stderr)
    else:
        _warn(tally.summary(active))
    if tally.failed:
        return EXIT_FAILED
    return EXIT_WOULD_CHANGE if tally.changed and not args.write else EXIT_UNCHANGED


def _count(outcome: Outcome, tally: Tally) -> bool:
    """Add one file's outcome to the tally (reporting a failure); True when it changes."""
    if outcome.status == "failed":
        tally.failed += 1
        _warn(f"{outcome.path}: {outcome.message}")
    elif outcome.status == "skipped":
        tally.skipped += 1
    elif outcome.status == "unchanged":
        tally.unchanged += 1
    else:
        tally.changed += 1
        for name, count in outcome.counts:
            tally.changes[name] += count
            tally.files_by_rule[name] += 1
        return True
    return False


def _write_all(
    outcomes: Iterable[Outcome], tally: Tally, backup: str | None, progress: TerminalProgress
) -> None:
    folders: set[Path] = set()
    pending: list[tuple[Source, Future[None]]] = []

    def settle(keep: int) -> None:
        while len(pending) > keep:
            source, future = pending.pop(0)
            try:
                future.result()
            except FeedfixError as exc:
                tally.failed += 1
                tally.changed -= 1
                _warn(f"{source.name}: {exc}")

    with ThreadPoolExecutor(max_workers=WRITERS) as writers:
        for done, outcome in enumerate(outcomes, 1):
            if _count(outcome, tally) and outcome.source is not None:
                source = outcome.source
                future = writers.submit(replace_file, source, outcome.data, backup, sync=True)
                pending.append((source, future))
                folders.add(source.path.parent)
                settle(MAX_PENDING)
            progress(done, tally.files)
        settle(0)
    sync_folders(sorted(folders))
