"""The hand-off from a poll to the archive: the cleaning worker names the images of the
entries it cleaned anew (and the feed's logo), found where the proxy step wrote them."""

from __future__ import annotations

import asyncio

from feedfix.config import image_proxy, parse_config, with_image_proxy
from feedfix.core.imagesign import proxied
from feedfix.core.model import Entry
from feedfix.service.image_archive import FEED_LEVEL, MAX_IMAGES, entry_paths, signed_paths
from feedfix.service.poll.worker import Cleaned, Job, Worker

NOW = 1_700_000_000.0
BASE = "https://feeds.example.com"
KEY = "k" * 40
CONFIG = f"""
[server]
base_url = "{BASE}"
[images]
proxy = "all"
key = "{KEY}"
[[feeds]]
name = "z"
url = "http://127.0.0.1:9/z"
"""


def _feed() -> bytes:
    items = "".join(
        f"<item><title>{n}</title><guid>urn:item:{n}</guid>"
        f"<pubDate>Mon, 0{n} Aug 2022 10:00:00 GMT</pubDate><description><![CDATA[<p>{n}</p>"
        f'<img src="http://img.example/{n}.jpg" srcset="http://img.example/{n}.jpg 1x, '
        f'http://img.example/{n}@2x.jpg 2x">]]></description></item>'
        for n in (1, 2)
    )
    return (
        '<rss version="2.0"><channel><title>T</title><image><url>http://img.example/logo.png'
        f"</url><title>T</title><link>http://img.example/</link></image>{items}</channel></rss>"
    ).encode()


def _job(made: Cleaned | None = None, image_base: str | None = BASE) -> Job:
    config = parse_config(CONFIG)
    feed = with_image_proxy(config, image_proxy(config)).feeds[0]
    return Job(
        feed=feed, data=_feed(), now=NOW, self_url=None, encoding_hint=None,
        served=made.published if made else None, resend=False,
        archive=dict(made.archive.changed) if made else {}, image_base=image_base,
    )  # fmt: skip


def _path(url: str) -> str:
    return proxied("", KEY.encode(), url)


def test_the_worker_names_the_images_of_entries_cleaned_anew_only() -> None:
    """First poll: every entry's images (src and both srcset candidates) and the logo; a
    poll that cleans nothing anew names only the logo, and still lists every published
    entry; without ``image_base`` (archive off) nothing is looked for."""
    worker = Worker()
    try:
        made = asyncio.run(worker.republish(_job()))
        assert made.images is not None
        assert made.images.images == {
            FEED_LEVEL: (_path("http://img.example/logo.png"),),
            "urn:item:1": (_path("http://img.example/1.jpg"), _path("http://img.example/1@2x.jpg")),
            "urn:item:2": (_path("http://img.example/2.jpg"), _path("http://img.example/2@2x.jpg")),
        }
        assert set(made.images.kept) == {"urn:item:1", "urn:item:2"}
        again = asyncio.run(worker.republish(_job(made)))
        assert again.images is not None and again.cleaned == 0
        assert set(again.images.images) == {FEED_LEVEL}
        assert set(again.images.kept) == {"urn:item:1", "urn:item:2"}
        assert asyncio.run(worker.republish(_job(image_base=None))).images is None
    finally:
        worker.close()


def test_only_this_services_signed_paths_are_found() -> None:
    """Another host's /img/ URL and a truncated one are not images of this proxy."""
    ours = f"{BASE}/img/v1/c2ln/u.aHR0cHM6Ly93ZWliby5jb20v/aHR0cDovL2EvYi5qcGc"
    text = (
        f'<img srcset="{ours} 1x, https://other.example/img/v1/c2ln/n/eA 2x">'
        f'<a href="{BASE}/img/v1/">x</a>{ours}'
    )
    assert signed_paths([text, None], BASE) == (ours.removeprefix(BASE),)


def test_an_entry_names_at_most_max_images() -> None:
    """An entry with more images than ``MAX_IMAGES`` hands over the first ones only."""
    html = "".join(f'<img src="{BASE}{_path(f"http://img.example/{n}.jpg")}">' for n in range(300))
    paths = entry_paths(Entry(id="e", content=html), BASE)
    assert len(paths) == MAX_IMAGES
    assert paths[0] == _path("http://img.example/0.jpg")
