"""The ``feedfix`` command: argument parsing and the one place errors become messages.

Nothing below ``main`` prints a traceback: expected failures are FeedfixError subclasses and
become one line naming the input; anything else is reported as an internal error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from feedfix import __version__
from feedfix.cli import fix_posts_args
from feedfix.cli.progress import TerminalProgress
from feedfix.core.errors import ConfigError, FeedfixError, InputError
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.pipeline import ConvertOptions, Report, posts_folder_id, stream_atom
from feedfix.core.rules import RULE_CLASSES, UNITS, ProxyImages, Rule, RuleSpec, ruleset
from feedfix.files.sources import DEFAULT_MAX_SIZE, FolderOptions, read_bytes, read_posts_folder

if TYPE_CHECKING:
    from feedfix.config import Config
    from feedfix.core.rules import ImageProxySettings

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "zaker-channel.rss.xml"


class UsageError(FeedfixError):
    """A bad command line (reported like argparse's own errors, exit 2)."""


EXPLAIN_STYLES = ("text", "json")


class _ExplainAction(argparse.Action):
    """``--explain`` with an optional style, in any order with INPUT.

    argparse gives an optional-value option the next word, so ``--explain feed.xml`` would
    read the input as a style; a word that is not a style is kept for INPUT instead (main
    checks ``--explain=STYLE``, whose value is never INPUT).
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[object] | None,
        option_string: str | None = None,
    ) -> None:
        value = values if isinstance(values, str) else None
        if value is None or value in EXPLAIN_STYLES:
            setattr(namespace, self.dest, value or "text")
            return
        setattr(namespace, self.dest, "text")
        namespace.input_after_explain = value


def _timezone(value: str) -> tzinfo:
    text = value.strip()
    if text.upper() in {"UTC", "Z", "GMT"}:
        return UTC
    sign = {"+": 1, "-": -1}.get(text[:1])
    if sign and len(text) in (3, 5, 6) and text[1:3].isdigit():
        hours, minutes = int(text[1:3]), int(text[-2:]) if len(text) > 3 else 0
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"--timezone: unknown zone {value!r} (use a name like Asia/Shanghai or +08:00)"
        ) from exc


def _max_size(value: str) -> int:
    from feedfix.core.sizes import parse_size  # noqa: PLC0415

    try:
        return parse_size(int(value) if value.isdigit() else value, "--max-size")
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    """The command line, documented in its own help."""
    parser = argparse.ArgumentParser(
        prog="feedfix",
        description="Clean RSS/Atom feeds and Hexo/Jekyll posts into valid Atom.",
    )
    parser.add_argument("--version", action="version", version=f"feedfix {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    convert = commands.add_parser(
        "convert",
        help="convert a feed, a post or a folder of posts to clean Atom",
        description="Convert a feed file, a Hexo/Jekyll post, a folder of posts, or - (stdin) "
        "to one clean Atom feed.",
    )
    convert.add_argument("input", nargs="?", metavar="INPUT", help="file, folder, or - for stdin")
    convert.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    convert.add_argument("--example", action="store_true", help="convert the bundled example feed")
    convert.add_argument("--config", metavar="FILE", help="TOML config ([rules] table is used)")
    convert.add_argument(
        "--no-rule", action="append", default=[], metavar="NAME", help="switch a rule off"
    )
    convert.add_argument(
        "--explain",
        nargs="?",
        action=_ExplainAction,
        metavar="{text,json}",
        help="print what each rule changed to stderr (text, or json)",
    )
    convert.add_argument(
        "--strict", action="store_true", help="fail on a damaged feed instead of warning"
    )
    convert.add_argument(
        "--timezone", default="UTC", help="zone for dates without one (default UTC)"
    )
    convert.add_argument("--title", help="feed title where the input has none")
    convert.add_argument("--id", help="feed id where the input has none")
    convert.add_argument("--link", help="feed (site) link where the input has none")
    convert.add_argument("--base-url", help="URL the input came from, for relative links")
    convert.add_argument(
        "--max-size",
        default=str(DEFAULT_MAX_SIZE),
        help="refuse input larger than this (default 50MB; e.g. 500KB, 2MB)",
    )
    convert.add_argument(
        "--image-proxy",
        metavar="BASE_URL",
        help="point images at the feedfix service at BASE_URL (its /img/ proxy); the key "
        "comes from [images] key in --config or FEEDFIX_IMAGES__KEY",
    )
    commands.add_parser("rules", help="list the cleaning rules and what they do")
    serve = commands.add_parser(
        "serve",
        help="poll the configured feeds and serve them cleaned over HTTP",
        description="Poll every configured feed and serve its cleaned Atom at "
        "/feeds/{name}.atom. Stops on SIGTERM/SIGINT; SIGHUP reloads the config.",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML config (default: $FEEDFIX_CONFIG)")
    check = commands.add_parser(
        "check-config",
        help="validate a config file and print the effective settings",
        description="Validate a config file (with FEEDFIX_* environment overrides applied) "
        "and print every effective setting as JSON.",
    )
    check.add_argument("file", metavar="FILE", nargs="?", help="default: $FEEDFIX_CONFIG")
    fix_posts_args.add_parser(commands)
    return parser


def _warn(message: str) -> None:
    print(f"feedfix: warning: {message}", file=sys.stderr)


def _explain(report: Report, style: str, stream: TextIO) -> None:
    if style == "json":
        data = {n: {"changes": c.changes, "entries": c.entries} for n, c in report.counts.items()}
        print(json.dumps(data, ensure_ascii=False, sort_keys=False), file=stream)
        return
    for name, count in report.counts.items():
        unit = UNITS.get(name, "dropped")  # not a step: invalid-values
        print(f"{name}: {count.changes} {unit} in {count.entries} entries", file=stream)
    print(f"entries: {report.entries}", file=stream)


def _write_output(chunks: Iterable[bytes], output: str | None) -> None:
    """Write as the chunks come; a file is replaced atomically, never left half-written."""
    if output is None or output == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    target = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".feedfix-", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    try:
        # mkstemp makes the file 0600; the result gets the mode any new file would (or keeps
        # the one it had), so a web server can still read a feed a cron job rewrites.
        os.fchmod(fd, _output_mode(target))
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        Path(tmp).replace(target)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _output_mode(target: Path) -> int:
    """The mode the output file gets: the existing file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask


def _run_convert(args: argparse.Namespace) -> int:
    if args.example:
        args.input = str(EXAMPLE)
    if not args.input:
        raise UsageError("convert: give an INPUT (a file, a folder, or - for stdin)")
    tz = _timezone(args.timezone)
    max_size = _max_size(args.max_size)
    spec = RuleSpec()
    if args.config or args.image_proxy:
        from feedfix.config import parse_config  # noqa: PLC0415

        text = ""
        if args.config:
            try:
                text = Path(args.config).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{args.config}: cannot read: {exc}") from exc
        config = parse_config(text, args.config or "environment", os.environ)
        spec = config.rules
        if args.image_proxy:
            spec = dataclasses.replace(spec, images=_image_proxy(config, args.image_proxy))
    try:
        rules = ruleset(spec.disabling(args.no_rule))
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    options = ConvertOptions(
        rules=rules,
        parse=ParseOptions(base_url=args.base_url, timezone=tz, strict=args.strict),
        title=args.title,
        id=args.id,
        link=args.link,
        source=args.input,
    )
    name = "<stdin>" if args.input == "-" else args.input
    progress = TerminalProgress(sys.stderr, "feedfix")
    report = Report()
    try:
        chunks, warnings = _open_input(
            args.input, name, options, max_size, report=report, progress=progress
        )
        for warning in warnings:
            _warn(f"{name}: {warning}")
        _write_output(chunks, args.output)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc
    finally:
        progress.close()
    if args.explain:
        _explain(report, args.explain, sys.stderr)
    return EXIT_OK


def _image_proxy(config: Config, base_url: str) -> ImageProxySettings:
    """``--image-proxy``: the config's [images] (mode "http" unless it names another) with
    the service's public URL; the key from the config or the environment."""
    from feedfix.config import image_proxy, url  # noqa: PLC0415

    try:
        url(base_url, "--image-proxy")
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    images = config.images
    if images.key is None:
        raise UsageError(
            "--image-proxy: no signing key: set [images] key in --config FILE or "
            "FEEDFIX_IMAGES__KEY (the running service's key, or its URLs won't verify)"
        )
    mode = images.proxy if images.proxy != "off" else "http"
    server = dataclasses.replace(config.server, base_url=base_url)
    settings = image_proxy(
        dataclasses.replace(config, server=server, images=dataclasses.replace(images, proxy=mode))
    )
    if settings is None:  # pragma: no cover - a mode and a base URL are set just above
        raise UsageError("--image-proxy: the proxy is off")
    return settings


def _open_input(
    path: str,
    name: str,
    options: ConvertOptions,
    max_size: int,
    *,
    report: Report,
    progress: TerminalProgress,
) -> tuple[Iterator[bytes], list[str]]:
    """The Atom chunks to write and the warnings to print first.

    The parsed feed is handed straight to ``stream_atom`` with no reference kept here, so
    its entries are released as they are written.
    """
    warnings: list[str] = []
    if path != "-" and Path(path).is_dir():
        folder = FolderOptions(max_size=max_size, timezone=options.parse.timezone,
                               strict=options.parse.strict)  # fmt: skip
        feed = read_posts_folder(path, folder, warnings.append, progress)
        folder_name = Path(path).resolve().name
        if not options.title:
            options = dataclasses.replace(options, title=folder_name or None)
        if not (options.id or options.link or options.parse.base_url):
            options = dataclasses.replace(options, id=posts_folder_id(folder_name, options.title))
    else:
        feed = parse_document(read_bytes(path, max_size), name, options.parse)
        warnings.extend(feed.warnings)
    chunks = stream_atom(feed, options, report, progress)
    del feed
    warnings.extend(report.warnings)  # duplicate ids, found as the ids were settled
    return chunks, warnings


def _run_rules() -> int:
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


def _run_check_config(given: str | None) -> int:
    from feedfix.config import effective  # noqa: PLC0415
    from feedfix.service.app import config_path, load_config  # noqa: PLC0415

    path = config_path(given, os.environ)
    config = load_config(path, os.environ)
    for warning in config.warnings:
        _warn(f"{path}: {warning}")
    for index, feed in enumerate(config.feeds):
        if feed.path is not None and not Path(feed.path).exists():
            _warn(
                f"{path}: feeds[{index}].path: {feed.path} does not exist (yet); the feed "
                "fails until it does"
            )
    print(json.dumps(effective(config), ensure_ascii=False, indent=2))
    print(f"feedfix: {path}: ok, {len(config.feeds)} feeds", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    for word in words:
        style = word.removeprefix("--explain=")
        if style != word and style not in EXPLAIN_STYLES:
            parser.error(f"argument --explain: invalid choice: {style!r} (choose text or json)")
    args = parser.parse_args(words)
    stray = getattr(args, "input_after_explain", None)
    if stray is not None:  # `convert --explain INPUT`: the word after --explain was INPUT
        if args.input is not None:
            parser.error(f"unrecognized arguments: {stray}")
        args.input = stray
    try:
        if args.command == "convert":
            return _run_convert(args)
        if args.command == "rules":
            return _run_rules()
        if args.command == "serve":
            from feedfix.service.app import serve  # noqa: PLC0415 - aiohttp only for the service

            serve(args.config)
            return EXIT_OK
        if args.command == "check-config":
            return _run_check_config(args.file)
        if args.command == "fix-posts":
            from feedfix.cli import fix_posts  # noqa: PLC0415 (only when it runs)

            return fix_posts.run(args)
        parser.print_help(sys.stderr)
        return EXIT_INPUT
    except FeedfixError as exc:
        print(f"feedfix: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return EXIT_OK
    except Exception as exc:  # a bug: say so in one line; FEEDFIX_DEBUG=1 shows the traceback
        if os.environ.get("FEEDFIX_DEBUG"):
            raise
        print(
            f"feedfix: internal error: {type(exc).__name__}: {exc} "
            "(set FEEDFIX_DEBUG=1 for details and please report it)",
            file=sys.stderr,
        )
        # fix-posts' 1 means "a dry run found changes" (as ``ruff format --check``): a bug
        # there must not read as that, so it is an error like any other, 2.
        return EXIT_INPUT if args.command == "fix-posts" else EXIT_INTERNAL
