"""parse -> rules -> render, with a count of what every rule changed.

Pure: bytes and options in, bytes and a report out. Entries are cleaned one at a time by
``clean_entry`` so that a caller (the service) can skip entries it has cleaned before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from feedfix.core.entry_ids import settle_ids
from feedfix.core.html import (
    XMLText,
    encode_url_attributes,
    has_unusual_url,
    parse_fragment,
    resolve,
    serialize_fragment,
)
from feedfix.core.ids import absolute_iri, as_id, digest
from feedfix.core.limits import UNITS as LIMIT_UNITS
from feedfix.core.limits import LimitHits
from feedfix.core.model import Entry, Feed, Link, Media
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.render import FORMATS, DropCounter, FeedFacts
from feedfix.core.rules import RuleSet, build_ruleset, walk
from feedfix.core.rules.walk import ResolveVisit, Visit
from feedfix.core.safe_urls import UNIT as UNSAFE_UNIT
from feedfix.core.safe_urls import UNSAFE_URLS, refuse_unsafe_urls

Progress = Callable[[int, int], None]
INVALID_VALUES = "invalid-values"
"""The ``--explain`` line for values left out of the output because they break the grammar of
the place they go (``link@type``, ``hreflang``, ``email``, ``category@scheme``, ``xml:lang``)."""
# What the report's lines that are not rules count, for ``--explain``.
NOTE_UNITS = {INVALID_VALUES: "dropped", UNSAFE_URLS: UNSAFE_UNIT, **LIMIT_UNITS}


@dataclass
class RuleCount:
    """How many things a rule changed, and in how many entries."""

    changes: int = 0
    entries: int = 0


@dataclass
class Report:
    """Per-rule counts for a whole run, in rule order."""

    counts: dict[str, RuleCount] = field(default_factory=dict)
    entries: int = 0  # entries cleaned
    warnings: list[str] = field(default_factory=list)  # found while settling ids

    def add(self, name: str, changes: int, *, entries: int = 1) -> None:
        """Record ``changes`` made by rule ``name`` (in ``entries`` entries when non-zero)."""
        count = self.counts.setdefault(name, RuleCount())
        if changes:
            count.changes += changes
            count.entries += entries

    def merge(self, other: Report) -> None:
        """Add another report's counts into this one."""
        for name, count in other.counts.items():
            mine = self.counts.setdefault(name, RuleCount())
            mine.changes += count.changes
            mine.entries += count.entries


@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``convert`` needs besides the bytes."""

    rules: RuleSet = field(default_factory=build_ruleset)
    parse: ParseOptions = field(default_factory=ParseOptions)
    self_url: str | None = None
    format: str = "atom"  # a name in ``render.FORMATS``: atom, rss or json
    title: str | None = None
    id: str | None = None
    link: str | None = None
    source: str | None = None  # the input's name: part of a made-up feed id


@dataclass(frozen=True)
class ConvertResult:
    """The output bytes (Atom unless ``ConvertOptions.format`` says otherwise) and what it
    took to make them."""

    atom: bytes
    feed: Feed
    report: Report
    warnings: tuple[str, ...]


def feed_id(feed: Feed, source: str | None = None, base_url: str | None = None) -> str:
    """atom:id, else the upstream's self link, else the site link, else the address it was
    read from; a feed with none of these gets a hash of its source's name and of all it
    says (metadata and entries, ids settled), so that two different feeds never share one."""
    if feed.id and feed.id.strip():
        return as_id(feed.id)
    for rel in ("self", "alternate"):
        for link in feed.links:
            if link.rel == rel:
                found = absolute_iri(resolve(link.href, base_url))
                if found:
                    return found
    found = absolute_iri(base_url or "")
    if found:
        return found
    name = (source or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "urn:feedfix:feed:" + digest(name, repr(replace(feed, warnings=())))


def posts_folder_id(folder: str, title: str | None) -> str:
    """The made-up atom:id of a folder of posts without ``--id``/``--link``: from the folder's
    name and the feed's title, so that it stays the same as posts come and go (``feed_id``'s
    hash of all a feed says would change with every post), wherever the folder lives."""
    return "urn:feedfix:folder:" + digest(folder, title)


def with_metadata(feed: Feed, options: ConvertOptions, report: Report | None = None) -> Feed:
    """Leave out unsafe URLs (``safe_urls``: counted in ``report``), fill in what the input
    lacks from ``--title``/``--id``/``--link`` and give ids: every entry one, and each id
    once (``entry_ids``: no entry is dropped for a shared id)."""
    feed, refused, entries = refuse_unsafe_urls(feed)
    if report is not None and refused:
        report.add(UNSAFE_URLS, refused, entries=entries)
    links = feed.links
    if options.link and feed.link is None:
        links = (Link(href=options.link), *links)
    feed = replace(
        feed,
        title=feed.title or options.title,
        links=links,
        id=feed.id or options.id,
    )
    base = feed_base_url(feed, options.parse.base_url)
    settled, warnings = settle_ids(feed.entries, base)
    feed = replace(feed, entries=settled, warnings=feed.warnings + warnings)
    return replace(feed, id=feed_id(feed, options.source, options.parse.base_url))


def _resolve_entry_urls(entry: Entry, base: str | None) -> Entry:
    if not base:
        return entry
    links = tuple(_resolved_link(x, base) for x in entry.links)
    media = tuple(_resolved_media(m, base) for m in entry.media)
    if links == entry.links and media == entry.media:
        return entry
    return replace(entry, links=links, media=media)


def _resolved_link(link: Link, base: str) -> Link:
    href = resolve(link.href, base)
    return link if href == link.href else replace(link, href=href)  # replace() is slow


def _resolved_media(media: Media, base: str) -> Media:
    url = resolve(media.url, base)
    return media if url == media.url else replace(media, url=url)


def clean_html(markup: str, rules: RuleSet, base: str | None, report: Report) -> str:
    """Run the HTML rules over one fragment: one parse, one walk, one serialisation (see
    ``rules/walk.py``); unchanged text comes back as it was."""
    html, counts = _clean_html(markup, rules, base)
    for rule, changes in zip(rules.html_rules, counts, strict=True):
        report.add(rule.name, changes, entries=0)
    return html


def _clean_html(
    markup: str, rules: RuleSet, base: str | None, hits: LimitHits | None = None
) -> tuple[str, list[int]]:
    """The cleaned fragment and the changes of each of ``rules.html_rules`` (what the limits
    dropped, in ``hits``)."""
    html_rules = rules.html_rules
    if not html_rules and not base:
        return markup, []
    container = parse_fragment(markup, hits)
    visits = [rule.visit() or Visit() for rule in html_rules]
    if base:
        visits.insert(0, ResolveVisit(base))
    counts = walk.run(container, visits)
    html = serialize_fragment(container)
    if has_unusual_url(html):  # after the rules: the sanitizer saw the URLs as written
        encode_url_attributes(container)
        html = serialize_fragment(container)
    for rule in html_rules:
        html = rule.finish(html)
    # No reference: parse_fragment left no character XML cannot carry. ("&" first: str finds
    # one character at memchr speed and two at a tenth of it, 3 ms over the bench feed.)
    if "&" not in markup or "&#" not in markup:
        html = XMLText(html)
    return html, counts[1:] if base else counts


def clean_entry(entry: Entry, rules: RuleSet, feed_base: str | None = None) -> tuple[Entry, Report]:
    """One entry through every rule; the report counts this entry once per rule that changed it."""
    cleaned, changes = _clean_entry(entry, rules, feed_base)
    return cleaned, Report({name: RuleCount(n, 1 if n else 0) for name, n in changes.items()})


def _clean_entry(
    entry: Entry, rules: RuleSet, feed_base: str | None
) -> tuple[Entry, dict[str, int]]:
    """The cleaned entry and the changes of each rule, in rule order."""
    entry_base = entry.base or resolve(entry.link or "", feed_base) or feed_base
    entry = _resolve_entry_urls(entry, entry.base or feed_base)
    changes = dict.fromkeys(rules.names, 0)
    for rule in rules.entry_rules:
        entry, changes[rule.name] = rule.entry(entry)
    cleaned: list[str | None] = []
    hits = LimitHits()
    for markup in (entry.content, entry.summary):
        if not markup:
            cleaned.append(None)
            continue
        html, counts = _clean_html(markup, rules, entry_base, hits)
        cleaned.append(html)
        for rule, count in zip(rules.html_rules, counts, strict=True):
            changes[rule.name] += count
    if hits:
        changes.update(hits.counts())  # only the limits that were hit get a line
    return replace(entry, content=cleaned[0], summary=cleaned[1], base=None), changes


def apply_feed_rules(feed: Feed, rules: RuleSet, report: Report) -> Feed:
    """The feed-level part of every rule: choosing entries, the feed's own URLs."""
    for rule in rules.rules:
        report.counts.setdefault(rule.name, RuleCount())
        feed, changes = rule.feed(feed)
        report.add(rule.name, changes, entries=0)
    return feed


def clean_entries(
    entries: Iterable[Entry],
    rules: RuleSet,
    feed_base: str | None,
    report: Report,
    *,
    progress: Progress | None = None,
    total: int = 0,
) -> Iterator[Entry]:
    """Each entry cleaned as it is asked for, its counts added to ``report``."""
    counts = report.counts
    for index, entry in enumerate(entries, 1):
        cleaned, changes = _clean_entry(entry, rules, feed_base)
        for name, changed in changes.items():  # Report.merge, without a Report per entry
            count = counts.get(name)
            if count is None:
                count = counts[name] = RuleCount()
            if changed:
                count.changes += changed
                count.entries += 1
        report.entries += 1
        if progress is not None:
            progress(index, total)
        yield cleaned


def feed_base_url(feed: Feed, base_url: str | None) -> str | None:
    """What the feed's relative URLs are relative to: its site link, resolved, else the URL
    it was read from."""
    return resolve(feed.link or "", base_url) or base_url


def clean_feed(
    feed: Feed, rules: RuleSet, base_url: str | None = None, progress: Progress | None = None
) -> tuple[Feed, Report]:
    """Feed-level rules (selection, feed URLs), then every entry."""
    report = Report()
    feed = apply_feed_rules(feed, rules, report)
    base = feed_base_url(feed, base_url)
    entries = tuple(
        clean_entries(feed.entries, rules, base, report, progress=progress, total=len(feed.entries))
    )
    return replace(feed, entries=entries), report


def convert_feed(
    feed: Feed, options: ConvertOptions, progress: Progress | None = None
) -> ConvertResult:
    """A parsed feed cleaned and rendered."""
    notes = Report()
    feed = with_metadata(feed, options, notes)
    cleaned, report = clean_feed(feed, options.rules, options.parse.base_url, progress)
    report.merge(notes)
    out = FORMATS[options.format].render(
        cleaned, self_url=options.self_url, on_dropped=_drop_counter(report)
    )
    return ConvertResult(atom=out, feed=cleaned, report=report, warnings=feed.warnings)


def _drop_counter(report: Report) -> DropCounter:
    """Counts what the renderer dropped under ``INVALID_VALUES``, by entry."""

    def note(count: int, in_entry: bool) -> None:
        report.add(INVALID_VALUES, count, entries=1 if in_entry else 0)

    return note


def stream_atom(
    feed: Feed, options: ConvertOptions, report: Report, progress: Progress | None = None
) -> Iterator[bytes]:
    """Output chunks for ``feed`` (Atom unless ``options.format`` says otherwise), cleaning
    each entry just before it is written.

    Ids are settled before this returns (their warnings are in ``report.warnings``); the
    rest happens as the chunks are consumed. It takes the feed over: pass it no reference
    you keep, and each source entry is released once written, so a large feed never sits
    in memory three times (source, cleaned, output). ``report`` fills in as chunks go.
    """
    settled = with_metadata(feed, options, report)
    report.warnings.extend(settled.warnings[len(feed.warnings) :])
    del feed
    feed = apply_feed_rules(settled, options.rules, report)
    del settled
    facts = FeedFacts.of(feed)
    base = feed_base_url(feed, options.parse.base_url)
    pending = deque(feed.entries)
    header = replace(feed, entries=())
    del feed

    def drain() -> Iterator[Entry]:
        while pending:
            yield pending.popleft()

    total = len(pending)
    cleaned = clean_entries(drain(), options.rules, base, report, progress=progress, total=total)
    chunks = FORMATS[options.format].chunks
    return chunks(header, facts, cleaned, options.self_url, _drop_counter(report))


def convert(
    data: bytes,
    name: str = "-",
    options: ConvertOptions | None = None,
    progress: Progress | None = None,
) -> ConvertResult:
    """Bytes of a feed or post in, clean Atom bytes out."""
    options = options or ConvertOptions()
    if options.source is None:
        options = replace(options, source=name)
    return convert_feed(parse_document(data, name, options.parse), options, progress)


__all__ = [
    "NOTE_UNITS",
    "ConvertOptions",
    "ConvertResult",
    "Report",
    "clean_entry",
    "convert",
    "stream_atom",
]
