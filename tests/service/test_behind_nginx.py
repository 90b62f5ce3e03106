"""README "Readers": feedfix behind the README's own nginx block, on the default port, as
tt-rss needs it (it refuses feed URLs off ports 80 and 443 and drops the port from image
URLs). The block is read from the README and run as written, on a loopback port: feeds,
signed image URLs without a port, the images behind a Referer-checking origin, 304s, the
index's subscribe URL and a page's POST (its Origin check needs the Host nginx passes on).

nginx is Debian's ``nginx-light`` (scripts/test.sh installs it when it can); without it the
test skips, saying so, unless FEEDFIX_REQUIRE_READERS is set (as in CI).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import urllib.parse
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

import upstream as up
from image_origin import IMAGES, WEIBO, origin_thread
from service_helpers import REPO, Response, Service, free_port, render_config, wait_for

HOST = "feeds.example.com"  # base_url's host: no port, as tt-rss needs
ATOM_IMG = re.compile(r'<img[^>]*?\ssrc="([^"]+)"')


def readme_block() -> str:
    """The README's nginx block (the first ```nginx fence)."""
    text = (REPO / "README.md").read_text("utf-8")
    found = re.search(r"```nginx\n(.*?)```", text, re.S)
    assert found, "README has no ```nginx block"
    return found[1]


class Nginx:
    """nginx in the foreground, one process, its files under ``root``, serving ``block``."""

    def __init__(self, root: Path, block: str, port: int, feedfix_port: int) -> None:
        listen, upstream = "listen 80;", "proxy_pass http://127.0.0.1:8080;"
        assert block.count(listen) == 1 and block.count(upstream) == 1, block
        server = block.replace(listen, f"listen 127.0.0.1:{port};").replace(
            upstream, f"proxy_pass http://127.0.0.1:{feedfix_port};"
        )
        root.mkdir(parents=True, exist_ok=True)
        (root / "nginx.conf").write_text(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            f"pid {root}/nginx.pid;\nerror_log {root}/error.log;\nevents {{}}\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {root}/body;\n"
            f"  proxy_temp_path {root}/proxy;\n{server}}}\n",
            "utf-8",
        )
        self.root, self.port = root, port
        self.proc = subprocess.Popen(
            [executable(), "-p", str(root), "-c", str(root / "nginx.conf"), "-e",
             str(root / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

        def listening() -> bool:
            assert self.proc.poll() is None, (root / "error.log").read_text("utf-8", "replace")
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 10, "nginx to listen")

    def request(
        self, path: str, method: str = "GET", body: str | None = None, **headers: str
    ) -> Response:
        """One request with ``Host: feeds.example.com``, as a reader on port 80 sends it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers={"Host": HOST, **headers})
            answer = conn.getresponse()
            return Response(answer.status, answer.headers, answer.read())
        finally:
            conn.close()

    def stop(self) -> None:
        """End it."""
        self.proc.terminate()
        self.proc.wait(10)


def executable() -> str:
    """Debian's nginx (skip, or fail under FEEDFIX_REQUIRE_READERS, without it)."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        message = "nginx is not installed (apt-get install nginx-light)"
        if os.environ.get("FEEDFIX_REQUIRE_READERS"):
            pytest.fail(f"{message}; FEEDFIX_REQUIRE_READERS is set")
        pytest.skip(message)
    return found


class ProxiedService(Service):
    """A service whose images go through its proxy, public at ``http://feeds.example.com``."""

    def config_text(self) -> str:
        """The base config, with ``[images]`` and a Referer rule for the origin."""
        images = {"proxy": "all", "allow_private": ["127.0.0.1"]}
        hosts = {"127.0.0.1": {"referer": WEIBO}}
        extra = render_config({"images": images, "images.hosts": hosts}, [])
        return super().config_text().replace("[[feeds]]", extra + "\n[[feeds]]", 1)


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[tuple[Nginx, ProxiedService]]:
    """A feed of two images on a Referer-checking origin, feedfix, and nginx in front."""
    executable()
    with origin_thread() as (origin, _loop), up.Upstream() as upstream:
        images = [origin.url("/weibo/a.png"), origin.url("/weibo/b.jpg")]
        body = "".join(f'<p>{n}</p><img src="{up.WRAPPER}{url}">' for n, url in enumerate(images))
        rss = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
            "<link>http://www.myzaker.com/</link><item><title>one</title>"
            "<guid>http://www.myzaker.com/article/1</guid>"
            f"<description><![CDATA[{body}]]></description></item></channel></rss>"
        )
        upstream.script("/pics.xml", up.feed(rss.encode()))
        feeds = [{"name": "pics", "url": upstream.url("/pics.xml")}]
        service = ProxiedService(tmp_path / "svc", feeds, server={"base_url": f"http://{HOST}"})
        with service:
            service.wait_served("pics")
            nginx = Nginx(tmp_path / "nginx", readme_block(), free_port(), service.port)
            try:
                yield nginx, service
            finally:
                nginx.stop()
            service.stop()


def test_the_readmes_nginx_block_serves_feeds_images_and_pages(
    behind_nginx: tuple[Nginx, ProxiedService],
) -> None:
    """Through the README's block: the feed, its image URLs on base_url without a port, each
    image (the origin refuses a foreign Referer: the proxy sends the right one), a 304 for
    the feed's ETag, the index's subscribe URL, and "poll now" accepted from the page."""
    nginx, service = behind_nginx
    answer = nginx.request("/feeds/pics.atom")
    assert answer.status == 200, answer.body[:300]
    urls = [unescape(u) for u in ATOM_IMG.findall(unescape(answer.text()))]
    assert len(urls) == 2 and all(u.startswith(f"http://{HOST}/img/") for u in urls), urls
    for url, name in zip(urls, ("a.png", "b.jpg"), strict=True):
        image = nginx.request(urllib.parse.urlsplit(url).path)
        assert image.status == 200 and image.body == IMAGES[name][0], (url, image.status)
    etag = answer.header("ETag")
    assert etag and nginx.request("/feeds/pics.atom", **{"If-None-Match": etag}).status == 304
    index = nginx.request("/").text()
    assert f"http://{HOST}/feeds/pics.atom" in index
    token = index.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    posted = nginx.request(
        "/feeds/pics/poll", "POST", urllib.parse.urlencode({"csrf": token}),
        **{"Origin": f"http://{HOST}", "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert posted.status == 303, posted.body[:300]
    assert service.get("/healthz").status == 200
