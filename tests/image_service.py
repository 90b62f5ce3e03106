"""``feedfix serve`` with the image proxy, as the image tests run it: the loopback image origin
in a thread of its own (the service is a subprocess), a ``Service`` whose config has
``[images]``, and readers of what it serves (its image URLs, its metrics); for the archive
tests, a feed with an image in every place the proxy reaches, and the ``world`` fixture
(origin and upstream)."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from image_origin import WEIBO, ImageOrigin, origin_thread
from service_helpers import Response, Service, render_config
from upstream import Upstream, feed

ATOM = "{http://www.w3.org/2005/Atom}"


class ProxyService(Service):
    """A ``Service`` whose config also has ``[images]`` and ``[images.hosts]``."""

    def __init__(
        self,
        tmp: Path,
        feeds: list[dict[str, Any]],
        images: Mapping[str, Any],
        **service: Any,
    ) -> None:
        super().__init__(tmp, feeds, **service)
        self.images = dict(images)
        self.hosts = {"127.0.0.1": {"referer": WEIBO}}
        self.public_url: str | None = None  # base_url, when not this process's own address

    def config_text(self) -> str:
        """The base config, the proxy's base URL, and the images sections."""
        self.server["base_url"] = self.public_url or self.base_url
        text = super().config_text()
        extra = {"images": self.images, "images.hosts": self.hosts}
        return text.replace("[[feeds]]", render_config(extra, []) + "\n[[feeds]]", 1)


def image_urls(atom: bytes) -> list[str]:
    """Every image URL of a served Atom feed: img src and srcset candidates, enclosures."""
    root = etree.fromstring(atom)
    urls: list[str] = []
    for entry in root.iter(f"{ATOM}entry"):
        for link in entry.iter(f"{ATOM}link"):
            if link.get("rel") == "enclosure":
                urls.append(link.get("href") or "")
        for content in entry.iter(f"{ATOM}content", f"{ATOM}summary"):
            html = content.text or ""
            urls += re.findall(r'<img[^>]*?\ssrc="([^"]+)"', html)
            for srcset in re.findall(r'srcset="([^"]+)"', html):
                urls += [part.split()[0] for part in unescape(srcset).split(",")]
    return [unescape(u) for u in urls if u]


def origin_path(proxied: str) -> str:
    """The origin path a proxied URL stands for (read from its last segment)."""
    token = proxied.rsplit("/", 1)[1]
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    return "/" + url.split("/", 3)[3]


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample of a /metrics page (0 when absent)."""
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


# Each item's images (origin paths), and where they sit in it; item 0 is the channel's logo.
IMAGES_OF = {
    0: ("/v/0/a.png",),
    1: ("/v/1/a.png", "/v/2/b.jpg", "/v/3/c.gif"),
    2: ("/v/4/d.webp", "/v/5/e.avif", "/v/6/big.jpg"),
    3: ("/v/7/b.jpg", "/v/8/a.png"),
}


def archive_rss(
    origin: ImageOrigin, items: Sequence[int], images: dict[int, tuple[str, ...]]
) -> bytes:
    """An RSS channel with the given items; their images on ``origin`` (``images``)."""
    u = {n: [origin.url(p) for p in paths] for n, paths in images.items()}
    html = {1: "<p>one</p>", 2: "<p>two</p>", 3: "<p>three</p>"}
    if 1 in u:
        html[1] += f'<img src="{u[1][0]}"><img src="{u[1][1]}" srcset="{u[1][1]} 1x, {u[1][2]} 2x">'
    if 2 in u:
        html[2] += (
            f'<picture><source srcset="{u[2][0]}"><img src="{u[2][1]}"></picture>'
            f'<video poster="{u[2][2]}" src="http://example.org/v.mp4"></video>'
        )
    extra = {}
    if 3 in u:
        extra[3] = (
            f'<enclosure url="{u[3][0]}" type="image/jpeg" length="1"/>'
            f'<media:thumbnail url="{u[3][1]}"/>'
        )
    body = "".join(
        f"<item><title>item {n}</title><guid>http://example.org/{n}</guid>"
        f"<pubDate>Tue, 01 Dec 2026 0{n}:00:00 GMT</pubDate>"
        f"<description><![CDATA[{html[n]}]]></description>{extra.get(n, '')}</item>"
        for n in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Pictures</title>'
        "<link>http://example.org/</link><description>d</description>"
        f"<image><url>{u[0][0]}</url><title>Pictures</title><link>http://example.org/</link>"
        f"</image>{body}</channel></rss>"
    ).encode()


def paths_of(items: Sequence[int], images: dict[int, tuple[str, ...]] = IMAGES_OF) -> set[str]:
    """The origin paths of these items' images (and the logo's)."""
    return {p for n in (0, *items) for p in images[n]}


def served_images(base_url: str, answer: Response) -> list[str]:
    """Every ``/img/`` path (under ``base_url``) in a served feed, each once."""
    base = re.escape(base_url)
    found = re.findall(base + r"(/img/v1/[A-Za-z0-9_.\-/]+)", unescape(answer.text()))
    return sorted(set(found))


@dataclass
class World:
    """The image origin (in a thread with its loop) and the upstream."""

    origin: ImageOrigin
    loop: asyncio.AbstractEventLoop
    upstream: Upstream

    def stop_origin(self) -> None:
        """The origin disappears: connections to it are refused from now on."""
        asyncio.run_coroutine_threadsafe(self.origin.stop(), self.loop).result(10)

    def serve(self, items: Sequence[int], images: dict[int, tuple[str, ...]] = IMAGES_OF) -> None:
        """The upstream's feed: these items."""
        self.upstream.script("/pics.xml", feed(archive_rss(self.origin, items, images)))


@pytest.fixture(name="world")
def archive_world() -> Iterator[World]:
    """The image origin and the upstream (its feed set by each test)."""
    with origin_thread() as (origin, loop), Upstream() as upstream:
        yield World(origin, loop, upstream)
