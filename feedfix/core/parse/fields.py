"""An entry's fields gathered from every vocabulary, and which one wins.

The rank tables below say where an entry's title, full text, summary and dates come from,
best first; README's "Input" table is these tables. ``Reading`` is what reading one document
gathers besides its tree: the zone for bare dates, the namespaces its RSS or Atom is in, and
the warnings about single entries.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from lxml import etree

from feedfix.core.html import XMLText, html_to_text
from feedfix.core.model import MEDIA_KINDS, Category, Entry, Link, Media, Person
from feedfix.core.parse import xmltree
from feedfix.core.parse.constructs import media_children, media_object, person
from feedfix.core.parse.dates import parse_date
from feedfix.core.parse.namespaces import (
    ATOM,
    ATOM_NAMESPACES,
    CONTENT,
    DC,
    DCTERMS,
    GOOGLEPLAY,
    ITUNES,
    MEDIA,
    RSS_NAMESPACES,
    XHTML,
)
from feedfix.core.parse.xmltree import MAX_QUOTED, children, split_tag

MAX_NAMED = 5  # elements named in a warning about an empty entry


@dataclass
class Reading:
    """What reading one document needs besides the tree: the zone for bare dates, the
    namespaces its RSS or Atom is in (a feed may use a default namespace of its own), how
    many entries were read, and the warnings about single entries (a bad date, content that
    cannot be read, an entry with nothing in it) that are the entry's problem and never the
    document's."""

    tz: tzinfo
    warnings: list[str] = field(default_factory=list)
    rss_namespaces: frozenset[str] = RSS_NAMESPACES
    atom_namespaces: frozenset[str] = ATOM_NAMESPACES
    count: int = 0
    # Read strictly: libxml2 refused every character XML 1.0 cannot carry, so no text read
    # from the document holds one (base64 is cleaned as it is decoded). Entries' HTML then
    # says so (``XMLText``), and cleaning it need not look again: 4 ms of the bench feed.
    xml_clean: bool = False

    def first_date(self, ranked: list[tuple[int, str]], where: str) -> datetime | None:
        """The best of ``ranked`` that is a real date; each one before it is warned about."""
        for value in by_rank(ranked):
            parsed = parse_date(value, self.tz)
            if parsed is not None:
                return parsed
            if value.strip():
                self.warnings.append(
                    f"{where}: {value.strip()[:MAX_QUOTED]!r} is not a real date; ignored it"
                )
        return None

    def check_empty(self, entry: Entry, el: etree._Element, what: str) -> None:
        """Warn about an entry with no title, link, text or media of its own, naming it by
        its place and the elements it had."""
        if entry.title or entry.links or entry.content or entry.summary or entry.media:
            return
        names = [_qualified(child) for child in el if isinstance(child.tag, str)]
        held = ", ".join(f"<{n}>" for n in names[:MAX_NAMED]) or "nothing"
        if len(names) > MAX_NAMED:
            held += ", …"
        self.warnings.append(
            f"{what} {self.count} has no title, link, text or media of its own "
            f"(it holds {held}); kept it under an id of its own"
        )


def _qualified(el: etree._Element) -> str:
    local = split_tag(el.tag)[1]
    return f"{el.prefix}:{local}" if el.prefix else local


def label(entry_id: str | None, title: str | None) -> str:
    """How a warning names an entry: by id, else by title."""
    if entry_id:
        return f"entry {entry_id[:MAX_QUOTED]!r}"
    if title:
        return f"entry titled {title[:MAX_QUOTED]!r}"
    return "an entry without id or title"


# A lower rank wins, and within a rank the first in the document. Namespaces are canonical
# (see ``namespaces``); "" is RSS (any of its namespaces), ``ATOM`` is Atom 1.0 or 0.3.
TITLE_RANK = {("", "title"): 0, (ATOM, "title"): 0, (DC, "title"): 1, (MEDIA, "title"): 2,
              (ITUNES, "title"): 3}  # fmt: skip
BODY_RANK = {(CONTENT, "encoded"): 0, (ATOM, "content"): 0, (XHTML, "body"): 1, ("", "body"): 1,
             ("", "fullitem"): 1, ("", "content"): 1}  # fmt: skip
SUMMARY_RANK = {("", "description"): 0, (ATOM, "summary"): 0, (DC, "description"): 1,
                ("", "summary"): 1, (ITUNES, "summary"): 2, (GOOGLEPLAY, "description"): 3,
                (MEDIA, "description"): 4, (ITUNES, "subtitle"): 5}  # fmt: skip
PUBLISHED_RANK = {("", "pubDate"): 0, (ATOM, "published"): 0, (ATOM, "issued"): 1,
                  (ATOM, "created"): 1, ("", "published"): 1, (DCTERMS, "issued"): 2,
                  (DCTERMS, "created"): 2}  # fmt: skip
UPDATED_RANK = {(ATOM, "updated"): 0, (ATOM, "modified"): 0, ("", "updated"): 1, (DC, "date"): 1,
                (DCTERMS, "modified"): 2}  # fmt: skip
DATE_KEYS = frozenset(PUBLISHED_RANK) | frozenset(UPDATED_RANK)
_LOOKS_HTML = re.compile(
    r"<(?:p|br|a|b|i|em|strong|ul|ol|li|div|span|img|h[1-6]|blockquote)\b", re.I
)


def best(ranked: list[tuple[int, str]]) -> str | None:
    """The value of the lowest rank, the first of that rank; ``None`` for an empty list."""
    if len(ranked) < 2:
        return ranked[0][1] if ranked else None
    return min(ranked, key=_rank)[1]


def by_rank(ranked: list[tuple[int, str]]) -> list[str]:
    """The values best first (a stable sort: document order within a rank)."""
    if len(ranked) < 2:
        return [ranked[0][1]] if ranked else []
    return [value for _, value in sorted(ranked, key=_rank)]


def _rank(pair: tuple[int, str]) -> int:
    return pair[0]


def text_as_html(value: str) -> str:
    """A field that is plain text by its spec (``itunes:summary``, ``media:description``) as
    HTML: escaped with its line breaks kept, unless it is plainly HTML already (as feedparser
    reads it)."""
    value = value.strip()
    if _LOOKS_HTML.search(value):
        return value
    return html.escape(value, quote=False).replace("\n", "<br>\n")


@dataclass
class Extras:
    """What an element's children add up to, gathered in one pass."""

    authors: list[Person] = field(default_factory=list)
    updated_raw: list[tuple[int, str]] = field(default_factory=list)
    published_raw: list[tuple[int, str]] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    lang: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    titles: list[tuple[int, str]] = field(default_factory=list)
    bodies: list[tuple[int, str]] = field(default_factory=list)
    summaries: list[tuple[int, str]] = field(default_factory=list)

    def date(self, key: tuple[str, str], value: str) -> bool:
        """Note a published or updated date if ``key`` names one."""
        rank = PUBLISHED_RANK.get(key)
        if rank is not None:
            self.published_raw.append((rank, value))
            return True
        rank = UPDATED_RANK.get(key)
        if rank is not None:
            self.updated_raw.append((rank, value))
            return True
        return False

    def title(self, key: tuple[str, str], value: str | None) -> None:
        """Note a title candidate."""
        if value:
            self.titles.append((TITLE_RANK[key], value))

    def text(self, key: tuple[str, str], value: str | None) -> None:
        """Note a full text or summary candidate (HTML)."""
        if not value:
            return
        rank = BODY_RANK.get(key)
        if rank is not None:
            self.bodies.append((rank, value))
        else:
            self.summaries.append((SUMMARY_RANK[key], value))

    def content_and_summary(self, xml_clean: bool) -> tuple[str | None, str | None]:
        """The best full text (else the best summary) as content, and the best summary that
        differs from it: two texts at most, the rest being shorter forms of the same. Marked
        ``XMLText`` when the document was read strictly (``Reading.xml_clean``)."""
        bodies, summaries = by_rank(self.bodies), by_rank(self.summaries)
        content = bodies[0] if bodies else (summaries[0] if summaries else None)
        summary = next((s for s in summaries if s != content), None)
        if xml_clean:
            content = XMLText(content) if content else content
            summary = XMLText(summary) if summary else summary
        return content, summary


def _media_text(local: str, child: etree._Element, acc: Extras) -> None:
    """One ``media:title``/``media:description`` (``type="html"`` or plain)."""
    is_html = (child.get("type") or "").strip().lower() == "html"
    if local == "title":
        value = xmltree.text(child)
        acc.title((MEDIA, "title"), html_to_text(value).strip() if is_html else value)
    else:
        value = "".join(child.itertext()).strip()
        acc.text((MEDIA, "description"), value if is_html else text_as_html(value))


def _media_texts(el: etree._Element, acc: Extras) -> None:
    """The titles and descriptions inside ``media:group``/``media:content``."""
    for ns, local, child in children(el):
        if ns != MEDIA:
            continue
        if local in {"group", "content"}:
            _media_texts(child, acc)
        elif local in {"title", "description"}:
            _media_text(local, child, acc)


def common_extension(ns: str, local: str, child: etree._Element, acc: Extras) -> bool:
    """The vocabularies RSS items and Atom entries share: Dublin Core, Media RSS, iTunes and
    Google Play podcasts, ``content:encoded``, ``xhtml:body``. False for anything else."""
    key = (ns, local)
    if key in DATE_KEYS:
        acc.date(key, xmltree.text(child))
        return True
    if key == (DC, "creator"):
        found = person(xmltree.text(child))
        if found:
            acc.authors.append(found)
    elif key == (DC, "subject"):
        if xmltree.text(child):
            acc.categories.append(Category(term=xmltree.text(child)))
    elif key == (DC, "language"):
        acc.lang.append(xmltree.text(child))
    elif key in {(DC, "title"), (ITUNES, "title")}:
        acc.title(key, xmltree.opt(child))
    elif key == (DC, "description"):
        acc.text(key, xmltree.text(child))
    elif key in {(ITUNES, "summary"), (ITUNES, "subtitle"), (GOOGLEPLAY, "description")}:
        acc.text(key, text_as_html("".join(child.itertext())))
    elif key == (CONTENT, "encoded"):
        acc.text(key, xmltree.text(child))
    elif key == (XHTML, "body"):
        acc.text(key, xmltree.inner_markup(child).strip())
    elif ns != MEDIA:
        return False
    elif local in MEDIA_KINDS:
        media = media_object(child, MEDIA_KINDS[local])
        if media:
            acc.media.append(media)
        _media_texts(child, acc)
    elif local == "group":
        acc.media.extend(media_children(child))
        _media_texts(child, acc)
    elif local in {"title", "description"}:
        _media_text(local, child, acc)
    else:
        return False
    return True
