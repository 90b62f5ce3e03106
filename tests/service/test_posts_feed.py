"""A Hexo posts folder served as a real feed: its own title, link and id from the config, and
entries that link to the blog's post pages (``files/permalinks.py``); the same keys override
a url feed's title, link and id. The cleaning worker in-process, then ``feedfix serve``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

import upstream as up
from atomcheck import assert_valid_atom
from feedfix.config import FeedConfig, parse_config
from feedfix.core.errors import ConfigError
from feedfix.core.model import Entry, Link
from feedfix.files.permalinks import post_url
from feedfix.service.poll.fetch_types import PostFile
from feedfix.service.poll.worker import Cleaner, Job
from service_helpers import TEST_POLL, Service, run_cli

ATOM = "{http://www.w3.org/2005/Atom}"
HOME = "https://blog.example/"
HELLO = "---\ntitle: Hello\ndate: 2023-05-06 10:20:30\n---\nHello <b>world</b>\n"
OWN = "---\ntitle: Own\ndate: 2023-06-07 08:00:00\npermalink: /notes/own/\n---\nMine\n"
UNDATED = "---\ntitle: Undated\n---\nNo date\n"


def _entry(**fields: object) -> Entry:
    return Entry(published=datetime(2023, 5, 6, 10, 20, 30, tzinfo=UTC), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "name", "url"),
    [
        (None, "hello-world.md", f"{HOME}2023/05/06/hello-world/"),
        (None, "2023/hello world.md", f"{HOME}2023/05/06/2023/hello%20world/"),
        (":year/:i_month/:i_day/:name.html", "2023/hello.md", f"{HOME}2023/5/6/hello.html"),
        ("posts/:title/", "a/b.md", f"{HOME}posts/a/b/"),
        (":year:month:day-:hour:minute:second/", "x.md", f"{HOME}20230506-102030/"),
    ],
)  # fmt: skip
def test_the_post_url_follows_hexos_pattern(pattern: str | None, name: str, url: str) -> None:
    """Hexo's default ``:year/:month/:day/:title/`` and other patterns of its placeholders."""
    assert post_url(HOME, pattern, name, _entry()) == url


def test_a_posts_own_permalink_wins_and_an_undated_post_gets_no_dated_link() -> None:
    """Front matter ``permalink``, a path, is read below the home (with or without its
    leading slash, as Hexo reads it); a full URL stays; no date, no dated URL."""
    for own in ("/notes/own/", "notes/own/"):
        entry = _entry(links=(Link(href=own),))
        assert post_url("https://blog.example", None, "x.md", entry) == f"{HOME}notes/own/"
    elsewhere = _entry(links=(Link(href="https://elsewhere.example/p"),))
    assert post_url(HOME, None, "x.md", elsewhere) == "https://elsewhere.example/p"
    assert post_url(HOME, None, "x.md", Entry()) is None
    assert post_url(HOME, ":name/", "x.md", Entry()) == f"{HOME}x/"


def _clean(feed: FeedConfig, posts: dict[str, str]) -> bytes:
    files = tuple(PostFile(name, text.encode()) for name, text in posts.items())
    job = Job(feed=feed, data=b"", now=0.0, self_url=None, encoding_hint=None, served=None,
              resend=False, posts=files)  # fmt: skip
    made = Cleaner().clean(job)
    assert made.published is not None
    return made.published.identity()


def test_a_served_posts_folder_takes_its_title_link_and_id_from_the_config() -> None:
    """``title``, ``link`` and ``id`` as ``convert --title/--link/--id``; each post links
    to its page below ``link``; the entries' ids do not depend on the link."""
    text = (
        "[[feeds]]\nname = 'blog'\npath = '/srv/blog/source/_posts'\ntitle = 'My Blog'\n"
        f"link = '{HOME}'\nid = 'tag:blog.example,2023:feed'\n"
    )
    (feed,) = parse_config(text).feeds
    root = assert_valid_atom(_clean(feed, {"hello-world.md": HELLO, "own.md": OWN}))
    assert root.findtext(f"{ATOM}title") == "My Blog"
    assert root.findtext(f"{ATOM}id") == "tag:blog.example,2023:feed"
    assert root.find(f"{ATOM}link[@rel='alternate']").get("href") == HOME  # type: ignore[union-attr]
    links = {e.findtext(f"{ATOM}title"): e.find(f"{ATOM}link").get("href")  # type: ignore[union-attr]
             for e in root.iter(f"{ATOM}entry")}  # fmt: skip
    assert links == {"Hello": f"{HOME}2023/05/06/hello-world/", "Own": f"{HOME}notes/own/"}
    (plain,) = parse_config("[[feeds]]\nname = 'blog'\npath = '/srv/blog/source/_posts'\n").feeds
    bare = assert_valid_atom(_clean(plain, {"hello-world.md": HELLO, "own.md": OWN}))
    assert bare.findtext(f"{ATOM}title") == "_posts"  # the folder's name, as before
    ids = sorted(e.findtext(f"{ATOM}id") or "" for e in root.iter(f"{ATOM}entry"))
    assert ids == sorted(e.findtext(f"{ATOM}id") or "" for e in bare.iter(f"{ATOM}entry"))


def test_a_permalink_pattern_and_an_undated_post() -> None:
    """The feed's ``permalink`` (Hexo's setting) makes the URLs; an undated post has none."""
    text = (
        "[[feeds]]\nname = 'blog'\npath = 'posts'\nlink = 'https://blog.example/b'\n"
        "permalink = 'p/:name.html'\n"
    )
    (feed,) = parse_config(text).feeds
    root = assert_valid_atom(_clean(feed, {"x/hello-world.md": HELLO, "undated.md": UNDATED}))
    links = {e.findtext(f"{ATOM}title"): e.find(f"{ATOM}link").get("href")  # type: ignore[union-attr]
             for e in root.iter(f"{ATOM}entry")}  # fmt: skip
    assert links == {"Hello": "https://blog.example/b/p/hello-world.html",
                     "Undated": "https://blog.example/b/p/undated.html"}  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("permalink = ':slug/'\n", "feeds[0].permalink: expected a pattern such as"),
        ("link = 'blog.example'\n", "feeds[0].link: expected an http(s) URL"),
    ],
)
def test_bad_metadata_keys_are_named(extra: str, message: str) -> None:
    """A pattern with an unknown placeholder, a link that is no URL: errors naming the key."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(f"[[feeds]]\nname = 'b'\npath = 'posts'\n{extra}")


def test_a_url_feed_takes_no_permalink_but_its_title_link_and_id_override() -> None:
    """``permalink`` is for a folder of posts; ``title``, ``link`` and ``id`` override a url
    feed's own."""
    with pytest.raises(ConfigError, match=r"feeds\[0\].permalink: only for a path feed"):
        parse_config("[[feeds]]\nname = 'u'\nurl = 'http://127.0.0.1:9/'\npermalink = ':title/'\n")
    text = (
        "[[feeds]]\nname = 'u'\nurl = 'http://127.0.0.1:9/'\ntitle = 'Renamed'\n"
        f"link = '{HOME}'\nid = 'urn:example:u'\n"
    )
    (feed,) = parse_config(text).feeds
    job = Job(feed=feed, data=up.zaker_rss(range(1, 3)), now=0.0, self_url=None,
              encoding_hint=None, served=None, resend=False)  # fmt: skip
    made = Cleaner().clean(job)
    assert made.published is not None
    root = assert_valid_atom(made.published.identity())
    assert root.findtext(f"{ATOM}title") == "Renamed"
    assert root.findtext(f"{ATOM}id") == "urn:example:u"
    alternates = [k.get("href") for k in root.findall(f"{ATOM}link[@rel='alternate']")]
    assert alternates == [HOME]


def test_serve_a_hexo_posts_folder_as_a_blogs_feed(tmp_path: Path) -> None:
    """``feedfix serve`` with a ``source/_posts`` folder, ``title`` and ``link``: the feed is
    the blog's, and adding ``link`` later (SIGHUP) re-publishes with the post URLs at once."""
    posts = tmp_path / "blog" / "source" / "_posts"
    posts.mkdir(parents=True)
    (posts / "hello-world.md").write_text(HELLO, "utf-8")
    feed = {"name": "blog", "path": str(posts), "interval": "1h", "title": "My Blog"}
    with Service(tmp_path / "svc", [feed], poll=TEST_POLL) as svc:
        first = svc.wait_served("blog")
        assert "<title>My Blog</title>" in first.text()
        assert "2023/05/06/hello-world" not in first.text()
        svc.feeds[0]["link"] = HOME
        svc.write_config()
        polls = len(svc.polls("blog"))
        svc.reload()
        svc.wait_for_poll("blog", after=polls, where=lambda r: bool(r.get("changed")))
        assert f'href="{HOME}2023/05/06/hello-world/"' in svc.feed("blog").text()
        svc.stop()


def test_convert_links_a_folders_posts_below_link(tmp_path: Path) -> None:
    """``convert FOLDER --link URL --permalink PATTERN`` links the posts as a served folder
    does; a pattern with an unknown placeholder is a usage error."""
    (tmp_path / "hello-world.md").write_text(HELLO, "utf-8")
    done = run_cli("convert", str(tmp_path), "--link", HOME, "--permalink", ":year/:name.html")
    assert done.returncode == 0, done.stderr
    assert f'href="{HOME}2023/hello-world.html"' in done.stdout
    bad = run_cli("convert", str(tmp_path), "--link", HOME, "--permalink", ":slug/")
    assert bad.returncode == 2 and "--permalink: expected a pattern" in bad.stderr
