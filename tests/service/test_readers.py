"""Real feed readers read what `feedfix serve` publishes: newsboat, feedparser, sfeed, rsstail
(the Atom and the RSS), and feedsmith (the JSON Feed).

The service runs as a subprocess polling the scripted upstream (tests/upstream.py); each
reader fetches `/feeds/{name}.atom` (`.rss`, `.json`) over HTTP itself, as it would in use
(sfeed, which only parses, is given the body on stdin). Expectations come from the generated
ZAKER fixture: every title and link, and the origin image URLs (no proxy wrapper) in what the
reader stored.

The JSON Feed reader is feedsmith (npm, `tests/js`, run by Node.js's own `fetch`): newsboat,
sfeed and rsstail read no JSON Feed (newsboat #426), feedparser neither, and feedsmith is a
maintained parser of all four syndication formats written apart from feedfix and from
feedparser, in another language, whose JSON Feed reader keeps every member it knows.

newsboat, sfeed (a C parser) and rsstail (libmrss) are Debian packages (`apt-get install
newsboat sfeed rsstail`; scripts/test.sh installs them when it can). Without one its tests
skip, saying so, unless FEEDFIX_REQUIRE_READERS is set (as in CI), where a missing reader is a
failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
from prometheus_client.parser import text_string_to_metric_families

import upstream as up
from atomcheck import WRAPPER_RE, img_srcs
from formats import READ_JSON
from formats import node as reader_node
from service_helpers import Service

WINDOW = range(1, 7)


@dataclass
class Served:
    """The running service and the URL of its one feed, without the format's suffix."""

    svc: Service
    stem: str

    @property
    def url(self) -> str:
        """The Atom's URL."""
        return self.at("atom")

    def at(self, fmt: str) -> str:
        """The feed's URL in format ``fmt``."""
        return f"{self.stem}.{fmt}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A service publishing one ZAKER feed, polled once before the readers come; with its
    ``base_url``, so that each format carries its self link and its links to the others."""
    with up.Upstream() as server:
        server.script("/zaker/channel/99", up.feed(up.zaker_rss(WINDOW)))
        feeds = [{"name": "zaker", "url": server.url("/zaker/channel/99"), "interval": 1}]
        svc = Service(tmp_path_factory.mktemp("readers"), feeds)
        svc.server["base_url"] = svc.base_url  # each format links itself and the others
        try:
            svc.start()
            svc.wait_served("zaker")
            yield Served(svc, f"{svc.base_url}/feeds/zaker")
            svc.stop()
        finally:
            svc.close()


def feed_requests(svc: Service, status: str) -> float:
    """feedfix_http_requests_total for the feed route and one status."""
    text = svc.get("/metrics").body.decode("utf-8")
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "feedfix_http_requests_total"
        and sample.labels.get("route") == "feed"
        and sample.labels.get("status") == status
    )


# ---- newsboat ---------------------------------------------------------------------------------


def reader_executable(name: str) -> str:
    """A reader's executable (skip, or fail under FEEDFIX_REQUIRE_READERS, without it)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {name})"
        if os.environ.get("FEEDFIX_REQUIRE_READERS"):
            pytest.fail(f"{message}; FEEDFIX_REQUIRE_READERS is set")
        pytest.skip(message)
    return path


@pytest.fixture
def newsboat() -> str:
    """The newsboat executable."""
    return reader_executable("newsboat")


class Newsboat:
    """newsboat with a home, urls file, config and cache of its own under ``root``."""

    def __init__(self, executable: str, root: Path, url: str) -> None:
        self.executable = executable
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "urls").write_text(url + "\n", "utf-8")
        (root / "config").write_text("", "utf-8")
        self.cache = root / "cache.db"

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """``newsboat -x COMMAND…`` against this instance's files; asserts exit 0."""
        result = subprocess.run(
            [self.executable, "-u", str(self.root / "urls"), "-c", str(self.cache),
             "-C", str(self.root / "config"), "-x", *command],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(self.root), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
            check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode == 0, f"newsboat {command}: {result.stdout}{result.stderr}"
        return result

    def items(self) -> dict[str, tuple[str, str, str]]:
        """The cached items: title -> (url, feedurl, content)."""
        with sqlite3.connect(self.cache) as db:
            rows = db.execute("SELECT title, url, feedurl, content FROM rss_item").fetchall()
        return {title: (url, feedurl, content) for title, url, feedurl, content in rows}


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_newsboat_reads_every_entry_with_origin_images(
    served: Served, newsboat: str, tmp_path: Path, fmt: str
) -> None:
    """`newsboat -x reload` stores every entry with its title and link, and the images in the
    stored content are the origin URLs, not the proxy-wrapped ones: from the Atom and from
    the RSS alike."""
    reader = Newsboat(newsboat, tmp_path / "newsboat", served.at(fmt))
    reader.run("reload")
    unread = reader.run("print-unread").stdout
    assert unread.split()[0] == str(len(WINDOW)), unread
    items = reader.items()
    expected = up.zaker_items(WINDOW)
    assert set(items) == {item.title for item in expected}
    for item in expected:
        url, feedurl, content = items[item.title]
        assert url == item.link
        assert feedurl == served.at(fmt)
        assert WRAPPER_RE.search(content) is None, f"wrapped URL in {item.title}"
        assert img_srcs(content) == list(item.images), item.title


def test_newsboat_reload_is_answered_304(served: Served, newsboat: str, tmp_path: Path) -> None:
    """Once newsboat sends its stored validators the service answers 304 and no item is
    duplicated. (newsboat stores the ETag only from its second load on, newsboat/newsboat#2734,
    so the third reload is the first conditional one.)"""
    reader = Newsboat(newsboat, tmp_path / "newsboat", served.url)
    reader.run("reload")
    reader.run("reload")
    before = feed_requests(served.svc, "304")
    reader.run("reload")
    assert feed_requests(served.svc, "304") == before + 1
    assert len(reader.items()) == len(WINDOW)


# ---- feedparser -------------------------------------------------------------------------------


def test_feedparser_reads_the_served_feed(served: Served) -> None:
    """feedparser fetches the feed (gzip, as it asks for it) with no bozo, every title and link,
    and the origin image URLs in the content."""
    parsed = feedparser.parse(served.url)
    assert parsed.get("status") == 200
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "ZAKER 测试频道"
    expected = up.zaker_items(WINDOW)
    assert [e.title for e in parsed.entries] == [i.title for i in expected]
    assert [e.link for e in parsed.entries] == [i.link for i in expected]
    for entry, item in zip(parsed.entries, expected, strict=True):
        content = entry.content[0].value
        assert WRAPPER_RE.search(content) is None
        assert img_srcs(content) == list(item.images), item.title


def test_feedparser_conditional_fetch_gets_304(served: Served) -> None:
    """feedparser's own conditional GET with the ETag it was given comes back 304."""
    first = feedparser.parse(served.url)
    again = feedparser.parse(served.url, etag=first.etag)
    assert again.get("status") == 304
    assert not again.entries
    dated = feedparser.parse(served.url, modified=first.modified)
    assert dated.get("status") == 304


# ---- sfeed and rsstail: two more independent parsers ------------------------------------------


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_sfeed_reads_every_entry_with_title_and_link(served: Served, fmt: str) -> None:
    """sfeed (a C parser with its own XML tokenizer) turns the served body, Atom or RSS, into
    one TSV row per entry: every title and link, the id, and the origin image URLs in the
    content."""
    sfeed = reader_executable("sfeed")
    body = served.svc.get(f"/feeds/zaker.{fmt}").body
    result = subprocess.run([sfeed], input=body, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.decode("utf-8").splitlines()]
    expected = up.zaker_items(WINDOW)
    assert [(row[1], row[2]) for row in rows] == [(i.title, i.link) for i in expected]
    for row, item in zip(rows, expected, strict=True):
        assert row[0].isdigit(), f"no timestamp for {item.title}: {row[0]!r}"
        content = row[3].replace("\\n", "\n").replace("\\t", "\t")
        assert row[4] == "html"
        assert WRAPPER_RE.search(content) is None
        assert img_srcs(content) == list(item.images), item.title


def rsstail_items(executable: str, url: str) -> list[tuple[str, str]]:
    """``rsstail -1`` over HTTP: the (title, link) pairs it prints, in order."""
    result = subprocess.run(
        [executable, "-u", url, "-1", "-l", "-n", "100"],
        capture_output=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
    )
    text = result.stdout.decode("utf-8")
    assert result.returncode == 0, f"rsstail: {text}{result.stderr!r}"
    titles = [line[len("Title: ") :] for line in text.splitlines() if line.startswith("Title: ")]
    links = [line[len("Link: ") :] for line in text.splitlines() if line.startswith("Link: ")]
    assert len(titles) == len(links), text
    return list(zip(titles, links, strict=True))


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_rsstail_reads_every_entry_with_title_and_link(served: Served, fmt: str) -> None:
    """rsstail (libmrss, with its own HTTP client) fetches the feed, Atom or RSS, and prints
    every entry's title and link."""
    rsstail = reader_executable("rsstail")
    seen = rsstail_items(rsstail, served.at(fmt))
    expected = up.zaker_items(WINDOW)
    assert sorted(seen) == sorted((i.title, i.link) for i in expected)


def test_feedsmith_reads_the_json_feed_over_http(served: Served) -> None:
    """feedsmith, run by Node.js, fetches the JSON Feed itself (gzip, as it asks) and reads
    every item: title, link, id, date, and the origin image URLs in content_html."""
    node = reader_node()
    result = subprocess.run(
        [node, str(READ_JSON), "--url", served.at("json")],
        capture_output=True, timeout=60, check=False, cwd=READ_JSON.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    parsed = json.loads(result.stdout)
    assert "error" not in parsed, parsed
    assert parsed["_http"]["status"] == 200
    assert parsed["_http"]["content_type"].startswith("application/feed+json")
    assert parsed["title"] == "ZAKER 测试频道"
    assert parsed["feed_url"] == served.at("json")
    expected = up.zaker_items(WINDOW)
    items = parsed["items"]
    assert [(i["title"], i["url"]) for i in items] == [(e.title, e.link) for e in expected]
    for got, item in zip(items, expected, strict=True):
        assert got["id"] and got["date_published"]
        assert WRAPPER_RE.search(got["content_html"]) is None
        assert img_srcs(got["content_html"]) == list(item.images), item.title


def test_newsboat_takes_feedfixs_copy_of_articles_it_stored_from_rsshub(
    newsboat: str, tmp_path: Path
) -> None:
    """README "Readers": newsboat stored two articles from the RSSHub feed itself (lazy,
    wrapped images); its urls file then names feedfix's feed instead. One reload later each
    stored article (same guid) has feedfix's content and the new feed URL: no migration."""
    with up.Upstream() as server:
        server.script("/zaker/channel/7", up.feed(up.zaker_rss(range(1, 3))))
        raw = server.url("/zaker/channel/7")
        with Service(tmp_path / "svc", [{"name": "z", "url": raw}]) as svc:
            svc.wait_served("z")
            reader = Newsboat(newsboat, tmp_path / "newsboat", raw)
            reader.run("reload")
            assert all("data-original" in c for _, _, c in reader.items().values())
            fixed = f"{svc.base_url}/feeds/z.atom"
            (reader.root / "urls").write_text(fixed + "\n", "utf-8")
            reader.run("reload")
            items = reader.items()
            assert set(items) == {item.title for item in up.zaker_items(range(1, 3))}
            for item in up.zaker_items(range(1, 3)):
                _, feedurl, content = items[item.title]
                assert feedurl == fixed and "data-original" not in content
                assert img_srcs(content) == list(item.images), item.title
            svc.stop()
