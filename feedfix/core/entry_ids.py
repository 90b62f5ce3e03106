"""Every entry an id, each id once, and no entry lost to a shared id.

An id comes from the guid / atom:id, else the link resolved against the feed's base, else a
hash of fields that do not change between polls; always an absolute IRI (see ``ids``).
Feeds repeat ids: a podcast that gives every episode one guid, items with nothing of their
own that hash alike. feedparser and gofeed keep every such item, and so does feedfix: of the
entries that share an id, the oldest keeps it (the earliest date; undated, the last in the
feed, as feeds list newest first), so that a new episode never takes an old one's id; each
other gets an id made from the shared id and its own link, title, date and enclosures, the
same on every poll. One warning says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from feedfix.core.html import resolve
from feedfix.core.ids import as_id, digest
from feedfix.core.model import Entry

MAX_NAMED = 3  # shared ids quoted in the warning
MAX_QUOTED = 60
_MADE_UP = "urn:feedfix:entry:"


def entry_id(entry: Entry, base: str | None = None) -> str:
    """guid / atom:id, else the link resolved against ``base``, else a hash of fields that do
    not change between polls; always an absolute IRI (see ``feedfix.core.ids``)."""
    if entry.id and entry.id.strip():
        return as_id(entry.id)
    if entry.link:
        return as_id(resolve(entry.link, entry.base or base), "link")
    published = entry.published.isoformat() if entry.published else None
    return _MADE_UP + digest(entry.title, published, (entry.content or "")[:4096])


def settle_ids(
    entries: Iterable[Entry], base: str | None
) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
    """Each entry with its id settled and unique, in source order; and the warnings."""
    settled = [_with_id(entry, base) for entry in entries]
    places: dict[str, list[int]] = {}
    for index, entry in enumerate(settled):
        places.setdefault(entry.id or "", []).append(index)
    shared = {key: where for key, where in places.items() if len(where) > 1}
    if not shared:
        return tuple(settled), ()
    used = set(places)
    for key, where in shared.items():
        keeper = min(where, key=lambda i: _age(settled[i], i))
        for index in where:
            if index != keeper:
                new = _derived_id(key, settled[index], used)
                used.add(new)
                settled[index] = replace(settled[index], id=new)
    named = ", ".join(
        f"{key[:MAX_QUOTED]!r} {len(where)} times"
        for key, where in list(shared.items())[:MAX_NAMED]
    )
    more = f" and {len(shared) - MAX_NAMED} more" if len(shared) > MAX_NAMED else ""
    warning = (
        f"entry ids repeat ({named}{more}); kept every entry: the oldest keeps the id, the "
        "others get ids made from their link, title, date and enclosures"
    )
    return tuple(settled), (warning,)


def _with_id(entry: Entry, base: str | None) -> Entry:
    """The entry with its id settled (itself when it had one: ``replace`` copies)."""
    settled = entry_id(entry, base)
    return entry if settled == entry.id else replace(entry, id=settled)


def _age(entry: Entry, index: int) -> tuple[bool, datetime, int]:
    """Sorts the oldest first: dated before undated, earlier before later, then the last in
    the feed before the first."""
    date = entry.date
    return date is None, date or datetime.min.replace(tzinfo=UTC), -index


def _derived_id(shared: str, entry: Entry, used: set[str]) -> str:
    """A made-up id from the shared id and the entry's own fields; twins that agree in all
    of them are told apart by their order."""
    published = entry.published.isoformat() if entry.published else None
    enclosures = " ".join(link.href for link in entry.links if link.rel == "enclosure")
    basis = digest(shared, entry.link, entry.title, published, enclosures)
    candidate, twin = _MADE_UP + basis, 1
    while candidate in used:
        twin += 1
        candidate = _MADE_UP + digest(basis, str(twin))
    return candidate
