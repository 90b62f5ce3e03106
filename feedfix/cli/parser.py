"""The ``feedfix`` command line: every subcommand's arguments, documented in its help.

It is built at each start, so it imports nothing heavy: each command's code loads only when
that command runs (importing the mending code cost ``convert`` ~0.1 s).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from feedfix import __version__
from feedfix.core.sizes import DEFAULT_MAX_SIZE

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
        help="convert a feed, a post or a folder of posts to clean Atom, RSS or JSON Feed",
        description="Convert a feed file (RSS, Atom, JSON Feed), a Hexo/Jekyll post, a folder "
        "of posts, or - (stdin) to one clean feed: Atom 1.0, RSS 2.0 or JSON Feed 1.1.",
    )
    convert.add_argument("input", nargs="?", metavar="INPUT", help="file, folder, or - for stdin")
    convert.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    convert.add_argument("--example", action="store_true", help="convert the bundled example feed")
    convert.add_argument(
        "--format",
        choices=("atom", "rss", "json"),
        default="atom",
        help="the output: Atom 1.0 (the default), RSS 2.0 or JSON Feed 1.1",
    )
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
    convert.add_argument(
        "--link",
        help="feed (site) link where the input has none; a folder's posts link to their pages "
        "below it",
    )
    convert.add_argument(
        "--permalink",
        metavar="PATTERN",
        help="a folder's post URLs below --link, in Hexo's placeholders (default "
        "':year/:month/:day/:title/'; a post's own permalink front matter wins)",
    )
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
    check.add_argument(
        "--show-secrets",
        action="store_true",
        help="show credentials in feed URLs and header values (masked otherwise)",
    )
    _add_fix_posts(commands)
    images = commands.add_parser(
        "images",
        help="report on the image archive: counts, sizes, the images that could not be kept",
        description="Report on the image archive ([images] archive) from the store, whether "
        "the service runs or not: images kept, pending and failed, with their sizes, per "
        "feed; --failed lists every image whose last attempt failed, with its origin URL and "
        "why; --retry makes them pending again.",
    )
    images.add_argument("--config", metavar="FILE", help="TOML config (default: $FEEDFIX_CONFIG)")
    images.add_argument("--feed", metavar="NAME", help="only this feed's images")
    images.add_argument(
        "--failed", action="store_true", help="list each image whose last attempt failed, and why"
    )
    images.add_argument(
        "--retry", action="store_true", help="make the failed images pending again (fetched soon)"
    )
    images.add_argument("--json", action="store_true", help="print JSON, for scripts")
    return parser


def _add_fix_posts(commands: Any) -> None:
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
        "--follow-symlinks",
        action="store_true",
        help="also mend what symlinks in the folders lead to outside the paths given",
    )
    parser.add_argument(
        "--backup", metavar="SUFFIX", help="with --write, keep each original as NAME+SUFFIX"
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config ([rules] table is used)")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="NAME",
        help="also apply fix-lazy-images or drop-empty-junk (repeatable); 'all' for every "
        "rule fix-posts applies, as a ZAKER blog needs",
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
    images = parser.add_argument_group(
        "bringing images home",
        "Download every image the posts show into DIR and point the posts at PREFIX + its "
        "path in DIR. Fetching follows [images] in --config (allow_private, hosts, "
        "user_agent, timeouts, max_size). Exit 3: some images could not be saved (their "
        "URLs are kept and listed).",
    )
    images.add_argument(
        "--save-images", metavar="DIR", help="the images folder (with --images-url)"
    )
    images.add_argument(
        "--images-url",
        metavar="PREFIX",
        help="the URL DIR is served at: a path such as /images/remote, or an http(s) URL",
    )
    images.add_argument(
        "--per-host",
        type=int,
        metavar="N",
        help="image fetches at once from one host (default: [images] per_host, 4)",
    )
    images.add_argument(
        "--max-fetches",
        type=int,
        metavar="N",
        help="image fetches at once in all (default 16)",
    )
    images.add_argument(
        "--retries",
        type=int,
        metavar="N",
        help="tries again after a 429, a 5xx, a timeout or a dropped connection (default 3)",
    )
