"""The feed model every parser produces and the renderer consumes.

Plain frozen dataclasses: the rules return changed copies (``dataclasses.replace``) rather than
mutating, so an entry can be cached and compared by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

MediaKind = Literal["content", "thumbnail"]  # media:content, media:thumbnail
MEDIA_KINDS: dict[str, MediaKind] = {"content": "content", "thumbnail": "thumbnail"}


@dataclass(frozen=True)
class Person:
    """An author or contributor (RSS ``author``/``dc:creator``, Atom ``author``)."""

    name: str
    email: str | None = None
    uri: str | None = None


@dataclass(frozen=True)
class Link:
    """A link with Atom semantics; RSS enclosures become ``rel="enclosure"`` links."""

    href: str
    rel: str = "alternate"
    type: str | None = None
    length: int | None = None
    title: str | None = None
    hreflang: str | None = None


def alternate(links: tuple[Link, ...]) -> str | None:
    """The first ``rel="alternate"`` href."""
    return next((link.href for link in links if link.rel == "alternate"), None)


@dataclass(frozen=True)
class Category:
    """A category or tag; ``scheme`` is RSS's ``domain`` or Atom's ``scheme``."""

    term: str
    scheme: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Media:
    """A Media RSS element (``media:content`` or ``media:thumbnail``), kept through to Atom."""

    kind: MediaKind
    url: str
    type: str | None = None
    medium: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Entry:
    """One item/entry. ``content`` and ``summary`` hold HTML (already unescaped)."""

    id: str | None = None
    title: str | None = None
    links: tuple[Link, ...] = ()
    content: str | None = None
    summary: str | None = None
    authors: tuple[Person, ...] = ()
    categories: tuple[Category, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    media: tuple[Media, ...] = ()
    lang: str | None = None
    base: str | None = None  # base URL for relative references in content/summary
    rights: str | None = None

    @property
    def link(self) -> str | None:
        """The entry's alternate (permalink) URL, if any."""
        return alternate(self.links)

    @property
    def date(self) -> datetime | None:
        """The best date for ordering: updated, else published."""
        return self.updated or self.published


@dataclass(frozen=True)
class Feed:
    """A whole feed: its own metadata plus its entries in source order."""

    title: str | None = None
    id: str | None = None
    links: tuple[Link, ...] = ()
    subtitle: str | None = None
    updated: datetime | None = None
    authors: tuple[Person, ...] = ()
    categories: tuple[Category, ...] = ()
    logo: str | None = None
    icon: str | None = None
    rights: str | None = None
    lang: str | None = None
    ttl_minutes: int | None = None
    entries: tuple[Entry, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def link(self) -> str | None:
        """The site's URL (the feed's alternate link), if any."""
        return alternate(self.links)
