"""``fix-posts --rule all``: every rule fix-posts applies, as a ZAKER blog needs (lazy-load
classes and empty trailer divs went only with two ``--rule`` flags), and the README's first
``fix-posts`` example is that one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from atomcheck import DATA, REPO, run_feedfix, stderr_text

GOLDEN = DATA / "fix-posts" / "all-rules"


def test_rule_all_gives_the_all_rules_golden_files(tmp_path: Path) -> None:
    """``--rule all`` mends the golden tree exactly as ``--rule fix-lazy-images --rule
    drop-empty-junk`` does: no ``lazy opacity_0`` class, no empty trailer div left."""
    tree = tmp_path / "tree"
    shutil.copytree(GOLDEN / "before", tree)
    result = run_feedfix("fix-posts", tree, "--write", "--rule", "all")
    assert result.returncode == 0, stderr_text(result)
    for expected in (GOLDEN / "after").rglob("*"):
        if expected.is_file():
            mended = tree / expected.relative_to(GOLDEN / "after")
            assert mended.read_bytes() == expected.read_bytes(), expected.name
    text = b"".join(p.read_bytes() for p in tree.rglob("*") if p.is_file())
    assert b"opacity_0" not in text and b'<div id="recommend_bottom"></div>' not in text


def test_the_readmes_first_fix_posts_example_is_the_zaker_one() -> None:
    """The first command of README's ``fix-posts`` block applies every rule."""
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("### `fix-posts`", 1)[1]
    first = re.search(r"^feedfix fix-posts .*$", section, re.M)
    assert first and "--rule all" in first[0], first
