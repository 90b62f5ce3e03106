"""A feed whose source is a local file or a folder of posts (``path`` instead of ``url``).

First ``read_local`` itself on real files (the stat validator, 304s, what counts as a change,
the limits, the failures), then ``feedfix serve`` as a subprocess serving a file and a folder:
cleaned, with ETag/304, a change picked up at the next poll, and a file that disappears
keeping its last good copy served, marked stale, with /healthz and the index saying why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import upstream as up
from atomcheck import assert_valid_atom, entries
from feedfix.service.poll.fetch_types import FetchRequest, SourceUnreadable, TooLarge
from feedfix.service.poll.local import read_local
from service_helpers import REPO, TEST_POLL, Service, wait_for

ATOM = "http://www.w3.org/2005/Atom"

POSTS = Path(__file__).resolve().parents[1] / "data" / "posts"
FAST = {"interval": "1s"}  # a local source may be polled often


def _request(etag: str | None = None, max_size: int = 10_000_000) -> FetchRequest:
    return FetchRequest(url="", etag=etag, max_size=max_size)


# ---- read_local -----------------------------------------------------------------------------


def test_a_file_is_read_then_answered_304_while_its_stat_holds(tmp_path: Path) -> None:
    """A first read gives the bytes and a validator; asked with it again, a 304, no body."""
    source = tmp_path / "feed.xml"
    source.write_bytes(up.zaker_rss(range(1, 4)))
    first = read_local(str(source), _request())
    assert (first.status, first.body) == (200, source.read_bytes())
    assert first.etag and first.last_modified and first.posts is None
    again = read_local(str(source), _request(first.etag))
    assert (again.status, again.body, again.etag) == (304, b"", first.etag)


def test_a_rewrite_of_the_same_size_or_a_rename_over_it_is_a_change(tmp_path: Path) -> None:
    """The mtime, the size and the inode all count: a cron job's in-place rewrite of equal
    length and an atomic rename of a new file over the old one are both seen."""
    source = tmp_path / "feed.xml"
    source.write_bytes(b"A" * 100)
    etag = read_local(str(source), _request()).etag
    source.write_bytes(b"B" * 100)
    os.utime(source, ns=(1_000_000_000, 1_000_000_000))  # same size, another mtime
    rewritten = read_local(str(source), _request(etag))
    assert rewritten.status == 200 and rewritten.body == b"B" * 100
    replacement = tmp_path / "new.xml"
    replacement.write_bytes(b"C" * 100)
    os.utime(replacement, ns=(1_000_000_000, 1_000_000_000))  # same size and mtime: inode
    replacement.replace(source)
    renamed = read_local(str(source), _request(rewritten.etag))
    assert renamed.status == 200 and renamed.body == b"C" * 100


def test_a_folder_gives_its_post_files_and_sees_a_new_post(tmp_path: Path) -> None:
    """A folder's post files (.md, .html, …, recursively, hidden ones left out) are read;
    an image beside them is not; a post added changes the validator."""
    folder = tmp_path / "_posts"
    shutil.copytree(POSTS, folder)
    (folder / "cover.png").write_bytes(b"\x89PNG" + b"\0" * 100)
    (folder / ".draft.md").write_text("---\ntitle: hidden\n---\nx\n", "utf-8")
    first = read_local(str(folder), _request())
    assert first.status == 200 and first.body == b"" and first.posts is not None
    assert first.size == sum(len(p.data) for p in first.posts) > 0  # counted as read
    names = sorted(p.name for p in first.posts)
    assert "cover.png" not in names and ".draft.md" not in names
    assert "2023/edge-network.md" in names and "notes/README.txt" in names
    assert read_local(str(folder), _request(first.etag)).status == 304
    (folder / "new-post.md").write_text("---\ntitle: New\ndate: 2024-01-01\n---\nhi\n", "utf-8")
    after = read_local(str(folder), _request(first.etag))
    assert after.status == 200 and after.etag != first.etag
    assert after.posts is not None and len(after.posts) == len(first.posts) + 1


def test_a_missing_path_an_empty_folder_and_the_size_cap_are_failures(tmp_path: Path) -> None:
    """Each is a FetchError naming the path, so the poller keeps the last good copy."""
    missing = tmp_path / "gone.xml"
    with pytest.raises(SourceUnreadable, match=rf"^{missing}: no such file or directory$"):
        read_local(str(missing), _request())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceUnreadable, match=rf"^{empty}: no post files in the folder"):
        read_local(str(empty), _request())
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(TooLarge, match=r"2,000 bytes, over the 1,000-byte cap"):
        read_local(str(big), _request(max_size=1000))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file_is_a_failure(tmp_path: Path) -> None:
    """A file feedfix may not read is a failing source that says so."""
    source = tmp_path / "feed.xml"
    source.write_bytes(b"<rss/>")
    source.chmod(0)
    with pytest.raises(SourceUnreadable, match="permission denied"):
        read_local(str(source), _request())


# ---- served ---------------------------------------------------------------------------------


def test_a_local_file_is_served_clean_and_a_change_is_picked_up(tmp_path: Path) -> None:
    """A feed file (given relative to the config file's folder) is served cleaned, with
    304s; rewriting it serves the new entries at the next poll; deleting it keeps the last
    good copy served, marked stale, and /healthz and the index say why and what to do."""
    folder = tmp_path / "service"
    folder.mkdir()
    source = folder / "feeds" / "channel.xml"
    source.parent.mkdir()
    source.write_bytes(up.zaker_rss(range(1, 4)))
    with Service(folder, [{"name": "local", "path": "feeds/channel.xml", **FAST}]) as svc:
        first = svc.wait_served("local")
        root = assert_valid_atom(first.body)
        assert [e.title for e in entries(root)] == up.titles(range(3, 0, -1))
        assert "cors.zfour.workers.dev" not in first.text() and "onclick" not in first.text()
        etag = first.header("ETag")
        assert etag and svc.feed("local", {"If-None-Match": etag}).status == 304
        polled = len(svc.polls("local"))
        svc.wait_for_poll("local", after=polled, status="not_modified")

        source.write_bytes(up.zaker_rss(range(1, 6)))
        newer = wait_for(
            lambda: r if (r := svc.feed("local")).header("ETag") != etag else None,
            10,
            "the new copy",
        )
        assert len(entries(assert_valid_atom(newer.body))) == 5

        source.unlink()
        row = wait_for(
            lambda: (r := svc.health_row("local"))["stale"] and r, 10, "the feed to go stale"
        )
        assert row["ok"] is False and row["last_error"] == f"{source}: no such file or directory"
        stale = svc.feed("local")
        assert stale.status == 200 and stale.body == newer.body
        assert stale.header("X-Feedfix-Stale")
        index = svc.get("/").text()
        assert "serving the copy from " in index
        assert f"source unreadable: create {source}" in index
        assert "change <code>path</code>" in index  # the advice's `path`, shown as code
        svc.stop()


@pytest.mark.parametrize("cleaner", ["thread", "process"])
def test_a_folder_of_posts_is_served_as_one_feed(tmp_path: Path, cleaner: str) -> None:
    """A Hexo-style folder is served as one clean feed titled with the folder's name,
    newest post first, with the posts' wrapped images unwrapped, whichever the cleaner (the
    post files travel to a worker process as they are)."""
    folder = tmp_path / "blog" / "_posts"
    shutil.copytree(POSTS, folder)
    feeds = [{"name": "blog", "path": str(folder), **FAST}]
    with Service(tmp_path / "service", feeds, poll={**TEST_POLL, "cleaner": cleaner}) as svc:
        served = svc.wait_served("blog")
        root = assert_valid_atom(served.body)
        titles = [e.title for e in entries(root)]
        assert "边缘节点组网的三种做法" in titles and len(titles) >= 2
        assert "_posts" in served.text()  # the feed's title
        assert "cors.zfour.workers.dev" not in served.text()
        assert "images.weserv.nl" not in served.text()
        feed_id = root.findtext(f"{{{ATOM}}}id")
        assert feed_id is not None and feed_id.startswith("urn:feedfix:folder:")
        (folder / "new.md").write_text(
            "---\ntitle: 新的一篇\ndate: 2026-11-30\n---\n<p>x</p>\n", encoding="utf-8"
        )
        wait_for(lambda: "新的一篇" in svc.feed("blog").text(), 15, "the new post")
        again = assert_valid_atom(svc.feed("blog").body)
        assert again.findtext(f"{{{ATOM}}}id") == feed_id  # the same feed to readers
        svc.stop()


def test_a_local_sources_own_ttl_does_not_lengthen_its_interval(tmp_path: Path) -> None:
    """The bundled example says ``<ttl>5</ttl>`` (minutes); as a local file it is still
    checked at its own interval, not every five minutes."""
    example = REPO / "feedfix" / "examples" / "zaker-channel.rss.xml"
    assert b"<ttl>5</ttl>" in example.read_bytes()
    with Service(tmp_path, [{"name": "ex", "path": str(example), **FAST}]) as svc:
        record = svc.wait_for_poll("ex", status="ok")
        assert record["next_in_s"] <= 1.5
        svc.stop()
