"""Chromium shows a post mended with `--save-images` from the blog's own host alone: the
image origin is stopped, and every image still loads (naturalWidth > 0)."""

from __future__ import annotations

import asyncio
import functools
import re
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from atomcheck import REPO, stderr_text
from browser import CHROMIUM_FLAGS, find_chromium
from image_origin import BlogOrigin, origin_thread

pytest.importorskip("PIL")
CHROMIUM = find_chromium()
FORMATS = {"a.jpg": "JPEG", "b.png": "PNG", "c.gif": "GIF", "d.webp": "WEBP"}
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """Quiet."""


def _post(port: int) -> str:
    url = f"http://127.0.0.1:{port}/blog"
    wrapped = "https://cors.zfour.workers.dev/?" + url
    return (
        f"---\ntitle: 'Pictures'\nheadimg: '{wrapped}/a.jpg'\n---\n\n<div>"
        f'<img class="lazy" data-original="{url}/b.png" src="{wrapped}/b.png">'
        f'<picture><source srcset="{url}/d.webp" type="image/webp"><img src="{url}/a.jpg">'
        f'</picture><p><img src="{url}/c.gif" srcset="{url}/c.gif 1x, {url}/d.webp 2x"></p>'
        "</div>\n"
    )


def _page(post: str) -> str:
    """The post as its blog would render it: the head image, then the body."""
    match = FRONT_MATTER.match(post)
    assert match is not None
    head = re.search(r"^headimg: '([^']+)'", match.group(1), re.M)
    assert head is not None
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        f"<img id='head' src='{head.group(1)}'>{post[match.end() :]}</body></html>"
    )


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium or Playwright is not installed")
def test_the_mended_post_shows_every_image_from_its_own_host(tmp_path: Path) -> None:
    """Mend with --save-images into the site's images folder, stop the origin, serve the
    site on loopback: Chromium loads every image (naturalWidth > 0), each from the site,
    and asks nothing of any other host."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    site = tmp_path / "public"
    posts = tmp_path / "source" / "_posts"
    posts.mkdir(parents=True)
    config = tmp_path / "feedfix.toml"
    config.write_text('[images]\nallow_private = ["127.0.0.1"]\n')
    origin = BlogOrigin()
    with origin_thread(origin) as (_, loop):
        for name, fmt in FORMATS.items():
            origin.serve(f"/blog/{name}", fmt)
        (posts / "pictures.md").write_text(_post(origin.port), "utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "feedfix", "fix-posts", str(posts), "--write",
             "--save-images", str(site / "images" / "remote"), "--images-url", "/images/remote",
             "--config", str(config)],
            cwd=REPO, capture_output=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, stderr_text(result)
        assert origin.total == len(FORMATS)
        asyncio.run_coroutine_threadsafe(origin.stop(), loop).result(10)  # gone from here on
        (site / "pictures.html").write_text(_page((posts / "pictures.md").read_text("utf-8")))
        handler = functools.partial(_Quiet, directory=str(site))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        own = f"http://127.0.0.1:{server.server_address[1]}"
        requested: list[str] = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
                try:
                    tab = browser.new_page()
                    tab.on("request", lambda request: requested.append(request.url))
                    tab.goto(f"{own}/pictures.html", wait_until="load")
                    images: list[list[Any]] = tab.evaluate(
                        "Array.from(document.images, i => [i.currentSrc, i.naturalWidth])"
                    )
                finally:
                    browser.close()
        finally:
            server.shutdown()
    assert len(images) == 4
    for src, width in images:
        assert src.startswith(f"{own}/images/remote/127.0.0.1_"), src
        assert width > 0, f"{src} did not load"
    assert requested and all(url.startswith(own + "/") for url in requested), requested
