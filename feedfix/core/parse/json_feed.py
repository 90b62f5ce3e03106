"""JSON Feed 1.0 and 1.1 in: the feeds people publish, and feedfix's own ``.json``.

Read as the spec has it: ``content_html`` is the content (else ``content_text``, escaped as
HTML), ``summary`` plain text, ``url`` the entry's link and ``external_url`` a ``related``
one, ``image`` a Media RSS thumbnail, ``attachments`` enclosures, 1.1's ``authors`` (else
1.0's ``author``), ``tags`` categories, ``date_published``/``date_modified`` RFC 3339 (other
shapes are read as any feed date is). A member of the wrong type is left out with a warning
that names the item; strings lose the characters XML cannot carry, as XML feeds do.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from feedfix.core.errors import InputError
from feedfix.core.html import xml_chars
from feedfix.core.model import Category, Entry, Feed, Link, Media, Person
from feedfix.core.parse.dates import parse_date
from feedfix.core.parse.fields import label, text_as_html

VERSION_PREFIX = "https://jsonfeed.org/version/"


def looks_like_json(head: str) -> bool:
    """Whether the input's first character (after any whitespace) opens a JSON object."""
    return head.lstrip()[:1] == "{"


def _string(value: object) -> str | None:
    """A string member (a number stands for its digits, as 1.0's numeric ids do)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = xml_chars(value).strip()
    return value or None


def parse_json_feed(text: str, tz: tzinfo) -> Feed:
    """A JSON Feed document as a feed. Raises ``InputError`` for JSON that is not one."""
    import json  # noqa: PLC0415 - only JSON input needs it: 1 ms of every other start

    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not well-formed JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise InputError("JSON that is not an object, not a feed")
    version = document.get("version")
    if not isinstance(version, str) or not version.startswith(VERSION_PREFIX):
        raise InputError("a JSON document that is not a JSON Feed (no jsonfeed.org version)")
    warnings: list[str] = []
    items = document.get("items")
    if not isinstance(items, list):
        if items is not None:
            warnings.append("the feed's items is not a list; read no items")
        items = []
    entries = []
    for index, item in enumerate(items, 1):
        if isinstance(item, dict):
            entries.append(_entry(item, tz, warnings))
        else:
            warnings.append(f"item {index} is not an object; left it out")
    links = [Link(href=h) for h in [_string(document.get("home_page_url"))] if h]
    links += [
        Link(href=h, rel="self", type="application/feed+json")
        for h in [_string(document.get("feed_url"))]
        if h
    ]
    return Feed(
        title=_string(document.get("title")),
        links=tuple(links),
        subtitle=_string(document.get("description")),
        authors=_people(document),
        logo=_string(document.get("icon")),
        icon=_string(document.get("favicon")),
        lang=_string(document.get("language")),
        entries=tuple(entries),
        warnings=tuple(warnings),
    )


def _people(holder: Mapping[str, Any]) -> tuple[Person, ...]:
    """1.1's ``authors``, else 1.0's ``author``; each with a name (else its URL)."""
    found = holder.get("authors")
    if not isinstance(found, list):
        found = [holder.get("author")]
    people = []
    for person in found:
        if not isinstance(person, dict):
            continue
        name, where = _string(person.get("name")), _string(person.get("url"))
        email = where.removeprefix("mailto:") if where and where.startswith("mailto:") else None
        if name or where:
            uri = None if email else where
            people.append(Person(name=name or where or "", email=email, uri=uri))
    return tuple(people)


def _entry(item: Mapping[str, Any], tz: tzinfo, warnings: list[str]) -> Entry:
    entry_id, title = _string(item.get("id")), _string(item.get("title"))
    where = label(entry_id, title)
    links = [Link(href=h) for h in [_string(item.get("url"))] if h]
    links += [Link(href=h, rel="related") for h in [_string(item.get("external_url"))] if h]
    attachments = item.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else ():
        href = _string(attachment.get("url")) if isinstance(attachment, dict) else None
        if href is None or not isinstance(attachment, dict):
            warnings.append(f"{where}: an attachment without a url; left it out")
            continue
        size = attachment.get("size_in_bytes")
        links.append(
            Link(
                href=href,
                rel="enclosure",
                type=_string(attachment.get("mime_type")),
                length=size if isinstance(size, int) and not isinstance(size, bool) else None,
                title=_string(attachment.get("title")),
            )
        )
    content = _string(item.get("content_html"))
    if content is None:
        plain = _string(item.get("content_text"))
        content = text_as_html(plain) if plain else None
    summary = _string(item.get("summary"))
    summary_html = html.escape(summary, quote=False) if summary else None
    if content is None:
        content, summary_html = summary_html, None
    tags = item.get("tags")
    categories = tuple(
        Category(term=term)
        for term in (_string(t) for t in (tags if isinstance(tags, list) else ()))
        if term
    )
    media = tuple(Media(kind="thumbnail", url=url) for url in (_string(item.get("image")),) if url)
    published = _date(item.get("date_published"), tz, where, warnings)
    updated = _date(item.get("date_modified"), tz, where, warnings)
    return Entry(
        id=entry_id,
        title=title,
        links=tuple(links),
        content=content,
        summary=summary_html,
        authors=_people(item),
        categories=categories,
        published=published,
        updated=updated or published,
        media=media,
        lang=_string(item.get("language")),
    )


def _date(value: object, tz: tzinfo, where: str, warnings: list[str]) -> datetime | None:
    text = _string(value)
    if text is None:
        return None
    parsed = parse_date(text, tz)
    if parsed is None:
        warnings.append(f"{where}: {text[:80]!r} is not a real date; ignored it")
    return parsed
