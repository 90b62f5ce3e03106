"""The images folder: a name exists only whole and only as an image; identical bytes are
one file with several names (hard links)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from feedfix.core.errors import InputError
from feedfix.files.image_names import ImageName, name_for
from feedfix.files.image_store import INDEX, ImageStore
from feedfix.service.images.media import matches
from image_origin import HTML_PAGE, make_image

TYPES = ("image/png", "image/jpeg")
PNG = make_image("PNG")
JPEG = make_image("JPEG")


def _store(root: Path, max_size: int = 1_000_000) -> ImageStore:
    return ImageStore(root, lambda head: any(matches(t, head) for t in TYPES), max_size)


def _name(url: str) -> ImageName:
    name = name_for(url)
    assert name is not None
    return name


def test_a_saved_image_is_found_and_nothing_else_is_left(tmp_path: Path) -> None:
    """save puts the bytes under the name; find returns that name; no temporary file stays."""
    store = _store(tmp_path)
    name = _name("http://h.example/2021/a.png")
    assert store.find(name) is None
    path = store.save(name, PNG, "image/png")
    assert path == "h.example/2021/a.png"
    assert (tmp_path / path).read_bytes() == PNG
    assert store.find(name) == path
    assert not list(tmp_path.rglob(".*feedfix-tmp"))


def test_identical_bytes_are_one_file_with_several_names(tmp_path: Path) -> None:
    """Two URLs, same bytes: two names of one inode, and the hidden index is a third name;
    other bytes get an inode of their own."""
    store = _store(tmp_path)
    a = tmp_path / store.save(_name("http://h.example/a.jpg"), JPEG, "image/jpeg")
    b = tmp_path / store.save(_name("http://mirror.example/x/b.jpg"), JPEG, "image/jpeg")
    c = tmp_path / store.save(_name("http://h.example/c.png"), PNG, "image/png")
    assert a.stat().st_ino == b.stat().st_ino
    assert a.stat().st_nlink == 3
    assert c.stat().st_ino != a.stat().st_ino
    assert len([p for p in (tmp_path / INDEX).rglob("*") if p.is_file()]) == 2


def test_an_index_entry_whose_bytes_changed_is_not_linked(tmp_path: Path) -> None:
    """Someone edited a saved image in place (so its index entry changed too): a later URL
    with the original bytes gets those bytes, not the edited ones."""
    store = _store(tmp_path)
    first = tmp_path / store.save(_name("http://h.example/a.jpg"), JPEG, "image/jpeg")
    with first.open("r+b") as handle:
        handle.seek(len(JPEG) - 8)
        handle.write(b"\0" * 8)
    second = tmp_path / store.save(_name("http://h.example/b.jpg"), JPEG, "image/jpeg")
    assert second.read_bytes() == JPEG


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"", "empty"), (HTML_PAGE, "an HTML page"), (PNG[:4], "cut short"), (PNG * 40, "too big")],
)
def test_find_trusts_only_whole_images(tmp_path: Path, content: bytes, why: str) -> None:
    """A file at the name that is empty, not an image, not even a header, or over max_size
    is not taken for the image."""
    store = _store(tmp_path, max_size=len(PNG) * 20)
    name = _name("http://h.example/a.png")
    target = tmp_path / name.path_for()
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    assert store.find(name) is None, why


def test_a_url_without_a_suffix_is_found_under_its_types_suffix(tmp_path: Path) -> None:
    """``…/640?wx_fmt=png`` was saved as ``640~HASH.png``: found again before any fetch."""
    store = _store(tmp_path)
    name = _name("https://mmbiz.qpic.cn/x/640?wx_fmt=png")
    saved = store.save(name, PNG, "image/png")
    assert saved.endswith(".png")
    assert store.find(name) == saved


def test_a_name_the_disk_refuses_is_an_input_error(tmp_path: Path) -> None:
    """A folder in the way: ``cannot store …``, and no temporary file left."""
    store = _store(tmp_path)
    name = _name("http://h.example/a.png")
    (tmp_path / name.path_for()).mkdir(parents=True)
    with pytest.raises(InputError, match=r"cannot store h\.example/a\.png"):
        store.save(name, PNG, "image/png")
    assert not list(tmp_path.rglob(".*feedfix-tmp"))


def test_identical_bytes_saved_at_once_by_several_threads_are_one_file(tmp_path: Path) -> None:
    """Eight writer threads save the same bytes under eight names at the same moment: still
    one inode with eight names (and the index)."""
    store = _store(tmp_path)
    names = [_name(f"http://h{i}.example/same.jpg") for i in range(8)]
    start = threading.Barrier(len(names))

    def save(name: ImageName) -> str:
        start.wait()
        return store.save(name, JPEG, "image/jpeg")

    with ThreadPoolExecutor(len(names)) as pool:
        paths = list(pool.map(save, names))
    inodes = {(tmp_path / p).stat().st_ino for p in paths}
    assert len(inodes) == 1
    assert (tmp_path / paths[0]).stat().st_nlink == len(names) + 1
