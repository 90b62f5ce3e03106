"""One upstream response to the feed the service publishes: incremental and with an archive.

Pure, like the rest of the core: bytes, the previous archive and the time in; the new archive
and Atom bytes out. An entry whose source has not changed since the last poll is not cleaned
again (its source hash matches); entries that fall out of the upstream's window stay in the
published feed up to ``keep_entries`` and ``keep_days``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from feedfix.core.archive import Archived
from feedfix.core.model import Entry, Feed
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.pipeline import (
    ConvertOptions,
    Report,
    apply_feed_rules,
    clean_entries,
    feed_base_url,
    with_metadata,
)
from feedfix.core.render import FORMATS, Rendering, rerender, siblings
from feedfix.core.rules import RuleSpec, ruleset
from feedfix.core.safe_urls import refuse_unsafe_urls


class FeedSettings(Protocol):
    """What republishing needs to know of a feed (the config's ``FeedConfig`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def rules(self) -> RuleSpec: ...
    @property
    def keep_entries(self) -> int: ...
    @property
    def keep_days(self) -> float: ...


@dataclass(frozen=True)
class Republished:
    """What one successful poll produced."""

    rendering: Rendering  # the Atom bytes with each entry's place, for the next poll to reuse
    feed: Feed  # as published: window plus archive
    archive: dict[str, Archived]
    report: Report
    window: int  # entries in the upstream's response
    cleaned: int  # entries cleaned in this poll
    reused: int  # entries whose earlier cleaning was reused
    ttl_minutes: int | None
    sources: tuple[Entry, ...] = ()  # the window's entries as received (for the inspector)

    @property
    def atom(self) -> bytes:
        """The Atom bytes."""
        return self.rendering.body


def source_hash(entry: Entry, rules_fingerprint: str) -> str:
    """A digest of an entry as parsed, plus the rules' settings: equal means no new cleaning.

    The HTML goes in as bytes and the small fields through ``repr``: repr-ing a whole 5 KB
    article cost more than the rest of an unchanged poll.
    """
    digest = hashlib.blake2b(digest_size=20)
    for text in (entry.content or "", entry.summary or "", rules_fingerprint):
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    digest.update(repr(replace(entry, content=None, summary=None)).encode("utf-8", "replace"))
    return digest.hexdigest()


def rules_fingerprint(feed: FeedSettings) -> str:
    """Changes whenever the feed's rule options change (a reload re-cleans everything)."""
    return feed.rules.fingerprint


def _keep(archived: Archived, now: float, keep_days: float) -> bool:
    """Young enough to keep: counted from the later of its own date and when it was first seen,
    so a backdated entry still stays ``keep_days`` after feedfix met it."""
    dated = archived.entry.date.timestamp() if archived.entry.date else archived.first_seen
    return now - max(dated, archived.first_seen) <= keep_days * 86400


def republish(
    data: bytes | Feed,
    feed_config: FeedSettings,
    archive: Mapping[str, Archived],
    now: float,
    *,
    self_url: str | None = None,
    encoding_hint: str | None = None,
    last: Rendering | None = None,
) -> Republished:
    """Parse strictly (a damaged feed is an error here: it must not replace a good copy).

    ``data`` is the upstream's bytes, or a feed already read (a folder of posts).
    ``last`` is the last poll's rendering: entries that did not change are copied from it.
    """
    options = ConvertOptions(
        rules=ruleset(feed_config.rules),  # built once per spec and process
        parse=ParseOptions(base_url=feed_config.url, encoding_hint=encoding_hint, strict=True),
        self_url=self_url,
    )
    if isinstance(data, Feed):
        parsed = data
    else:
        parsed = parse_document(data, feed_config.name, options.parse)
    report = Report()
    feed = apply_feed_rules(with_metadata(parsed, options, report), options.rules, report)
    fingerprint = rules_fingerprint(feed_config)
    plan = [(e, source_hash(e, fingerprint), archive.get(e.id or "")) for e in feed.entries]
    changed = [(prev is None or prev.source_hash != digest) for _, digest, prev in plan]
    base = feed_base_url(feed, feed_config.url)
    cleaned_entries = clean_entries(
        (e for (e, _, _), clean in zip(plan, changed, strict=True) if clean),
        options.rules,
        base,
        report,
    )
    fresh: dict[str, Archived] = {}
    for (entry, digest, previous), clean in zip(plan, changed, strict=True):
        entry_id = entry.id or ""  # ids are unique by now (core/entry_ids.py)
        if previous is not None and not clean:
            fresh[entry_id] = previous
        else:
            first_seen = previous.first_seen if previous is not None else now
            fresh[entry_id] = Archived(entry_id, digest, next(cleaned_entries), first_seen)
    cleaned = sum(changed)
    kept = dict(fresh)
    older = sorted(
        (
            a
            for key, a in archive.items()
            if key not in fresh and _keep(a, now, feed_config.keep_days)
        ),
        key=Archived.sort_key,
    )
    for archived in older[: max(0, feed_config.keep_entries - len(fresh))]:
        kept[archived.id] = archived
    ordered = sorted(kept.values(), key=Archived.sort_key)
    # Selection (filter, limit) ran on the window to spare cleaning; it runs again over window
    # and archive together, so archived entries obey a filter or limit added since.
    merged = apply_feed_rules(
        replace(feed, entries=tuple(a.entry for a in ordered)), options.rules, Report()
    )
    kept = {e.id or "": kept[e.id or ""] for e in merged.entries}
    # The newest entry dates the feed, not the upstream's build time (RSSHub's lastBuildDate
    # moves on every build): the bytes, and so the ETag, change only when an entry does.
    newest = max((e.date for e in merged.entries if e.date), default=None)
    published = replace(merged, updated=newest or feed.updated, warnings=())
    # An entry as archived renders as it did last time: the digest of its source and rules
    # stamps its bytes (a feed rule that made a new entry object gets no stamp).
    stamps = {e.id or "": kept[e.id or ""].source_hash for e in merged.entries
              if kept[e.id or ""].entry is e}  # fmt: skip
    rendering = rerender(published, last, self_url, stamps)
    return Republished(
        rendering=rendering,
        feed=published,
        archive=kept,
        report=report,
        window=len(feed.entries),
        cleaned=cleaned,
        reused=len(plan) - cleaned,
        ttl_minutes=parsed.ttl_minutes,
        sources=feed.entries,
    )


def other_format(atom: bytes, name: str, self_url: str | None = None) -> bytes:
    """The feed of feedfix's own Atom (``atom``, served at ``self_url``) in format ``name``.

    Read back rather than kept: the Atom is what the service stores and every replica holds,
    and reading it gives the model it was rendered from (ids settled, rules applied, URLs
    mended), so each format says what the Atom says. The links the Atom has to itself and
    its other formats are left out: each format writes its own."""
    feed = parse_document(atom, "feedfix.atom", ParseOptions(strict=True))
    feed, _, _ = refuse_unsafe_urls(feed)  # a no-op but for an Atom stored by an older feedfix
    addresses = siblings(self_url, "atom")
    own = set(addresses.values())
    if own:
        feed = replace(feed, links=tuple(k for k in feed.links if k.href not in own))
    return FORMATS[name].render(feed, self_url=addresses.get(name))
