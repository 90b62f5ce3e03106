"""The progress bar: drawn on a terminal for big jobs, never into a pipe or a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from feedfix.cli.progress import MIN_ITEMS
from service_helpers import run_with_terminal_stderr


def _big_feed(path: Path, items: int) -> None:
    body = "".join(
        f"<item><title>t{i}</title><link>http://a.example/{i}</link>"
        f"<description>&lt;p&gt;text {i}&lt;/p&gt;</description></item>"
        for i in range(items)
    )
    path.write_text(f'<rss version="2.0"><channel><title>T</title>{body}</channel></rss>')


def test_bar_on_a_terminal(tmp_path: Path) -> None:
    """A feed of MIN_ITEMS entries draws a bar that reaches the total on a terminal."""
    feed = tmp_path / "big.xml"
    _big_feed(feed, MIN_ITEMS)
    code, drawn = run_with_terminal_stderr(["convert", str(feed), "-o", str(tmp_path / "o.xml")])
    assert code == 0
    assert f"{MIN_ITEMS}/{MIN_ITEMS}".encode() in drawn
    assert b"[" + b"#" * 30 + b"]" in drawn


def test_no_bar_for_small_jobs(tmp_path: Path) -> None:
    """A small feed finishes without drawing anything, even on a terminal."""
    feed = tmp_path / "small.xml"
    _big_feed(feed, 3)
    code, drawn = run_with_terminal_stderr(["convert", str(feed), "-o", str(tmp_path / "o.xml")])
    assert (code, drawn) == (0, b"")


def test_no_bar_into_a_pipe(tmp_path: Path) -> None:
    """With stderr a pipe, a big job writes no bar (nothing at all on success)."""
    feed = tmp_path / "big.xml"
    _big_feed(feed, MIN_ITEMS)
    result = subprocess.run(
        [sys.executable, "-m", "feedfix", "convert", str(feed)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stderr == b""
