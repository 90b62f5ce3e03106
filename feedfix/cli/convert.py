"""``feedfix convert``: a feed, a post or a folder of posts to one clean feed (Atom, or RSS or
JSON Feed with ``--format``)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from feedfix.cli.common import (
    EXIT_OK,
    UsageError,
    size_option,
    timezone_option,
    warn,
    write_output,
)
from feedfix.cli.progress import TerminalProgress
from feedfix.core.errors import ConfigError, InputError
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.pipeline import (
    NOTE_UNITS,
    ConvertOptions,
    Report,
    posts_folder_id,
    stream_atom,
)
from feedfix.core.rules import UNITS, RuleSpec, ruleset
from feedfix.files.sources import FolderOptions, read_bytes, read_posts_folder

if TYPE_CHECKING:
    from feedfix.config import Config
    from feedfix.core.rules import ImageProxySettings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "zaker-channel.rss.xml"


def run(args: argparse.Namespace) -> int:
    """Convert ``args.input`` (or the bundled example) and write the feed."""
    if args.example:
        args.input = str(EXAMPLE)
    if not args.input:
        raise UsageError("convert: give an INPUT (a file, a folder, or - for stdin)")
    tz = timezone_option(args.timezone)
    max_size = size_option(args.max_size)
    spec = RuleSpec()
    if args.config or args.image_proxy:
        from feedfix.config import Layer, parse_config, url  # noqa: PLC0415

        text = ""
        if args.config:
            try:
                text = Path(args.config).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{args.config}: cannot read: {exc}") from exc
        flags = None
        if args.image_proxy:  # the service's public URL: [server] base_url, over the config's
            try:
                url(args.image_proxy, "--image-proxy")
            except ConfigError as exc:
                raise UsageError(str(exc)) from exc
            given = {"server": {"base_url": args.image_proxy}}
            flags = Layer(given, "command line: --image-proxy", where=" (set by --image-proxy)")
        config = parse_config(text, args.config or "environment", os.environ, flags=flags)
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
        format=args.format,
    )
    name = "<stdin>" if args.input == "-" else args.input
    progress = TerminalProgress(sys.stderr, "feedfix")
    report = Report()
    try:
        chunks, warnings = _open_input(
            args.input,
            name,
            options,
            max_size,
            report=report,
            progress=progress,
            permalink=_permalink(args.permalink),
        )
        for warning in warnings:
            warn(f"{name}: {warning}")
        write_output(chunks, args.output)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc
    finally:
        progress.close()
    if args.explain:
        explain(report, args.explain, sys.stderr)
    return EXIT_OK


def _permalink(pattern: str | None) -> str | None:
    """``--permalink``, checked as the config's ``permalink`` is."""
    if pattern is None:
        return None
    from feedfix.config.checks import permalink  # noqa: PLC0415

    try:
        return permalink(pattern, "--permalink")
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _image_proxy(config: Config, base_url: str) -> ImageProxySettings:
    """``--image-proxy``: the config's [images] (mode "http" unless it names another) with
    the service's public URL; the key from the config or the environment."""
    from feedfix.config import image_proxy  # noqa: PLC0415

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
    permalink: str | None = None,
) -> tuple[Iterator[bytes], list[str]]:
    """The chunks to write and the warnings to print first.

    The parsed feed is handed straight to ``stream_atom`` with no reference kept here, so
    its entries are released as they are written.
    """
    warnings: list[str] = []
    if path != "-" and Path(path).is_dir():
        folder = FolderOptions(
            max_size=max_size,
            timezone=options.parse.timezone,
            strict=options.parse.strict,
            home=options.link,
            permalink=permalink,
        )
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


def explain(report: Report, style: str, stream: TextIO) -> None:
    """``--explain``: what each rule changed, as text or JSON."""
    if style == "json":
        data = {n: {"changes": c.changes, "entries": c.entries} for n, c in report.counts.items()}
        import json  # noqa: PLC0415  # only for --explain=json, not at every start

        print(json.dumps(data, ensure_ascii=False, sort_keys=False), file=stream)
        return
    for name, count in report.counts.items():
        unit = UNITS.get(name) or NOTE_UNITS.get(name, "dropped")  # a rule's, or a note's
        print(f"{name}: {count.changes} {unit} in {count.entries} entries", file=stream)
    print(f"entries: {report.entries}", file=stream)
