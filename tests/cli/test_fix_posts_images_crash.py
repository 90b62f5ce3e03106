"""`fix-posts --write --save-images` killed at random points (kill -9, Ctrl-C) and resumed.

At every kill: each post is its old bytes or its finished bytes, every URL a post points home
names an image that is there, whole; the only litter is hidden temporary files. Resumed, the
run ends exactly where an uninterrupted one does, and no image that was on disk at a kill is
ever requested again.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

from atomcheck import REPO, stderr_text
from image_origin import Answer, BlogOrigin, make_image, origin_thread

pytest.importorskip("PIL")

POSTS, PER_POST = 160, 5
PREFIX = "/images/remote"
TEMP_NAME = re.compile(r"^\..+\.feedfix-tmp$")
INDEX = ".by-sha256"
HOME_URL = re.compile(re.escape(PREFIX) + r"/([^\"'\s)]+)")
BASE = make_image("JPEG")


def _serve(origin: BlogOrigin) -> None:
    """Distinct bytes per image (the path after the JPEG), each a little slow."""
    for post in range(POSTS):
        for i in range(PER_POST):
            path = f"/img/{post:03d}/{i}.jpg"
            origin.routes[path] = Answer(BASE + path.encode(), "image/jpeg", delay=0.004)


def _make_posts(root: Path, port: int) -> dict[Path, bytes]:
    originals = {}
    wrapper = "https://cors.zfour.workers.dev/?"
    for post in range(POSTS):
        urls = [f"http://127.0.0.1:{port}/img/{post:03d}/{i}.jpg" for i in range(PER_POST)]
        body = "".join(f'<p>第 {i} 段。</p><img src="{wrapper}{u}">' for i, u in enumerate(urls))
        text = f"---\ntitle: '第 {post} 篇'\nheadimg: '{wrapper}{urls[0]}'\n---\n\n{body}\n"
        path = root / f"{post // 100:02d}" / f"{post:03d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        originals[path] = text.encode()
    return originals


def _command(blog: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "feedfix", "fix-posts", str(blog / "posts"), "--write",
        "--save-images", str(blog / "images"), "--images-url", PREFIX,
        "--config", str(blog / "feedfix.toml"), *extra,
    ]  # fmt: skip


def _blog(root: Path, port: int) -> tuple[Path, dict[Path, bytes]]:
    root.mkdir()
    (root / "feedfix.toml").write_text('[images]\nallow_private = ["127.0.0.1"]\n')
    return root, _make_posts(root / "posts", port)


def _visible(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    }


def _finished_run(tmp_path: Path, origin: BlogOrigin) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """An uninterrupted run: the posts and the images it ends with."""
    blog, _ = _blog(tmp_path / "reference", origin.port)
    result = subprocess.run(_command(blog), cwd=REPO, capture_output=True, check=False)
    assert result.returncode == 0, stderr_text(result)
    return _visible(blog / "posts"), _visible(blog / "images")


def _check_kill_point(
    blog: Path, originals: dict[Path, bytes], finished: dict[str, bytes], seed: int
) -> set[str]:
    """The invariants at a kill; the images on disk (their origin paths)."""
    images = blog / "images"
    on_disk = _visible(images)
    for name, body in on_disk.items():
        assert body == BASE + ("/img/" + name.split("/", 2)[2]).encode(), (seed, name)
    for path, original in originals.items():
        data = path.read_bytes()
        key = str(path.relative_to(blog / "posts"))
        assert data in (original, finished[key]), (seed, f"{key} is partial")
        for url in HOME_URL.findall(data.decode()):
            assert unquote(url) in on_disk, (seed, f"{key} points at a missing {url}")
    for litter in [*images.rglob(".*"), *(blog / "posts").rglob(".*")]:
        if litter.is_file() and INDEX not in litter.parts:
            assert TEMP_NAME.match(litter.name), (seed, litter)
    return {"/img/" + name.split("/", 2)[2] for name in on_disk}


def _wait_for_images(process: subprocess.Popen[bytes], folder: Path, count: int) -> None:
    """Until ``count`` images are in ``folder`` (the run must still be going)."""
    deadline = time.monotonic() + 60
    while len(_visible(folder)) < count:
        assert process.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.005)


def test_killed_at_random_points_then_resumed_ends_as_one_run(tmp_path: Path) -> None:
    """Three kill -9s at random image counts (the first with worker processes), each
    checked, then a run to the end: the same posts and images, byte for byte, as one
    uninterrupted run; no image on disk at a kill was fetched again."""
    seed = random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)  # noqa: S311 - kill points, shown on failure
    origin = BlogOrigin()
    _serve(origin)
    with origin_thread(origin):
        finished_posts, finished_images = _finished_run(tmp_path, origin)
        assert len(finished_images) == POSTS * PER_POST
        origin.hits = Counter()
        blog, originals = _blog(tmp_path / "killed", origin.port)
        hits_when_kept: dict[str, int] = {}  # an image on disk at a kill: its requests then
        total = POSTS * PER_POST
        points = sorted(rng.sample(range(1, total - 50), 3))
        for number, point in enumerate(points):
            extra = ("--jobs", "2") if number == 0 else ()
            process = subprocess.Popen(
                _command(blog, *extra), cwd=REPO,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            _wait_for_images(process, blog / "images", point)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            assert process.returncode == -signal.SIGKILL, (seed, "finished before the kill")
            for kept in _check_kill_point(blog, originals, finished_posts, seed):
                hits_when_kept.setdefault(kept, origin.hits[kept])
        result = subprocess.run(_command(blog), cwd=REPO, capture_output=True, check=False)
        assert result.returncode == 0, (seed, stderr_text(result))
        assert _visible(blog / "posts") == finished_posts, seed
        assert _visible(blog / "images") == finished_images, seed
        again = [p for p, hits in hits_when_kept.items() if origin.hits[p] != hits]
        assert not again, (seed, f"fetched again after being saved: {again[:5]}")


def test_ctrl_c_stops_quietly_cleans_up_and_a_rerun_finishes(tmp_path: Path) -> None:
    """SIGINT to the process group half-way: exit 130, no traceback, no temporary file
    left (Ctrl-C lets the writes in progress finish), the invariants hold; a rerun ends
    as one uninterrupted run would."""
    origin = BlogOrigin()
    _serve(origin)
    with origin_thread(origin):
        finished_posts, finished_images = _finished_run(tmp_path, origin)
        blog, originals = _blog(tmp_path / "interrupted", origin.port)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            process = subprocess.Popen(
                _command(blog), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True,
            )  # fmt: skip
        finally:
            signal.signal(signal.SIGINT, previous)
        assert process.stderr is not None
        _wait_for_images(process, blog / "images", POSTS * PER_POST // 3)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err.decode()
        assert b"Traceback" not in err, err.decode()
        _check_kill_point(blog, originals, finished_posts, 0)
        litter = list(blog.rglob(".*feedfix-tmp"))
        assert not litter, litter
        result = subprocess.run(_command(blog), cwd=REPO, capture_output=True, check=False)
        assert result.returncode == 0, stderr_text(result)
        assert _visible(blog / "posts") == finished_posts
        assert _visible(blog / "images") == finished_images
