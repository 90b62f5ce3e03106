"""filter and limit: choose which entries a feed keeps (both off unless configured)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar

from feedfix.core.html import html_to_text
from feedfix.core.model import Entry, Feed
from feedfix.core.patterns import UnsupportedPattern, UserPattern, compile_user_pattern
from feedfix.core.rules.base import Rule, string_list

FIELDS = ("title", "content", "category", "author", "link")
_OLDEST = datetime(1, 1, 1, tzinfo=UTC)


def _compile(option: str, pattern: str | None) -> UserPattern | None:
    """The user's pattern for RE2 (``core/patterns.py``): it runs over every entry of every
    poll, so it must take time linear in the text, which Python's ``re`` cannot promise."""
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise ValueError(f"option {option!r} must be a regular expression string")
    try:
        return compile_user_pattern(pattern)
    except UnsupportedPattern as exc:
        raise ValueError(f"option {option!r}: bad regular expression: {exc}") from exc


class Filter(Rule):
    """Keep or drop entries whose title, content or category match a regular expression.

    keep: only entries that match stay. drop: entries that match go. Matching ignores case and
    looks at the fields listed in "fields" (title, content, category by default; also author,
    link). Content is matched as visible text, not markup. Patterns run with RE2, in time
    linear in the text: backreferences and look-around are refused.
    """

    name = "filter"
    unit = "entries dropped"
    options: ClassVar[Mapping[str, str]] = {
        "keep": "regular expression: keep only entries that match",
        "drop": "regular expression: drop entries that match",
        "fields": "fields to match: title, content, category, author, link",
    }

    def __init__(
        self, keep: str | None = None, drop: str | None = None, fields: list[str] | None = None
    ) -> None:
        self.keep = _compile("keep", keep)
        self.drop = _compile("drop", drop)
        chosen = string_list("fields", fields) if fields is not None else FIELDS[:3]
        unknown = [f for f in chosen if f not in FIELDS]
        if unknown:
            raise ValueError(f"option 'fields': unknown field {unknown[0]!r}")
        self.fields = chosen

    def is_active(self) -> bool:
        """Active once it has a pattern."""
        return self.keep is not None or self.drop is not None

    def _texts(self, entry: Entry) -> list[str]:
        texts: list[str] = []
        for name in self.fields:
            if name == "title":
                texts.append(entry.title or "")
            elif name == "content":
                texts.append(html_to_text(entry.content or "") if entry.content else "")
            elif name == "category":
                texts.extend(c.term for c in entry.categories)
            elif name == "author":
                texts.extend(p.name for p in entry.authors)
            elif name == "link":
                texts.append(entry.link or "")
        return texts

    def _wanted(self, entry: Entry) -> bool:
        texts = self._texts(entry)
        if self.keep is not None and not any(self.keep.search(t) for t in texts):
            return False
        return not (self.drop is not None and any(self.drop.search(t) for t in texts))

    def feed(self, feed: Feed) -> tuple[Feed, int]:
        """Drop the unwanted entries; the count is how many went."""
        kept = tuple(e for e in feed.entries if self._wanted(e))
        return replace(feed, entries=kept), len(feed.entries) - len(kept)


class Limit(Rule):
    """Keep only the newest N entries (by updated, else published date).

    Entries keep their original order; undated entries count as the oldest.
    """

    name = "limit"
    unit = "entries dropped"
    options: ClassVar[Mapping[str, str]] = {"count": "how many of the newest entries to keep"}

    def __init__(self, count: int | None = None) -> None:
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise ValueError("option 'count' must be a whole number")
        if count is not None and count < 0:
            raise ValueError("option 'count' must not be negative")
        self.count = count

    def is_active(self) -> bool:
        """Active once it has a count."""
        return self.count is not None

    def feed(self, feed: Feed) -> tuple[Feed, int]:
        """Drop all but the newest ``count`` entries."""
        if self.count is None or len(feed.entries) <= self.count:
            return feed, 0
        ranked = sorted(
            range(len(feed.entries)),
            key=lambda i: (feed.entries[i].date or _OLDEST, -i),
            reverse=True,
        )
        keep = set(ranked[: self.count])
        kept = tuple(e for i, e in enumerate(feed.entries) if i in keep)
        return replace(feed, entries=kept), len(feed.entries) - len(kept)
