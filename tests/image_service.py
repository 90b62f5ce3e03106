"""``feedfix serve`` with the image proxy, as the image tests run it: the loopback image origin
in a thread of its own (the service is a subprocess), a ``Service`` whose config has
``[images]``, and readers of what it serves (its image URLs, its metrics)."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from html import unescape
from pathlib import Path
from typing import Any

from lxml import etree

from image_origin import WEIBO, ImageOrigin
from service_helpers import Service, render_config

ATOM = "{http://www.w3.org/2005/Atom}"


@contextmanager
def origin_thread() -> Iterator[tuple[ImageOrigin, asyncio.AbstractEventLoop]]:
    """The image origin in a thread with its own event loop (the service is a subprocess)."""
    loop = asyncio.new_event_loop()
    origin = ImageOrigin()
    thread = threading.Thread(target=loop.run_forever, name="image-origin", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(origin.start(), loop).result(10)
    try:
        yield origin, loop
    finally:
        asyncio.run_coroutine_threadsafe(origin.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class ProxyService(Service):
    """A ``Service`` whose config also has ``[images]`` and ``[images.hosts]``."""

    def __init__(self, tmp: Path, feeds: list[dict[str, Any]], images: Mapping[str, Any]) -> None:
        super().__init__(tmp, feeds)
        self.images = dict(images)
        self.hosts = {"127.0.0.1": {"referer": WEIBO}}

    def config_text(self) -> str:
        """The base config, the proxy's base URL, and the images sections."""
        self.server["base_url"] = self.base_url
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
