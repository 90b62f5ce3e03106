"""feedparser behind one adapter: the robust reader for feeds the fast path cannot read.

Its sanitizer and relative-URI resolution are switched off: they drop ``data-original``,
``srcset`` and ``referrerpolicy``, and feedfix's own rules do that work with more care.
"""

from __future__ import annotations

import calendar
import html
import io
from datetime import UTC, datetime
from typing import Any

from feedfix.core.errors import InputError
from feedfix.core.html import html_to_text
from feedfix.core.model import Category, Entry, Feed, Link, Media, MediaKind, Person
from feedfix.core.parse.values import whole_number as _int


def _str(value: Any) -> str | None:
    """A field feedparser should have given as text; on broken input it can be a dict."""
    return value if isinstance(value, str) and value else None


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None


def _person(detail: Any) -> Person | None:
    if not detail:
        return None
    name = detail.get("name") or detail.get("email")
    if not name:
        return None
    return Person(name=name, email=detail.get("email") or None, uri=detail.get("href") or None)


def _authors(node: Any) -> tuple[Person, ...]:
    people = [_person(a) for a in node.get("authors") or []]
    found = tuple(p for p in people if p is not None)
    if not found and node.get("author"):
        return (Person(name=str(node["author"])),)
    return found


def _links(node: Any) -> tuple[Link, ...]:
    out: list[Link] = []
    for link in node.get("links") or []:
        href = (link.get("href") or "").strip()
        if href:
            out.append(
                Link(
                    href=href,
                    rel=link.get("rel") or "alternate",
                    type=link.get("type") or None,
                    length=_int(link.get("length")),
                    title=link.get("title") or None,
                )
            )
    link = node.get("link")
    invented = node.get("guidislink") and not str(link).lower().startswith(("http:", "https:"))
    if not any(x.rel == "alternate" for x in out) and link and not invented:
        out.insert(0, Link(href=link))  # not one feedparser made of a tag:/urn: id
    return tuple(out)


def _categories(node: Any) -> tuple[Category, ...]:
    return tuple(
        Category(term=t["term"], scheme=t.get("scheme") or None, label=t.get("label") or None)
        for t in node.get("tags") or []
        if t.get("term")
    )


def _as_html(detail: Any) -> str | None:
    if not detail or not detail.get("value"):
        return None
    value = str(detail["value"])
    kind = str(detail.get("type") or "text/html")
    return value if "html" in kind else html.escape(value, quote=False)


def _as_text(detail: Any, fallback: Any) -> str | None:
    if detail and "html" in str(detail.get("type") or ""):
        return html_to_text(str(detail.get("value") or "")).strip() or None
    return str(fallback).strip() or None if fallback else None


def _media(entry: Any) -> tuple[Media, ...]:
    out: list[Media] = []
    kinds: tuple[tuple[MediaKind, str], ...] = (
        ("content", "media_content"),
        ("thumbnail", "media_thumbnail"),
    )
    for kind, key in kinds:
        for item in entry.get(key) or []:
            url = (item.get("url") or "").strip()
            if url:
                out.append(
                    Media(
                        kind=kind,
                        url=url,
                        type=item.get("type") or None,
                        medium=item.get("medium") or None,
                        width=_int(item.get("width")),
                        height=_int(item.get("height")),
                    )
                )
    return tuple(out)


def _entry(raw: Any) -> Entry:
    contents = raw.get("content") or []
    content = _as_html(contents[0]) if contents else None
    summary = _as_html(raw.get("summary_detail"))
    if content is None:
        content, summary = summary, None
    published = _date(raw.get("published_parsed"))
    return Entry(
        id=raw.get("id") or None,
        title=_as_text(raw.get("title_detail"), raw.get("title")),
        links=_links(raw),
        content=content,
        summary=summary if summary != content else None,
        authors=_authors(raw),
        categories=_categories(raw),
        published=published,
        updated=_date(raw.get("updated_parsed")) or published,
        media=_media(raw),
        lang=_str((raw.get("title_detail") or {}).get("language")),
    )


def parse_with_feedparser(data: bytes, base_url: str | None = None) -> tuple[Feed, bool]:
    """Parse with feedparser; returns the feed and whether it was ill-formed (``bozo``)."""
    import feedparser  # noqa: PLC0415 - slow import, needed only for odd feeds

    headers = {"content-location": base_url} if base_url else None
    try:
        parsed = feedparser.parse(
            io.BytesIO(data),
            sanitize_html=False,
            resolve_relative_uris=False,
            response_headers=headers,
        )
    except Exception as exc:  # feedparser's own bugs on broken input (e.g. int(None))
        raise InputError(
            f"not well-formed, and the lenient parser failed on it too ({exc!r})"
        ) from exc
    meta = parsed.get("feed") or {}
    image = meta.get("image") or {}
    feed = Feed(
        title=_as_text(meta.get("title_detail"), meta.get("title")),
        id=_str(meta.get("id")),
        links=_links(meta),
        subtitle=_as_text(meta.get("subtitle_detail"), meta.get("subtitle")),
        updated=_date(meta.get("updated_parsed")) or _date(meta.get("published_parsed")),
        authors=_authors(meta),
        categories=_categories(meta),
        logo=_str(image.get("href")) or _str(meta.get("logo")),
        icon=_str(meta.get("icon")),
        rights=_str(meta.get("rights")),
        lang=_str(meta.get("language")),
        ttl_minutes=_int(meta.get("ttl")),
        entries=tuple(_entry(e) for e in parsed.get("entries") or []),
    )
    return feed, bool(parsed.get("bozo"))
