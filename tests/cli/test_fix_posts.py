"""`feedfix fix-posts`, run as a user runs it: a subprocess over a temporary copy of a tree.

The expected files in tests/data/fix-posts were written by hand (the encoded variants by
make_variants.py from them); nothing here is computed from feedfix's own output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from atomcheck import (
    DATA,
    REPO,
    WRAPPER_RE,
    assert_converted,
    entries,
    html_fragment,
    run_feedfix,
    stderr_text,
    unwrap,
)

GOLDEN = DATA / "fix-posts"
SHARED = REPO.parent / "shared"
CORPUS_POSTS = SHARED / "corpus" / "posts"
SEED = SHARED / "seed"
ALL_RULES = ("--rule", "fix-lazy-images", "--rule", "drop-empty-junk")
SUMMARY = re.compile(
    r"^feedfix: ([\d,]+) files?, ([\d,]+) URLs unwrapped in ([\d,]+) files?; "
    r"([\d,]+) files? unchanged"
)


def _tree(tmp_path: Path, source: Path, name: str = "tree") -> Path:
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _assert_same_tree(actual: Path, expected: Path) -> None:
    names = sorted(str(p.relative_to(expected)) for p in expected.rglob("*") if p.is_file())
    found = sorted(str(p.relative_to(actual)) for p in actual.rglob("*") if p.is_file())
    assert found == names, "the mended tree has other files than expected"
    for name in names:
        got, want = (actual / name).read_bytes(), (expected / name).read_bytes()
        assert got == want, f"{name}: mended bytes differ from the golden file"


@pytest.mark.parametrize(
    ("case", "args"), [("default", ()), ("all-rules", ALL_RULES)], ids=["default", "all-rules"]
)
def test_write_gives_the_golden_files_byte_for_byte(
    tmp_path: Path, case: str, args: tuple[str, ...]
) -> None:
    """--write turns every before/ file into its after/ twin exactly (encodings, BOM, CRLF)."""
    tree = _tree(tmp_path, GOLDEN / case / "before")
    result = run_feedfix("fix-posts", tree, "--write", *args)
    assert result.returncode == 0, stderr_text(result)
    assert result.stdout == b"", "--write prints no diff"
    _assert_same_tree(tree, GOLDEN / case / "after")


def test_unchanged_files_are_not_touched_at_all(tmp_path: Path) -> None:
    """A file with nothing to mend keeps its bytes and its modification time; the others move."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    old = 1_600_000_000_000_000_000
    for path in tree.iterdir():
        os.utime(path, ns=(old, old))
    result = run_feedfix("fix-posts", tree, "--write")
    assert result.returncode == 0, stderr_text(result)
    untouched = {"untouched.md", "notes.txt"}
    for path in tree.iterdir():
        moved = path.stat().st_mtime_ns != old
        assert moved == (path.name not in untouched), f"{path.name}: mtime moved={moved}"


def test_dry_run_shows_a_diff_changes_nothing_and_exits_1(tmp_path: Path) -> None:
    """Without --write: a unified diff of every change, the files untouched, exit 1."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    before = _snapshot(tree)
    result = run_feedfix("fix-posts", tree)
    assert result.returncode == 1, stderr_text(result)
    assert _snapshot(tree) == before, "a dry run must not touch any file"
    diff = result.stdout.decode("utf-8", "replace")  # gbk.markdown's lines are GBK
    assert f"--- a/{str(tree / 'quoted.md').lstrip('/')}" in diff
    assert "-headimg: 'https://cors.zfour.workers.dev/?http://zkres2.myzaker.com" in diff
    assert "+headimg: 'http://zkres2.myzaker.com/202112/61b1befc_1024.jpg'" in diff
    assert "untouched.md" not in diff
    assert "\x1b[" not in diff, "no colour when stdout is not a terminal"
    removed = [line for line in diff.splitlines() if line.startswith("-") and "---" not in line]
    assert removed and all(WRAPPER_RE.search(line) for line in removed)


def test_dry_run_diff_applies_with_patch_to_the_golden_files(tmp_path: Path) -> None:
    """The diff is a real patch, each file's lines in its own encoding (GBK stays GBK):
    `patch -p1` over the tree gives the --write result."""
    if shutil.which("patch") is None:
        pytest.skip("patch(1) is not installed")
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    result = subprocess.run(
        [sys.executable, "-m", "feedfix", "fix-posts", "tree"],
        cwd=tmp_path, capture_output=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    patched = subprocess.run(
        ["patch", "-p1", "--binary", "-s"], input=result.stdout, cwd=tmp_path,
        capture_output=True, check=False,
    )  # fmt: skip
    assert patched.returncode == 0, patched.stdout + patched.stderr
    _assert_same_tree(tree, GOLDEN / "default" / "after")


def test_summary_counts_and_explain_json(tmp_path: Path) -> None:
    """stderr says how many files and URLs; --explain=json gives the same counts as JSON."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    result = run_feedfix("fix-posts", tree)
    match = SUMMARY.match(stderr_text(result))
    assert match, stderr_text(result)
    files, urls, changed, unchanged = (int(g.replace(",", "")) for g in match.groups())
    # 9 files: 7 that change, untouched.md unchanged, notes.txt skipped (no front matter).
    assert (files, changed, unchanged) == (9, 7, 1)
    assert "1 skipped (not posts)" in stderr_text(result)
    # Counted by hand: 21 in quoted.md and each of its crlf/bom/gbk variants, 8 in
    # markdown.md, 3 in page.html and in bom-crlf.html (og:image, preload, img; not the
    # script's or the style's).
    assert urls == 4 * 21 + 8 + 3 + 3
    explained = run_feedfix("fix-posts", tree, "--explain=json")
    data = json.loads(stderr_text(explained))
    assert data["files"] == 9 and data["changed"] == 7 and data["unchanged"] == 1
    assert data["rules"] == {"unwrap-proxies": {"changes": urls, "files": 7}}
    assert data["written"] is False


def test_quoted_post_counts_every_wrapped_url(tmp_path: Path) -> None:
    """The 21 wrapped URLs of quoted.md are counted: 9 in the front matter (comments aside),
    12 in the body (comments and alt text aside)."""
    post = tmp_path / "quoted.md"
    shutil.copy(GOLDEN / "default" / "before" / "quoted.md", post)
    data = json.loads(stderr_text(run_feedfix("fix-posts", post, "--explain=json")))
    assert data["rules"]["unwrap-proxies"] == {"changes": 9 + 12, "files": 1}


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    """Idempotent: after --write, a dry run finds nothing and exits 0 with an empty diff."""
    tree = _tree(tmp_path, GOLDEN / "all-rules" / "before")
    assert run_feedfix("fix-posts", tree, "--write", *ALL_RULES).returncode == 0
    again = run_feedfix("fix-posts", tree, *ALL_RULES)
    assert again.returncode == 0, stderr_text(again)
    assert again.stdout == b""


def test_backup_keeps_the_original(tmp_path: Path) -> None:
    """--backup .orig leaves each original beside its mended file, and only for those."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    original = (tree / "quoted.md").read_bytes()
    result = run_feedfix("fix-posts", tree, "--write", "--backup", ".orig")
    assert result.returncode == 0, stderr_text(result)
    assert (tree / "quoted.md.orig").read_bytes() == original
    assert not (tree / "untouched.md.orig").exists()
    assert (tree / "quoted.md").read_bytes() == (GOLDEN / "default/after/quoted.md").read_bytes()


def test_write_keeps_the_file_mode(tmp_path: Path) -> None:
    """The replacement has the original's permission bits (not mkstemp's 0600)."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    (tree / "quoted.md").chmod(0o664)
    assert run_feedfix("fix-posts", tree, "--write").returncode == 0
    assert stat.S_IMODE((tree / "quoted.md").stat().st_mode) == 0o664


def test_symlinked_post_is_mended_through_the_link(tmp_path: Path) -> None:
    """A symlink stays a symlink; the file it points to is mended (once)."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    (tree / "link.md").symlink_to(tree / "quoted.md")
    result = run_feedfix("fix-posts", tree, "--write")
    assert result.returncode == 0, stderr_text(result)
    assert (tree / "link.md").is_symlink()
    assert (tree / "quoted.md").read_bytes() == (GOLDEN / "default/after/quoted.md").read_bytes()


def test_unreadable_and_undecodable_files_are_reported_and_the_rest_mended(
    tmp_path: Path,
) -> None:
    """One line per bad file naming it; it stays as it was; the others are written; exit 2."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    locked = tree / "locked.md"
    shutil.copy(tree / "quoted.md", locked)
    locked.chmod(0)
    broken_yaml = tree / "broken.md"
    broken_yaml.write_bytes(
        b"---\ntitle: [unclosed\nheadimg: 'https://cors.zfour.workers.dev/?http://a.example/x.jpg'"
        b"\n---\n<p>x</p>\n"
    )
    truncated = tree / "truncated.md"
    truncated.write_bytes(
        b"\xff\xfe"
        + "---\ntitle: a\n---\n<img src='https://cors.zfour.workers.dev/?http://a.example/y.jpg'>"
        .encode("utf-16-le")
        + b"\x00"
    )  # fmt: skip
    bad = {p: p.read_bytes() for p in (broken_yaml, truncated)}
    if os.geteuid() == 0:
        locked.unlink()  # root reads anything: the permission case cannot be made here
    result = run_feedfix("fix-posts", tree, "--write")
    assert result.returncode == 2, stderr_text(result)
    err = stderr_text(result)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert any(str(broken_yaml) in line and "not valid YAML" in line for line in lines), err
    assert any(str(truncated) in line and "without loss" in line for line in lines), err
    if locked.exists():
        assert any(str(locked) in line and "permission denied" in line for line in lines), err
    assert SUMMARY.match(lines[-1]) and lines[-1].endswith("failed"), lines[-1]
    for path, data in bad.items():
        assert path.read_bytes() == data, f"{path.name} must be left as it was"
    assert (tree / "quoted.md").read_bytes() == (GOLDEN / "default/after/quoted.md").read_bytes()


def test_stray_bytes_outside_the_urls_survive(tmp_path: Path) -> None:
    """A post with bytes that are not UTF-8 is still mended, and those bytes stay as they were."""
    post = tmp_path / "stray.md"
    head = b"---\ntitle: a\n---\n<p>\xff\xfe\x00 binary \xc3\x28</p><img src='"
    post.write_bytes(head + b"https://cors.zfour.workers.dev/?http://a.example/y.jpg'>\n")
    result = run_feedfix("fix-posts", post, "--write")
    assert result.returncode == 0, stderr_text(result)
    assert post.read_bytes() == head + b"http://a.example/y.jpg'>\n"


def test_worker_processes_give_the_same_diff_and_counts(tmp_path: Path) -> None:
    """--jobs 3 (forked workers) and --jobs 1 print the same patch, in the same order, and
    the same summary, failures included."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    (tree / "broken.md").write_bytes(b"---\ntitle: [x\n---\n<img src='//i0.wp.com/a.b/c.jpg'>\n")
    one = run_feedfix("fix-posts", tree, "--jobs", "1")
    three = run_feedfix("fix-posts", tree, "--jobs", "3")
    assert one.returncode == three.returncode == 2
    assert one.stdout == three.stdout and b"+++ b/" in one.stdout
    assert stderr_text(one) == stderr_text(three)
    assert "broken.md: front matter is not valid YAML" in stderr_text(three)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("fix-posts", "no/such/dir"), "no/such/dir: no such file or directory"),
        (("fix-posts", "tests", "--rule", "nonsense"), "unknown rule 'nonsense'"),
        (("fix-posts", "tests", "--rule", "sanitize"), "cannot apply 'sanitize'"),
        (("fix-posts", "tests", "--backup", ".bak"), "--backup SUFFIX needs --write"),
        (("fix-posts", "tests", "--max-size", "lots"), "--max-size"),
        (("fix-posts", "tests", "--jobs", "-1"), "--jobs -1"),
    ],
    ids=[
        "missing-path",
        "unknown-rule",
        "not-a-mending-rule",
        "backup-without-write",
        "size",
        "jobs",
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], problem: str) -> None:
    """Bad paths and options: exit 2, one line naming the problem, nothing done, no traceback."""
    result = run_feedfix(*args)
    err = stderr_text(result)
    assert result.returncode == 2, err
    assert len(err.splitlines()) == 1 and problem in err, err
    assert "Traceback" not in err and result.stdout == b""


def test_config_rules_and_extra_wrappers_apply(tmp_path: Path) -> None:
    """The [rules] table of the config is used: an extra wrapper template and junk selectors."""
    post = tmp_path / "post.md"
    post.write_text(
        "---\ntitle: t\nheadimg: https://img.proxy.example/?u=https%3A%2F%2Fa.example%2Fh.jpg\n"
        '---\n<p>x</p><div class="ad"></div><img src="https://img.proxy.example/?u=b.example/i.png">\n',
        encoding="utf-8",
    )
    config = tmp_path / "feedfix.toml"
    config.write_text(
        '[rules.unwrap-proxies]\nextra_wrappers = ["https://img.proxy.example/?u=${href_ue}"]\n'
        '[rules.drop-empty-junk]\nenabled = true\nselectors = ["div.ad"]\n',
        encoding="utf-8",
    )
    result = run_feedfix("fix-posts", post, "--write", "--config", config)
    assert result.returncode == 0, stderr_text(result)
    assert post.read_text(encoding="utf-8") == (
        "---\ntitle: t\nheadimg: https://a.example/h.jpg\n"
        '---\n<p>x</p><img src="http://b.example/i.png">\n'
    )


def test_no_rule_switches_unwrapping_off(tmp_path: Path) -> None:
    """--no-rule unwrap-proxies leaves nothing to do: exit 0, files as they were."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    before = _snapshot(tree)
    result = run_feedfix("fix-posts", tree, "--no-rule", "unwrap-proxies")
    assert result.returncode == 0, stderr_text(result)
    assert _snapshot(tree) == before and result.stdout == b""


def test_colour_always_colours_the_diff(tmp_path: Path) -> None:
    """--color=always marks removed lines red and added lines green."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    diff = run_feedfix("fix-posts", tree / "markdown.md", "--color=always").stdout.decode()
    assert "\x1b[31m-headimg: https://cors.zfour.workers.dev" in diff
    assert "\x1b[32m+headimg: http://img.example.com/md-head.jpg\x1b[0m" in diff


# ---- the shared corpus and the seed ---------------------------------------------------------

_URL = re.compile(r"((?:https?:)?//[^\s\"'<>()\[\]]+)")


def _shared_trees() -> list[object]:
    present = [p for p in (CORPUS_POSTS, SEED) if p.is_dir()]
    if not present:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{SHARED} is not present"))]
    return [pytest.param(p, id=p.name) for p in present]


@pytest.mark.corpus
@pytest.mark.parametrize("source", _shared_trees())
def test_shared_posts_mended_leave_no_wrapper_and_nothing_else_changed(
    tmp_path: Path, source: Path | None
) -> None:
    """Corpus and seed, mended in a copy: no wrapper host left, and outside the URLs every
    byte is the input's; each changed URL is the tests' own unwrapping of the old one."""
    assert source is not None
    tree = _tree(tmp_path, source)
    result = run_feedfix("fix-posts", tree, "--write")
    assert result.returncode == 0, stderr_text(result)
    for original in sorted(p for p in source.rglob("*") if p.is_file()):
        mended = tree / original.relative_to(source)
        old, new = original.read_text(encoding="utf-8"), mended.read_text(encoding="utf-8")
        assert not WRAPPER_RE.search(new), f"{original.name}: a wrapper host is left"
        old_parts, new_parts = _URL.split(old), _URL.split(new)
        assert len(old_parts) == len(new_parts), f"{original.name}: URLs added or lost"
        assert old_parts[0::2] == new_parts[0::2], f"{original.name}: text outside URLs moved"
        for before, after in zip(old_parts[1::2], new_parts[1::2], strict=True):
            assert after == before or after == unwrap(before), (before, after)
        if WRAPPER_RE.search(old):
            assert mended.read_bytes() != original.read_bytes()


_POST_ID = re.compile(rb"<id>urn:feedfix:post:[0-9a-f]{32}</id>")


@pytest.mark.corpus
@pytest.mark.parametrize("source", _shared_trees())
def test_convert_of_the_mended_tree_gives_the_same_feed(
    tmp_path: Path, source: Path | None
) -> None:
    """`feedfix convert` of the mended copy = `convert` of the original, ids aside (a feed
    without an id gets one hashed from what it says, raw URLs included)."""
    assert source is not None
    tree = _tree(tmp_path, source)
    assert run_feedfix("fix-posts", tree, "--write").returncode == 0
    # --id: a feed without one gets a hash of all it says, mended URLs included
    original = run_feedfix("convert", source, "--title", "t", "--id", "urn:test:feed")
    mended = run_feedfix("convert", tree, "--title", "t", "--id", "urn:test:feed")
    assert original.returncode == 0 and mended.returncode == 0, stderr_text(mended)
    assert _snapshot(tree) != _snapshot(source), "mending changed nothing: nothing was tested"
    assert _POST_ID.sub(b"<id/>", mended.stdout) == _POST_ID.sub(b"<id/>", original.stdout)


def _canonical(html: str) -> list[object]:
    """An HTML fragment as nested (tag, sorted attributes, text, children, tail) lists."""

    def walk(element: Any) -> list[object]:
        attributes = sorted(element.attrib.items())
        children = [walk(child) for child in element if isinstance(child.tag, str)]
        return [element.tag, attributes, element.text or "", children, element.tail or ""]

    return walk(html_fragment(html))


@pytest.mark.corpus
@pytest.mark.parametrize("source", _shared_trees())
def test_convert_after_all_mending_rules_means_the_same(
    tmp_path: Path, source: Path | None
) -> None:
    """With fix-lazy-images and drop-empty-junk too, the converted entries say the same:
    same titles, dates and content, attributes compared as sets (the span rule renames
    data-width in place where the tree rule appends width)."""
    assert source is not None
    tree = _tree(tmp_path, source)
    assert run_feedfix("fix-posts", tree, "--write", *ALL_RULES).returncode == 0
    before = entries(assert_converted(run_feedfix("convert", source, "--title", "t")))
    after = entries(assert_converted(run_feedfix("convert", tree, "--title", "t")))
    assert [(e.title, e.published) for e in after] == [(e.title, e.published) for e in before]
    for old, new in zip(before, after, strict=True):
        assert _canonical(new.content_html) == _canonical(old.content_html), old.title


@pytest.mark.corpus
def test_entry_ids_survive_mending(tmp_path: Path) -> None:
    """The ids of id-less posts do not depend on their wrapped URLs: mending keeps them, so
    readers do not show the mended posts again as new."""
    if not CORPUS_POSTS.is_dir():
        pytest.skip(f"{CORPUS_POSTS} is not present")
    tree = _tree(tmp_path, CORPUS_POSTS)
    assert run_feedfix("fix-posts", tree, "--write").returncode == 0
    ids = [
        _POST_ID.findall(run_feedfix("convert", t, "--title", "t").stdout)
        for t in (CORPUS_POSTS, tree)
    ]
    assert ids[0] == ids[1]


def test_progress_bar_on_a_terminal_for_a_large_tree(tmp_path: Path) -> None:
    """With stderr a terminal (a pty here) and 300 posts, --write draws a bar on stderr;
    with stderr a pipe, none is drawn."""
    import pty  # noqa: PLC0415 - POSIX only, like the command's terminal detection

    post = (GOLDEN / "default" / "before" / "markdown.md").read_bytes()
    for number in range(300):
        (tmp_path / f"{number:03d}.md").write_bytes(post)
    master, slave = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "feedfix", "fix-posts", str(tmp_path), "--write"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=slave, check=False, timeout=120,
        )  # fmt: skip
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert process.returncode == 0
    assert b"fix-posts [" in shown and b"300/300" in shown, shown[-300:]
    piped = run_feedfix("fix-posts", tmp_path)
    assert b"fix-posts [" not in piped.stderr


def test_a_file_over_max_size_is_reported_and_left(tmp_path: Path) -> None:
    """--max-size: a bigger file is one failure line; the smaller ones are still mended."""
    tree = _tree(tmp_path, GOLDEN / "default" / "before")
    big = tree / "quoted.md"
    original = big.read_bytes()
    result = run_feedfix("fix-posts", tree, "--write", "--max-size", "2KB")
    err = stderr_text(result)
    assert result.returncode == 2, err
    assert any(str(big) in line and "over the 2,000-byte limit" in line for line in err.split("\n"))
    assert big.read_bytes() == original
    small = (tree / "markdown.md").read_bytes()
    assert small == (GOLDEN / "default/after/markdown.md").read_bytes()


def test_a_relative_path_is_written_in_its_own_folder(tmp_path: Path) -> None:
    """`fix-posts post.md --write` run in the post's folder replaces it there."""
    shutil.copy(GOLDEN / "default" / "before" / "markdown.md", tmp_path / "post.md")
    result = subprocess.run(
        [sys.executable, "-m", "feedfix", "fix-posts", "post.md", "--write"],
        cwd=tmp_path, capture_output=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "post.md").read_bytes() == (
        GOLDEN / "default/after/markdown.md"
    ).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["post.md"]


def test_an_internal_error_exits_2_never_the_dry_runs_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in fix-posts is one line and exit 2: a script reading 1 as "posts would change"
    must not mistake a crash for it."""
    from feedfix.cli import fix_posts, main  # noqa: PLC0415

    post = tmp_path / "post.md"
    post.write_text("---\ntitle: t\n---\n<p>x</p>\n", encoding="utf-8")

    def broken(_args: object) -> int:
        raise RuntimeError("a planted bug")

    monkeypatch.setattr(fix_posts, "run", broken)
    assert main(["fix-posts", str(post)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("feedfix: internal error: RuntimeError: a planted bug")
    assert len(err.splitlines()) == 1
