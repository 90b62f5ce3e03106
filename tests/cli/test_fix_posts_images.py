"""`fix-posts --save-images DIR --images-url PREFIX` against a real image origin on loopback.

The command runs in this process (``fix_posts.run``) so that the posts can name real-looking
hosts (``zkres2.myzaker.com``): ``ToOrigin`` sends their connections to the test origin. The
expected posts in tests/data/fix-posts-images/after were written by hand from before/ (each
image URL replaced by its path); the expected images are the bytes the origin served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from atomcheck import DATA, REPO, run_feedfix, stderr_text
from feedfix.cli import fix_posts
from feedfix.cli.parser import build_parser
from feedfix.core.errors import FeedfixError
from image_origin import HTML_PAGE, Answer, BlogOrigin, ToOrigin, make_image, origin_thread
from service_helpers import run_with_terminal_stderr

pytest.importorskip("PIL")

GOLDEN = DATA / "fix-posts-images"
PREFIX = "/images/remote"
HOSTS = ("zkres1.myzaker.com", "zkres2.myzaker.com", "img.example")
# Every image of the golden posts: its path in DIR (host/path), and its format.
GOLDEN_IMAGES = {
    "zkres2.myzaker.com/202203/6221a0b18e9f0921e4_1024.jpg": "JPEG",
    "zkres2.myzaker.com/202203/6221a0b18e9f0921e5_1024.jpg": "JPEG",
    "zkres1.myzaker.com/202203/6221a0b18e9f0921e6_1024.png": "PNG",
    "zkres1.myzaker.com/202203/6221a0b18e9f0921e7_1024.jpg": "JPEG",
    "img.example/covers/park.webp": "WEBP",
    "img.example/gallery/1.gif": "GIF",
    "img.example/gallery/2.jpg": "JPEG",
    "img.example/photos/cat.png": "PNG",
    "img.example/photos/cat-copy.png": "PNG",
    "img.example/photos/dog.jpg": "JPEG",
    "img.example/photos/bird.jpg": "JPEG",
    "img.example/p/hero.webp": "WEBP",
    "img.example/p/hero@2x.webp": "WEBP",
    "img.example/p/hero.jpg": "JPEG",
    "img.example/p/poster.jpg": "JPEG",
    "img.example/gbk/图.jpg": "JPEG",
}


@dataclass
class Result:
    """One run: exit status, stdout, stderr."""

    code: int
    out: bytes
    err: str


@dataclass
class Blog:
    """A copy of the golden posts, the images folder, a config, and the running origin."""

    root: Path
    posts: Path
    images: Path
    config: Path
    origin: BlogOrigin
    loop: asyncio.AbstractEventLoop  # the origin's
    capsys: pytest.CaptureFixture[bytes]

    def run(self, *args: str, write: bool = True, resolver_port: int | None = None) -> Result:
        """``fix-posts POSTS [--write] --save-images DIR --images-url PREFIX --config C ARGS``
        in this process, its errors reported as ``main`` does (exit 2, one line)."""
        argv = ["fix-posts", str(self.posts), *(["--write"] if write else [])]
        argv += ["--save-images", str(self.images), "--images-url", PREFIX]
        argv += ["--config", str(self.config), *args]
        resolver = ToOrigin(HOSTS, resolver_port or self.origin.port)
        self.capsys.readouterr()
        try:
            code = fix_posts.run(_parse(argv), resolver=resolver)
        except FeedfixError as exc:
            print(f"feedfix: {exc}", file=sys.stderr)
            code = 2
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err.decode("utf-8", "replace"))

    def served(self, relative: str) -> bytes:
        """The bytes the origin serves for an image's path in DIR."""
        return self.origin.routes["/" + relative.split("/", 1)[1]].body


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _config(path: Path, extra: str = "", allow: bool = True) -> Path:
    allow_line = 'allow_private = ["127.0.0.1"]\n' if allow else ""
    path.write_text(
        f"[images]\n{allow_line}connect_timeout = 1\ntimeout = 3\n{extra}", encoding="utf-8"
    )
    return path


@pytest.fixture
def blog(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> Iterator[Blog]:
    """The golden posts, served by an origin that has every one of their images (the two
    cat pictures are the same bytes)."""
    origin = BlogOrigin()
    for index, (relative, fmt) in enumerate(GOLDEN_IMAGES.items()):
        seed = 1 if relative.endswith(("cat.png", "cat-copy.png")) else index + 2
        origin.serve("/" + relative.split("/", 1)[1], fmt, seed=seed)
    posts = tmp_path / "source" / "_posts"
    shutil.copytree(GOLDEN / "before", posts)
    with origin_thread(origin) as (_, loop):
        yield Blog(
            tmp_path,
            posts,
            tmp_path / "source" / "images" / "remote",
            _config(tmp_path / "feedfix.toml"),
            origin,
            loop,
            capsysbinary,
        )


def _files(root: Path) -> dict[str, bytes]:
    """Every visible file below ``root`` by its relative path (the hidden index left out)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_write_gives_the_golden_posts_and_the_images_byte_for_byte(blog: Blog) -> None:
    """Every post becomes its after/ twin exactly (encodings, BOM, CRLF, links and code
    left alone), every image is in DIR under its name with the origin's bytes, each was
    fetched once, and the two identical pictures are one file with two names."""
    result = blog.run()
    assert result.code == 0, result.err
    assert result.out == b""
    assert _files(blog.posts) == _files(GOLDEN / "after")
    saved = _files(blog.images)
    assert sorted(saved) == sorted(GOLDEN_IMAGES)
    for relative, body in saved.items():
        assert body == blog.served(relative), relative
    assert all(n == 1 for n in blog.origin.hits.values()), blog.origin.hits
    assert blog.origin.total == len(GOLDEN_IMAGES)
    cat, twin = (blog.images / "img.example/photos" / n for n in ("cat.png", "cat-copy.png"))
    assert cat.stat().st_ino == twin.stat().st_ino
    assert "16 saved" in result.err and "0 already present" in result.err


def test_a_second_run_changes_nothing_and_fetches_nothing(blog: Blog) -> None:
    """Run again: exit 0, no byte or mtime moves in the posts or the images, no request
    reaches the origin; the JSON counts say every image was already present."""
    assert blog.run().code == 0
    before, hits = _snapshot(blog.root), blog.origin.total
    result = blog.run("--explain=json")
    assert result.code == 0, result.err
    assert _snapshot(blog.root) == before
    assert blog.origin.total == hits
    counts = json.loads(result.err.strip().splitlines()[-1])
    assert counts["changed"] == 0
    assert counts["images"] == {
        "saved": 0, "present": 0, "failed": 0, "failed_by_reason": {}, "bytes": 0,
        "to_download": 0,
    }  # fmt: skip
    # (the posts point home already: nothing of theirs is a remote image any more)


def test_a_rerun_over_unmended_posts_uses_the_images_on_disk(blog: Blog) -> None:
    """The images are home but the posts were put back as they were: a rerun points them
    home again without a single request, and counts the images as already present."""
    assert blog.run().code == 0
    hits = blog.origin.total
    shutil.rmtree(blog.posts)
    shutil.copytree(GOLDEN / "before", blog.posts)
    result = blog.run("--explain=json")
    assert result.code == 0, result.err
    assert blog.origin.total == hits
    assert _files(blog.posts) == _files(GOLDEN / "after")
    counts = json.loads(result.err.strip().splitlines()[-1])["images"]
    assert counts["saved"] == 0 and counts["present"] == len(GOLDEN_IMAGES)


def test_dry_run_fetches_nothing_and_lists_what_it_would_download(blog: Blog) -> None:
    """Without --write: no request, no file touched, DIR not even made; the diff unwraps
    only; every image to fetch is listed; exit 1."""
    before = _snapshot(blog.root)
    result = blog.run(write=False)
    assert result.code == 1, result.err
    assert blog.origin.total == 0
    assert _snapshot(blog.root) == before
    assert not blog.images.exists()
    diff = result.out.decode("utf-8", "replace")
    assert PREFIX not in diff
    assert "+headimg: 'http://zkres2.myzaker.com/202203/6221a0b18e9f0921e4_1024.jpg'" in diff
    listed = [line for line in result.err.splitlines() if "would download" in line]
    assert len(listed) == len(GOLDEN_IMAGES)
    assert "feedfix: would download http://img.example/photos/dog.jpg" in listed


def test_dry_run_points_home_the_images_already_there(blog: Blog) -> None:
    """With one image already in DIR, the dry run's diff points its URLs home (and only
    its), and the other images are listed as to download."""
    head = "zkres2.myzaker.com/202203/6221a0b18e9f0921e4_1024.jpg"
    (blog.images / head).parent.mkdir(parents=True)
    (blog.images / head).write_bytes(blog.served(head))
    result = blog.run(write=False)
    assert result.code == 1
    assert blog.origin.total == 0
    diff = result.out.decode("utf-8", "replace")
    added = [line for line in diff.splitlines() if line.startswith("+") and PREFIX in line]
    assert "+headimg: '/images/remote/" + head + "'" in added
    assert all(head in line for line in added), added
    assert sum("would download" in line for line in result.err.splitlines()) == 15


def _failing_post(blog: Blog) -> str:
    """A post whose images fail in every way the origin can, beside two that work."""
    o = blog.origin
    big = make_image("JPEG", (300, 300), noise=True)
    o.serve("/ok/good.jpg", "JPEG")
    o.serve("/ok/later.png", "PNG", fail=1, status=429, retry_after="1")
    o.routes["/bad/gone.jpg"] = Answer(HTML_PAGE, "text/html", fail=99, status=404)
    o.routes["/bad/broken.jpg"] = Answer(HTML_PAGE, "text/html", fail=99, status=500)
    o.routes["/bad/page.jpg"] = Answer(HTML_PAGE, "image/jpeg")
    o.routes["/bad/cut.jpg"] = Answer(make_image("JPEG"), "image/jpeg", drop=True)
    o.routes["/bad/huge.jpg"] = Answer(big, "image/jpeg")
    o.routes["/bad/busy.jpg"] = Answer(b"", "image/jpeg", fail=99, status=503, retry_after="3600")
    images = [f"http://img.example{p}" for p in (
        "/ok/good.jpg", "/ok/later.png", "/bad/gone.jpg", "/bad/broken.jpg", "/bad/page.jpg",
        "/bad/cut.jpg", "/bad/huge.jpg", "/bad/busy.jpg",
    )]  # fmt: skip
    body = "".join(f'<p><img src="https://cors.zfour.workers.dev/?{u}"></p>\n' for u in images)
    shutil.rmtree(blog.posts)
    blog.posts.mkdir()
    (blog.posts / "failing.md").write_text(f"---\ntitle: failing\n---\n\n{body}", "utf-8")
    return body


def test_images_that_cannot_be_saved_keep_their_url_and_are_listed(blog: Blog) -> None:
    """404, a 500 that stays, an HTML page sent as image/jpeg, a connection dropped half-way,
    an image over max_size, a 503 asking for an hour: each URL kept (unwrapped), listed with
    its reason, counted by reason, nothing of it in DIR; the 429 is retried after its
    Retry-After and saved; exit 3."""
    blog.config = _config(blog.root / "small.toml", "max_size = 20000\n")
    _failing_post(blog)
    started = time.monotonic()
    result = blog.run("--retries", "1", "--explain=json")
    elapsed = time.monotonic() - started
    assert result.code == 3, result.err
    text = (blog.posts / "failing.md").read_text("utf-8")
    assert "cors.zfour.workers.dev" not in text
    assert f'src="{PREFIX}/img.example/ok/good.jpg"' in text
    assert f'src="{PREFIX}/img.example/ok/later.png"' in text
    for name in ("gone", "broken", "page", "cut", "huge", "busy"):
        assert f'src="http://img.example/bad/{name}.jpg"' in text
    assert sorted(_files(blog.images)) == ["img.example/ok/good.jpg", "img.example/ok/later.png"]
    assert not list(blog.images.rglob("*feedfix-tmp"))
    left = {line for line in result.err.splitlines() if "image left" in line}
    assert (
        "feedfix: image left, URL kept: http://img.example/bad/gone.jpg: origin answered 404"
        in left
    )
    assert any("bad/page.jpg: body is not image/jpeg" in line for line in left)
    assert len(left) == 6
    hits = blog.origin.hits
    assert hits["/ok/later.png"] == 2 and elapsed >= 1.0, "the 429 waited for Retry-After"
    assert hits["/bad/broken.jpg"] == 2 and hits["/bad/cut.jpg"] == 2, "5xx and drops retried"
    assert hits["/bad/gone.jpg"] == 1 and hits["/bad/page.jpg"] == 1, "no retry for these"
    assert hits["/bad/busy.jpg"] == 1, "an hour's Retry-After is not waited for"
    counts = json.loads(next(line for line in result.err.splitlines() if line.startswith("{")))
    assert counts["images"]["failed_by_reason"] == {
        "HTTP 404": 1, "HTTP 500": 1, "HTTP 503": 1, "not an image": 1,
        "connection failed": 1, "too large": 1,
    }  # fmt: skip
    assert counts["images"]["saved"] == 2


def test_the_host_rules_referer_and_the_user_agent_are_sent(blog: Blog) -> None:
    """An origin that wants a Referer gets the one ``[images.hosts]`` names, and the
    configured User-Agent; without the rule it answers 403 and the image is left."""
    blog.origin.serve("/guarded/a.jpg", referer="https://blog.example/")
    shutil.rmtree(blog.posts)
    blog.posts.mkdir()
    post = blog.posts / "guarded.md"
    post.write_text("---\nheadimg: http://img.example/guarded/a.jpg\n---\n", "utf-8")
    without = blog.run()
    assert without.code == 3
    assert "origin answered 403" in without.err
    blog.config = _config(
        blog.root / "hosts.toml",
        'user_agent = "feedfix-test/1"\n[images.hosts]\n'
        '"*.example" = { referer = "https://blog.example/" }\n',
    )
    result = blog.run()
    assert result.code == 0, result.err
    assert post.read_text("utf-8") == f"---\nheadimg: {PREFIX}/img.example/guarded/a.jpg\n---\n"
    headers = blog.origin.headers["/guarded/a.jpg"]
    assert headers["Referer"] == "https://blog.example/"
    assert headers["User-Agent"] == "feedfix-test/1"


def test_internal_addresses_are_refused_unless_allowed(blog: Blog) -> None:
    """Without ``allow_private`` the names resolve to 127.0.0.1 and are refused before any
    connection: nothing reaches the origin, every image is left, exit 3."""
    blog.config = _config(blog.root / "strict.toml", allow=False)
    before = _files(blog.posts)
    result = blog.run("--explain=json")
    assert result.code == 3
    assert blog.origin.total == 0
    counts = json.loads(next(line for line in result.err.splitlines() if line.startswith("{")))
    assert counts["images"]["failed_by_reason"] == {"address refused": len(GOLDEN_IMAGES)}
    assert _files(blog.posts) != before, "the posts are still unwrapped"
    assert PREFIX not in "".join(p.decode("utf-8", "replace") for p in _files(blog.posts).values())


def test_an_origin_that_disappears_leaves_urls_and_a_rerun_finishes(blog: Blog) -> None:
    """The origin stops: every image is left (connection failed), the posts keep origin
    URLs and point at nothing that is not there. It comes back (elsewhere): a rerun fetches
    them and gives the golden posts."""
    asyncio.run_coroutine_threadsafe(blog.origin.stop(), blog.loop).result(10)
    result = blog.run("--retries", "0")
    assert result.code == 3, result.err
    assert not _files(blog.images) if blog.images.exists() else True
    assert PREFIX not in (blog.posts / "zaker.md").read_text("utf-8")
    back = BlogOrigin()
    back.routes = blog.origin.routes
    with origin_thread(back):
        result = blog.run(resolver_port=back.port)
    assert result.code == 0, result.err
    assert _files(blog.posts) == _files(GOLDEN / "after")
    assert back.total == len(GOLDEN_IMAGES)


HOSTILE_PATHS = [
    "/../../../../outside.jpg",
    "/a/%2e%2e/%2e%2e/%2e%2e/outside2.jpg",
    "/..%2f..%2f..%2foutside3.jpg",
    "/%2F%2Ftmp%2Foutside4.png",
    "/a%00b.jpg",
    "/a%5C..%5C..%5Coutside5.jpg",
    "/" + "x" * 1500 + ".jpg",
    "/CON.jpg",
    "/aux",
    "/.hidden/x.jpg",
    "/q.jpg?file=../../outside6.jpg",
]


def test_hostile_urls_are_saved_inside_dir_and_nowhere_else(blog: Blog) -> None:
    """URLs made to escape DIR (``..``, encoded slashes and backslashes, NUL, a very long
    name, Windows-reserved names, a hidden folder, a query naming a path) are each saved
    below DIR, nothing else in the tree changes, and each post URL names its file."""
    blog.origin.anything = Answer(make_image("PNG"), "image/png")
    shutil.rmtree(blog.posts)
    blog.posts.mkdir()
    body = "".join(f'<img src="http://img.example{p}">\n' for p in HOSTILE_PATHS)
    (blog.posts / "hostile.md").write_text(f"---\ntitle: h\n---\n\n{body}", "utf-8")
    blog.images.mkdir(parents=True)
    outside = {p for p in blog.root.rglob("*") if blog.images not in p.parents}
    result = blog.run()
    assert result.code == 0, result.err
    after = {p for p in blog.root.rglob("*") if blog.images not in p.parents}
    assert after == outside, "only DIR got new entries"
    real = blog.images.resolve()
    for path in blog.images.rglob("*"):
        assert real in path.resolve().parents
    text = (blog.posts / "hostile.md").read_text("utf-8")
    urls = [line[len('<img src="') : -2] for line in text.splitlines() if line.startswith("<img")]
    assert len(urls) == len(HOSTILE_PATHS)
    assert len(set(urls)) == len(urls)
    for url in urls:
        assert url.startswith(PREFIX + "/img.example/"), url
        assert (blog.images / unquote(url[len(PREFIX) + 1 :])).is_file(), url


def test_fetches_at_once_from_one_host_stay_within_per_host(blog: Blog) -> None:
    """Twelve slow images of one host with --per-host 2: never more than two requests at
    the origin at once, and two are reached."""
    shutil.rmtree(blog.posts)
    blog.posts.mkdir()
    for i in range(12):
        blog.origin.serve(f"/slow/{i}.jpg", delay=0.2)
    body = "".join(f'<img src="http://img.example/slow/{i}.jpg">' for i in range(12))
    (blog.posts / "slow.md").write_text(f"---\ntitle: s\n---\n\n{body}\n", "utf-8")
    result = blog.run("--per-host", "2")
    assert result.code == 0, result.err
    assert blog.origin.peak == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--save-images", "img"], "--save-images needs --images-url PREFIX"),
        (["--images-url", "/img"], "--images-url needs --save-images DIR"),
        (["--save-images", "img", "--images-url", "images"], "--images-url 'images'"),
        (["--save-images", "img", "--images-url", "/a b"], "--images-url '/a b'"),
        (["--save-images", "img", "--images-url", "/i", "--per-host", "0"], "--per-host 0"),
        (["--per-host", "2"], "--per-host needs --save-images"),
    ],
)
def test_bad_image_options_are_one_line_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """Half of the pair, a prefix that is not a path or URL or would not stand in a post,
    a limit out of range: exit 2, one line naming the option, nothing fetched or written."""
    post = tmp_path / "p.md"
    post.write_text("---\nheadimg: http://img.example/a.jpg\n---\n", "utf-8")
    result = run_feedfix("fix-posts", post, "--write", *args)
    err = stderr_text(result)
    assert result.returncode == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "img").exists()


def test_help_documents_the_image_options() -> None:
    """``fix-posts --help`` names every image option and exit 3."""
    result = subprocess.run(
        [sys.executable, "-m", "feedfix", "fix-posts", "--help"],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    for option in ("--save-images", "--images-url", "--per-host", "--max-fetches", "--retries"):
        assert option in result.stdout
    assert "Exit 3" in result.stdout


def test_a_terminal_shows_posts_images_bytes_and_failures(tmp_path: Path) -> None:
    """With stderr on a terminal, even a small run draws its bar: posts done, images saved
    and their size, failures."""
    origin = BlogOrigin()
    with origin_thread(origin):
        for i in range(3):
            origin.serve(f"/t/{i}.png", "PNG", seed=i + 1)
        base = f"http://127.0.0.1:{origin.port}/t"
        posts = tmp_path / "posts"
        posts.mkdir()
        for n, names in enumerate((["0.png", "1.png"], ["2.png", "gone.png"])):
            body = "".join(f'<img src="{base}/{name}">' for name in names)
            (posts / f"{n}.md").write_text(f"---\ntitle: {n}\n---\n\n{body}\n", "utf-8")
        config = _config(tmp_path / "feedfix.toml")
        code, drawn = run_with_terminal_stderr(
            [
                "fix-posts",
                str(posts),
                "--write",
                "--save-images",
                str(tmp_path / "img"),
                "--images-url",
                PREFIX,
                "--config",
                str(config),
            ],
            cwd=REPO,
        )
    assert code == 3, drawn.decode()
    assert re.search(rb"fix-posts \[#{30}\] 2/2 3 images \([\d.]+ KB\), 1 failed", drawn), drawn
