"""The file side of fix-posts: finding files, and replacing one only when it is safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedfix.core.errors import InputError
from feedfix.files.mend import find_files, read_source, replace_file


def test_replace_refuses_a_file_that_changed_since_it_was_read(tmp_path: Path) -> None:
    """Someone else edited the post between read and write: it is left with their edit."""
    post = tmp_path / "post.md"
    post.write_bytes(b"old")
    source = read_source(post, 1000)
    post.write_bytes(b"their edit")
    with pytest.raises(InputError, match="changed while being mended"):
        replace_file(source, b"mended", None, sync=False)
    assert post.read_bytes() == b"their edit"
    assert [p.name for p in tmp_path.iterdir()] == ["post.md"], "no temporary file left"


def test_replace_writes_and_keeps_a_backup(tmp_path: Path) -> None:
    """The new bytes replace the old; the backup holds the old ones."""
    post = tmp_path / "post.md"
    post.write_bytes(b"old")
    replace_file(read_source(post, 1000), b"new", ".bak", sync=True)
    assert post.read_bytes() == b"new"
    assert (tmp_path / "post.md.bak").read_bytes() == b"old"


def test_find_files_walks_post_like_files_once_in_order(tmp_path: Path) -> None:
    """Folders are searched for .md/.markdown/.txt/.html/.htm, sorted, hidden ones left out,
    a file reached twice (named and inside a folder, or by a symlink) listed once."""
    for name in ("b.md", "a.html", "c.png", ".hidden.md", "sub/d.markdown", ".git/e.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / "link.md").symlink_to(tmp_path / "b.md")
    found = find_files([str(tmp_path), str(tmp_path / "b.md")])
    assert [str(p.relative_to(tmp_path)) for p in found] == ["a.html", "b.md", "sub/d.markdown"]


def test_find_files_names_a_missing_path(tmp_path: Path) -> None:
    """A path that is not there is bad input, named in the message."""
    with pytest.raises(InputError, match="nope: no such file or directory"):
        find_files([str(tmp_path), "nope"])


def test_read_source_refuses_a_file_over_the_limit(tmp_path: Path) -> None:
    """--max-size is checked before reading."""
    post = tmp_path / "big.md"
    post.write_bytes(b"x" * 101)
    with pytest.raises(InputError, match="over the 100-byte limit"):
        read_source(post, 100)
