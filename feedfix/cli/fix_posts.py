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
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from feedfix.cli.progress import TerminalProgress
from feedfix.core.errors import ConfigError, FeedfixError, InputError
from feedfix.core.mend import (
    JUNK,
    LAZY,
    MENDING_RULES,
    UNWRAP,
    BodyRules,
    Mended,
    Selector,
    mend,
    patch,
)
from feedfix.core.mend.edits import Edit, OverlappingEdits
from feedfix.core.rules import RULES, build_ruleset
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DEFAULT_JUNK
from feedfix.core.rules.unwrap_proxies import UnwrapProxies
from feedfix.service.mend_files import (
    Source,
    find_files,
    read_source,
    replace_file,
    sync_folders,
)
from feedfix.service.sources import DEFAULT_MAX_SIZE

EXIT_UNCHANGED, EXIT_WOULD_CHANGE, EXIT_FAILED = 0, 1, 2
WRITERS = 4  # fsync waits on the disk, not the CPU: a few writers overlap those waits
MAX_PENDING = 64  # mended files held in memory while they wait for a writer
UNITS = {UNWRAP: "URLs unwrapped", LAZY: "lazy images fixed", JUNK: "junk elements removed"}
_COLOURS = {"-": "\x1b[31m", "+": "\x1b[32m", "@": "\x1b[36m"}


def add_parser(commands: Any) -> None:
    """Register ``fix-posts`` on the ``feedfix`` command's subparsers."""
    parser = commands.add_parser(
        "fix-posts",
        help="mend posts in place: unwrap proxied image URLs, changing nothing else",
        description="Mend Hexo/Jekyll posts and HTML pages in place. Without --write, show "
        "a unified diff and exit 1 if anything would change; with --write, replace the "
        "files that change atomically. Only the URLs (and the junk the chosen rules remove) "
        "change; every other byte stays as it was.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    parser.add_argument("--write", action="store_true", help="rewrite the files that change")
    parser.add_argument(
        "--backup", metavar="SUFFIX", help="with --write, keep each original as NAME+SUFFIX"
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config ([rules] table is used)")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="NAME",
        help="also apply fix-lazy-images or drop-empty-junk (repeatable)",
    )
    parser.add_argument(
        "--no-rule", action="append", default=[], metavar="NAME", help="switch a rule off"
    )
    parser.add_argument(
        "--explain",
        nargs="?",
        const="text",
        choices=["text", "json"],
        help="the counts per rule on stderr (text, or json instead of the summary)",
    )
    parser.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the diff (default: when stdout is a terminal)",
    )
    parser.add_argument(
        "--max-size",
        default=str(DEFAULT_MAX_SIZE),
        help="skip (and report) files larger than this (default 50MB)",
    )


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
        configured = parse_config(text, config, os.environ).rule_options
        options = {k: dict(v) for k, v in configured.items() if k != "disable"}
        disabled += configured.get("disable", [])
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
    junk: tuple[Selector, ...] = ()
    if JUNK in built:
        selectors = options.get(JUNK, {}).get("selectors", list(DEFAULT_JUNK))
        try:
            junk = tuple(Selector.parse(s) for s in selectors)
        except ValueError as exc:
            raise ConfigError(f"rules.{JUNK}.selectors: {exc}") from exc
    return BodyRules(
        unwrapper=unwrap.unwrapper if isinstance(unwrap, UnwrapProxies) else None,
        lazy=lazy if isinstance(lazy, FixLazyImages) else None,
        junk=junk,
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
    from feedfix.config import parse_size  # noqa: PLC0415

    return parse_size(int(value) if value.isdigit() else value, "--max-size")


def unified_diff(name: str, mended: Mended, *, colour: bool) -> Iterator[bytes]:
    """A ``git diff``-style patch of one file, its lines in the file's own encoding (as git
    shows them), so that ``patch -p1`` applies it; lines keep their own line endings."""
    before, edits = mended.before, list(mended.edits)
    if mended.bom:  # the BOM is part of the first line as patch sees it
        before = "\ufeff" + before
        edits = [Edit(e.start + 1, e.end + 1, e.new, e.rule) for e in edits]
    path = name.lstrip("/")
    codec = _diff_codec(mended.encoding)
    for number, line in enumerate(patch.unified_diff(before, edits, f"a/{path}", f"b/{path}")):
        if number < 2:  # the file names
            yield line.encode("utf-8", "surrogateescape")
            continue
        if colour and line[:1] in _COLOURS:
            line = f"{_COLOURS[line[0]]}{line[:-1]}\x1b[0m\n"  # noqa: PLW2901
        yield line.encode(codec, "surrogateescape")


def _diff_codec(codec: str) -> str:
    """The BOM is already in the text; ``utf-8-sig``-like codecs would add another."""
    return "utf-8" if codec.startswith("utf-8") else codec


def _warn(message: str) -> None:
    print(f"feedfix: {message}", file=sys.stderr)


@dataclass
class Job:
    """One run's settings and its running tally."""

    rules: BodyRules
    max_size: int
    named: set[Path]
    progress: TerminalProgress
    backup: str | None = None
    tally: Tally = field(default_factory=Tally)


def run(args: argparse.Namespace) -> int:
    """The command; returns the exit status."""
    if args.backup is not None and (not args.write or not args.backup.strip()):
        raise ConfigError("--backup SUFFIX needs --write and a non-empty suffix")
    max_size = _max_size(args.max_size)
    rules, active = mending_rules(args.config, args.rule, args.no_rule)
    paths = find_files(args.paths)
    colour = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    progress = TerminalProgress(sys.stderr, "fix-posts")
    if not args.write and sys.stdout.isatty():
        progress.enabled = False  # the diff is on the same screen
    job = Job(rules, max_size, {Path(p) for p in args.paths}, progress, args.backup)
    job.tally.files = len(paths)
    out = sys.stdout.buffer
    try:
        if args.write:
            _write_all(paths, job)
        else:
            _dry_run(paths, job, out, colour=colour)
    finally:
        progress.close()
        out.flush()
    tally = job.tally
    if args.explain == "json":
        print(tally.as_json(active, written=args.write), file=sys.stderr)
    else:
        _warn(tally.summary(active))
    if tally.failed:
        return EXIT_FAILED
    return EXIT_WOULD_CHANGE if tally.changed and not args.write else EXIT_UNCHANGED


def _mend_one(path: Path, job: Job) -> tuple[Source, Mended] | None:
    """``(source, mended)`` for a file that changes, ``None`` otherwise (counted either way)."""
    tally = job.tally
    try:
        source = read_source(path, job.max_size)
        mended = mend(source.data, job.rules, html_file=source.is_html)
    except OverlappingEdits as exc:  # a bug: say so for this file, mend the others
        tally.failed += 1
        _warn(f"{path}: internal error while mending, left as it is ({exc}); please report it")
        return None
    except InputError as exc:
        if str(exc).startswith("not a post") and path not in job.named:
            tally.skipped += 1
            return None
        tally.failed += 1
        _warn(f"{path}: {exc}")
        return None
    if not mended.changed:
        tally.unchanged += 1
        return None
    tally.changed += 1
    for name, count in mended.counts.items():
        tally.changes[name] += count
        tally.files_by_rule[name] += 1
    return source, mended


def _dry_run(paths: list[Path], job: Job, out: BinaryIO, *, colour: bool) -> None:
    for done, path in enumerate(paths, 1):
        result = _mend_one(path, job)
        if result is not None:
            _, mended = result
            out.write(b"".join(unified_diff(str(path), mended, colour=colour)))
        job.progress(done, len(paths))


def _write_all(paths: list[Path], job: Job) -> None:
    folders: set[Path] = set()
    pending: list[tuple[Source, Future[None]]] = []

    def settle(keep: int) -> None:
        while len(pending) > keep:
            source, future = pending.pop(0)
            try:
                future.result()
            except FeedfixError as exc:
                job.tally.failed += 1
                job.tally.changed -= 1
                _warn(f"{source.name}: {exc}")

    with ThreadPoolExecutor(max_workers=WRITERS) as writers:
        for done, path in enumerate(paths, 1):
            result = _mend_one(path, job)
            if result is not None:
                source, mended = result
                future = writers.submit(replace_file, source, mended.data, job.backup, sync=True)
                pending.append((source, future))
                folders.add(source.path.parent)
                settle(MAX_PENDING)
            job.progress(done, len(paths))
        settle(0)
    sync_folders(sorted(folders))
