"""JSON Feed 1.1 out of the model: the same feed as the Atom, within what JSON Feed can say.

The mapping: an entry's id, its first alternate link as ``url`` and its first ``related``
link as ``external_url``, its title (plain text), its content as ``content_html`` and its
summary as ``summary`` (plain text, as the spec has it), its first Media RSS thumbnail as
``image``, ``date_published`` / ``date_modified`` in RFC 3339, ``authors`` (a name, and a URL:
the person's own, else ``mailto:`` their email), categories as ``tags``, a language that
differs from the feed's, and enclosures as ``attachments`` (``mime_type`` is required:
``application/octet-stream`` when the source gave none). The feed: its title, site link as
``home_page_url``, its own address as ``feed_url`` (when served), subtitle as
``description``, Atom's logo as ``icon`` and icon as ``favicon``, authors and language.

JSON has no ``xml:base``: every URL is written as the other formats write it (absolute
whenever the source said where it came from). Strings lose the characters XML cannot carry,
as in the other formats, so the three say the same. Each item is one line: a large feed is
written (and streamed) an item at a time, and a person can still read it.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any

from feedfix.core.html import html_to_text, xml_chars
from feedfix.core.model import Entry, Feed, Person
from feedfix.core.render import common
from feedfix.core.render.atom import atom_date
from feedfix.core.render.values import (
    UNCOUNTED,
    Dropped,
    FeedFacts,
    email_address,
    language_tag,
)

if TYPE_CHECKING:
    import json

VERSION = "https://jsonfeed.org/version/1.1"
UNKNOWN_TYPE = "application/octet-stream"


@functools.cache
def _encoder() -> json.JSONEncoder:
    """Made when the first JSON Feed is written: json costs every other start 1 ms."""
    import json  # noqa: PLC0415

    return json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _encode(value: object) -> str:
    return _encoder().encode(value)


def _text(value: str) -> str:
    return xml_chars(value)


def _author(person: Person, dropped: Dropped) -> dict[str, str]:
    found = {"name": _text(person.name)}
    email = dropped.check(person.email, email_address(person.email))
    where = common.url(person.uri) or (f"mailto:{email}" if email else None)
    if where:
        found["url"] = where
    return found


def item(entry: Entry, feed_lang: str | None, when: datetime, dropped: Dropped = UNCOUNTED) -> str:
    """One item as a line of JSON; ``when`` stands in for an entry with no date at all."""
    links = list(common.links(entry.links, dropped))
    found: dict[str, Any] = {"id": _text(entry.id or "")}
    link = next((x[1] for x in links if x[0] == "alternate"), None)
    if link is not None:
        found["url"] = link
    external = next((x[1] for x in links if x[0] == "related"), None)
    if external is not None:
        found["external_url"] = external
    if entry.title:
        found["title"] = _text(entry.title)
    found["content_html"] = _text(entry.content or entry.summary or "")
    if entry.summary and entry.content:
        found["summary"] = _text(html_to_text(entry.summary).strip())
    image = next((m.url for m in entry.media if m.kind == "thumbnail" and common.url(m.url)), None)
    if image is not None:
        found["image"] = common.url(image)
    updated, published = common.dates(entry, when)
    if published:
        found["date_published"] = atom_date(published)
    found["date_modified"] = atom_date(updated)
    if entry.authors:
        found["authors"] = [_author(person, dropped) for person in entry.authors]
    if entry.categories:
        found["tags"] = [_text(category.term) for category in entry.categories]
    lang = dropped.check(entry.lang, language_tag(entry.lang))
    if lang and lang != language_tag(feed_lang):
        found["language"] = lang
    attachments = [_attachment(x) for x in links if x[0] == "enclosure"]
    if attachments:
        found["attachments"] = attachments
    return _encode(found)


def _attachment(link: common.NormalLink) -> dict[str, Any]:
    _rel, href, kind, _lang, title, length = link
    found: dict[str, Any] = {"url": href, "mime_type": kind or UNKNOWN_TYPE}
    if title:
        found["title"] = _text(title)
    if length:
        found["size_in_bytes"] = int(length)
    return found


def render_header(
    feed: Feed, facts: FeedFacts, self_url: str | None = None, dropped: Dropped = UNCOUNTED
) -> str:
    """The feed's own members, up to the opening of ``items``."""
    site = next((x[1] for x in common.links(feed.links, dropped) if x[0] == "alternate"), None)
    own = common.url(common.siblings(self_url, "json").get("json"))
    # the title is required, and readers refuse an empty one: the feed's address stands in
    title = feed.title or site or own or feed.id or ""
    found: dict[str, Any] = {"version": VERSION, "title": _text(title)}
    if site is not None:
        found["home_page_url"] = site
    if own:
        found["feed_url"] = own
    if feed.subtitle:
        found["description"] = _text(feed.subtitle)
    for key, value in (("icon", feed.logo), ("favicon", feed.icon)):
        address = common.url(value)
        if address:
            found[key] = address
    authors = feed.authors
    if facts.needs_author:
        authors = (Person(name=title or "unknown"),)  # as the Atom names one
    if authors:
        found["authors"] = [_author(person, dropped) for person in authors]
    lang = dropped.check(feed.lang, language_tag(feed.lang))
    if lang:
        found["language"] = lang
    return _encode(found)[:-1] + ', "items": [\n'


FORMAT = common.Format("json", render_header, item, b"\n]}\n", between=",\n")
render_chunks = FORMAT.chunks
render_json = FORMAT.render
