"""The pipeline a user would write with the usual packages on default settings.

Usage: ``naive_pipeline.py IN OUT``

feedparser.parse(bytes) -> BeautifulSoup(html, "html.parser") per entry, doing the same
edits as feedfix (unwrap the cors proxy in img src, promote data-original to src, drop the
empty ZAKER trailer divs, drop scripts and on* handlers) -> feedgen -> ``atom_str()``.

Note: feedparser's default HTML sanitizer already strips ``data-original`` and ``onclick``
before BeautifulSoup sees the HTML, so here the origin URL comes from unwrapping ``src``.
The edits are still written out in full, as a user who doesn't know that would.
"""

from __future__ import annotations

import sys
from calendar import timegm
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
from bs4 import BeautifulSoup
from feedgen.feed import FeedGenerator

CORS_PREFIX = "https://cors.zfour.workers.dev/?"
TRAILER_IDS = ("recommend_bottom", "article_bottom")


def clean_html(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    for img in soup.find_all("img"):
        original = img.get("data-original")
        if original:
            img["src"] = original
            del img["data-original"]
        src = img.get("src")
        if isinstance(src, str) and src.startswith(CORS_PREFIX):
            img["src"] = src[len(CORS_PREFIX) :]
    for script in soup.find_all("script"):
        script.decompose()
    for tag in soup.find_all(True):
        for name in [a for a in tag.attrs if a.lower().startswith("on")]:
            del tag[name]
    for div in soup.find_all("div", id=TRAILER_IDS):
        if not div.find(True) and not div.get_text(strip=True):
            div.decompose()
    return str(soup)


def _when(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if parsed is None:
        return None
    return datetime.fromtimestamp(timegm(parsed), tz=UTC)


def convert(data: bytes) -> bytes:
    parsed = feedparser.parse(data)
    feed = parsed.feed
    fg = FeedGenerator()
    fg.id(feed.get("link") or "urn:feedfix:naive")
    fg.title(feed.get("title") or "untitled")
    if feed.get("link"):
        fg.link(href=feed["link"], rel="alternate")
    if feed.get("subtitle"):
        fg.subtitle(feed["subtitle"])
    if feed.get("language"):
        fg.language(feed["language"])
    for entry in parsed.entries:
        fe = fg.add_entry(order="append")
        fe.id(entry.get("id") or entry.get("link"))
        fe.title(entry.get("title") or "")
        if entry.get("link"):
            fe.link(href=entry["link"], rel="alternate")
        if entry.get("author"):
            fe.author(name=entry["author"])
        when = _when(entry)
        if when is not None:
            fe.published(when)
            fe.updated(when)
        html = entry.get("summary") or ""
        if entry.get("content"):
            html = entry["content"][0].get("value", html)
        fe.content(clean_html(html), type="html")
    out: bytes = fg.atom_str(pretty=False)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: naive_pipeline.py IN OUT", file=sys.stderr)
        return 2
    Path(args[1]).write_bytes(convert(Path(args[0]).read_bytes()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
