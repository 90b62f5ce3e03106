"""The ``feedfix`` command: the one place where errors become messages.

Nothing below ``main`` prints a traceback: expected failures are FeedfixError subclasses and
become one line naming the input; anything else is reported as an internal error. Each
command's code is imported only when it runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from feedfix.cli.common import EXIT_INPUT, EXIT_INTERNAL, EXIT_OK
from feedfix.cli.parser import EXPLAIN_STYLES, build_parser
from feedfix.core.errors import FeedfixError


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
            from feedfix.cli import convert  # noqa: PLC0415

            return convert.run(args)
        if args.command == "rules":
            from feedfix.cli.info import run_rules  # noqa: PLC0415

            return run_rules()
        if args.command == "serve":
            from feedfix.service.app import serve  # noqa: PLC0415 - aiohttp only for the service

            serve(args.config)
            return EXIT_OK
        if args.command == "check-config":
            from feedfix.cli.info import run_check_config  # noqa: PLC0415

            return run_check_config(args.file, show_secrets=args.show_secrets)
        if args.command == "images":
            from feedfix.cli import images  # noqa: PLC0415 (only when it runs)

            return images.run(args)
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


def run() -> NoReturn:
    """The console script (and ``python -m feedfix``): ``main``, then exit with its status.

    A conversion, once its output is written and flushed, leaves with ``os._exit``: the
    interpreter's own teardown (unloading the ~300 modules a conversion imports) cost 14 ms,
    ~3 % of converting bench_convert's 5 MB feed, paid by every cron run (farm-bench, 20
    pairs). It owns no atexit work; the other commands (worker pools, the service's
    logging) exit the ordinary way."""
    status = main()
    if sys.argv[1:2] == ["convert"]:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a reader gone: nothing to keep
                stream.flush()
        os._exit(status)
    sys.exit(status)
