"""The URLs written around the content pass the content's scheme allowlist (issue 18).

``sanitize`` has long kept ``javascript:``, ``vbscript:``, ``data:`` and ``file:`` out of
an entry's HTML; readers also make the URLs *around* it clickable or load them: links
(alternate, enclosure, related, self), ``media:content``/``media:thumbnail``, the logo and
icon, an author's ``uri``, and ids that are URLs. This is one model step of the pipeline,
run on the parsed feed before ids are settled and anything is rendered, so every renderer
(Atom, and whatever else writes the model) gets it: a URL must be relative or use one of
``URL_SCHEMES`` (http, https, mailto, tel; disguises such as ``java&#9;script:`` or leading
spaces seen through as a browser sees through them), else it is left out.

An id is not dropped (entries would merge): one whose scheme is not in ``ID_SCHEMES`` is
wrapped whole in a ``urn:feedfix:unsafe:`` name, percent-encoded, so it stays stable and
distinct. The rules after this step only ever write http(s) URLs (unwrapping, the image
proxy), so nothing they do needs the check again.
"""

from __future__ import annotations

from dataclasses import replace

from feedfix.core.ids import wrapped_id
from feedfix.core.model import Entry, Feed, Link, Person
from feedfix.core.rules.sanitize import is_allowed_url

UNSAFE_URLS = "unsafe-urls"
"""The ``--explain`` line counting the URLs this step refused."""
UNIT = "urls refused (scheme not allowed)"
# An id may also be a tag: or urn: name (RFC 4151, RFC 8141), which no reader loads.
ID_SCHEMES = ("tag:", "urn:")


def safe_id(value: str | None) -> str | None:
    """``value`` if it is a safe id, else the same id wrapped in a ``urn:feedfix:unsafe:``
    name; None stays None."""
    if value is None or value.lstrip().lower().startswith(ID_SCHEMES) or is_allowed_url(value):
        return value
    return wrapped_id("unsafe", value.strip())


def refuse_unsafe_urls(feed: Feed) -> tuple[Feed, int, int]:
    """The feed with every unsafe URL left out (or id wrapped); how many were refused, and
    in how many entries. The same objects come back where nothing was refused."""
    refused = 0
    entries: list[Entry] = []
    touched = 0
    for entry in feed.entries:
        safe, count = _entry(entry)
        entries.append(safe)
        if count:
            refused += count
            touched += 1
    head, head_count = _feed_head(feed)
    if not refused and not head_count:
        return feed, 0, 0
    changed = replace(head, entries=tuple(entries)) if refused else head
    return changed, refused + head_count, touched


def _feed_head(feed: Feed) -> tuple[Feed, int]:
    links, refused = _links(feed.links)
    authors, count = _people(feed.authors)
    refused += count
    logo, icon = _allowed(feed.logo), _allowed(feed.icon)
    ident = safe_id(feed.id)
    refused += (logo != feed.logo) + (icon != feed.icon) + (ident != feed.id)
    if not refused:
        return feed, 0
    return replace(feed, links=links, authors=authors, logo=logo, icon=icon, id=ident), refused


def _entry(entry: Entry) -> tuple[Entry, int]:
    links, refused = _links(entry.links)
    media = entry.media
    if media and not all(is_allowed_url(m.url) for m in media):
        media = tuple(m for m in media if is_allowed_url(m.url))
        refused += len(entry.media) - len(media)
    authors, count = _people(entry.authors)
    refused += count
    ident = safe_id(entry.id)
    base = _allowed(entry.base)
    refused += (ident != entry.id) + (base != entry.base)
    if not refused:
        return entry, 0
    safe = replace(entry, links=links, media=media, authors=authors, id=ident, base=base)
    return safe, refused


def _allowed(url: str | None) -> str | None:
    """``url`` if it is allowed (or None), else None."""
    return url if url is None or is_allowed_url(url) else None


def _links(links: tuple[Link, ...]) -> tuple[tuple[Link, ...], int]:
    if all(is_allowed_url(link.href) for link in links):
        return links, 0
    kept = tuple(link for link in links if is_allowed_url(link.href))
    return kept, len(links) - len(kept)


def _people(people: tuple[Person, ...]) -> tuple[tuple[Person, ...], int]:
    if all(p.uri is None or is_allowed_url(p.uri) for p in people):
        return people, 0
    safe = tuple(p if _allowed(p.uri) == p.uri else replace(p, uri=None) for p in people)
    return safe, sum(p.uri is not None and q.uri is None for p, q in zip(people, safe, strict=True))


__all__ = ["ID_SCHEMES", "UNIT", "UNSAFE_URLS", "refuse_unsafe_urls", "safe_id"]
