"""The ``fix-posts`` command line, apart from the command itself.

``feedfix`` builds every subcommand's parser at each start; the mending code and its
patterns load only when ``fix-posts`` runs (importing them cost ``convert`` ~0.1 s).
"""

from __future__ import annotations

from typing import Any

from feedfix.files.sources import DEFAULT_MAX_SIZE


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
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="processes to mend with (default 0: one per CPU, up to 4, for 1,000+ files)",
    )
    parser.add_argument(
        "--max-size",
        default=str(DEFAULT_MAX_SIZE),
        help="skip (and report) files larger than this (default 50MB)",
    )
