"""A newcomer's traps in `feedfix convert`: the output file's mode, and where --explain goes.

Both are run as a user runs them (a subprocess, a real file system, a real umask).
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from atomcheck import DATA, REPO, assert_valid_atom, describe

FEED = DATA / "zaker-classic.rss.xml"


def convert(*args: str | Path, umask: int = 0o022) -> subprocess.CompletedProcess[bytes]:
    """`python -m feedfix convert ARGS` with the given umask."""
    return subprocess.run(
        [sys.executable, "-m", "feedfix", "convert", *map(str, args)],
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=False,
        umask=umask,
    )


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("umask", "expected"),
    [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)],
    ids=["umask-022", "umask-027", "umask-002"],
)
def test_a_new_output_file_gets_the_umasks_mode(tmp_path: Path, umask: int, expected: int) -> None:
    """`-o out.atom` creates a file as any program would (0666 less the umask), not the 0600
    of the temporary file it is written through, so a web server can read it."""
    out = tmp_path / "out.atom"
    result = convert(FEED, "-o", out, umask=umask)
    assert result.returncode == 0, describe(result)
    assert_valid_atom(out.read_bytes())
    assert mode_of(out) == expected, oct(mode_of(out))


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o664], ids=["0644", "0600", "0664"])
def test_an_existing_output_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    """Rewriting an existing file (a cron job into a web root) keeps the mode it had, whatever
    the umask: 0644 does not turn into 0600, nor 0600 into something wider."""
    out = tmp_path / "out.atom"
    out.write_bytes(b"old")
    out.chmod(mode)
    result = convert(FEED, "-o", out, umask=0o077)
    assert result.returncode == 0, describe(result)
    assert out.read_bytes() != b"old"
    assert mode_of(out) == mode, oct(mode_of(out))


@pytest.mark.parametrize(
    "args",
    [
        ("--explain", FEED),
        ("--explain", "text", FEED),
        ("--explain", FEED, "-o", "-"),
        ("-o", "-", "--explain", FEED),
    ],
    ids=["explain-input", "explain-text-input", "explain-input-o", "o-explain-input"],
)
def test_explain_before_the_input_works_as_after_it(args: tuple[str | Path, ...]) -> None:
    """`convert --explain feed.xml` reads feed.xml as the input (not as a style of --explain)
    and prints what `convert feed.xml --explain` prints."""
    expected = convert(FEED, "--explain")
    assert expected.returncode == 0, describe(expected)
    result = convert(*args)
    assert result.returncode == 0, describe(result)
    assert (result.stdout, result.stderr) == (expected.stdout, expected.stderr)


def test_explain_json_before_the_input_is_the_json_style() -> None:
    """`--explain json feed.xml` and `--explain=json feed.xml` choose the JSON report."""
    after = convert(FEED, "--explain=json")
    for args in (("--explain", "json", FEED), ("--explain=json", FEED)):
        result = convert(*args)
        assert result.returncode == 0, describe(result)
        assert result.stderr == after.stderr
        assert result.stderr.startswith(b"{")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--explain=yaml", FEED), "invalid choice: 'yaml'"),
        (("--explain", FEED, FEED), "unrecognized arguments"),
    ],
    ids=["unknown-style", "two-inputs"],
)
def test_explain_misuse_is_a_usage_error(args: tuple[str | Path, ...], says: str) -> None:
    """A style that is not text or json, or two inputs, is a usage error (exit 2, no
    traceback) that says what is wrong."""
    result = convert(*args)
    err = result.stderr.decode()
    assert result.returncode == 2, describe(result)
    assert says in err and "Traceback" not in err
