"""Atom 1.0 out of the model: deterministic bytes that validate against RFC 4287.

Serialized by hand rather than with feedgen or an lxml tree: feedgen falls back to the clock
for a missing ``updated`` and cannot carry entry ``xml:lang`` or Media RSS into Atom, and a
tree doubles the memory of a large feed. Entries are rendered one at a time
(``render_chunks``), so a caller can write a big feed out as it is cleaned. Everything here is
a function of the model: the same feed always renders to the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from feedfix import __version__
from feedfix.core.html import xml_chars
from feedfix.core.ids import absolute_iri, mend_iri
from feedfix.core.model import Category, Entry, Feed, Link, Media, Person

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "http://search.yahoo.com/mrss/"
FALLBACK_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
"""``updated`` for a feed and entries with no date anywhere: fixed, so output never drifts."""


xml_text = xml_chars


MAX_URL = 64 * 1024  # longer "URLs" are junk, and would push a reader's parser past its limits
_LANG = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")


_MIME_WORD = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
_MEDIA_TYPE = re.compile(
    rf"{_MIME_WORD}/{_MIME_WORD}(?:\s*;\s*{_MIME_WORD}=(?:{_MIME_WORD}|\"[^\"]*\"))*"
)
_SHORT_TYPES = {"html": "text/html", "xhtml": "application/xhtml+xml", "text": "text/plain"}
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+")


def language_tag(value: str | None) -> str | None:
    """A BCP 47-shaped tag for ``xml:lang`` (``zh_CN`` becomes ``zh-CN``), else ``None``."""
    if not value:
        return None
    tag = value.strip().replace("_", "-")
    return tag if _LANG.match(tag) else None


def media_type(value: str | None) -> str | None:
    """A MIME type for ``link@type``: Atom's short forms (``html``, ``xhtml``, ``text``) as
    the media types they stand for, anything else that is not ``type/subtype`` ``None``."""
    if not value:
        return None
    value = value.strip()
    if _MEDIA_TYPE.fullmatch(value):
        return value
    return _SHORT_TYPES.get(value.lower())


def email_address(value: str | None) -> str | None:
    """An ``atom:email`` value (one ``@`` with no spaces or brackets around it), else ``None``."""
    if not value:
        return None
    value = value.strip()
    return value if _EMAIL.fullmatch(value) else None


class Dropped:
    """Counts the values left out because the place they go has a grammar they break (a
    ``link@type`` of ``mp3``, an ``hreflang`` of ``English``, a ``scheme`` of ``dmoz``):
    a valid document without them beats an invalid one with them."""

    def __init__(self) -> None:
        self.count = 0

    def check(self, value: str | None, valid: str | None) -> str | None:
        """``valid`` (the mended ``value``), counting a value that had to go."""
        if value and valid is None:
            self.count += 1
        return valid


class _Uncounted(Dropped):
    """For callers that do not ask what was dropped: shared, so it keeps no count."""

    def check(self, value: str | None, valid: str | None) -> str | None:
        """``valid``, uncounted."""
        return valid


_UNCOUNTED = _Uncounted()


def _text(value: str) -> str:
    # chained str.replace runs in C; str.translate with a dict was 10x slower on 5 MB feeds
    value = xml_text(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("\r", "&#13;") if "\r" in value else value


def _attr(value: str) -> str:
    value = _text(value).replace('"', "&quot;")
    return value.replace("\n", "&#10;").replace("\t", "&#9;")


def _attrs(attrs: dict[str, str | None]) -> str:
    return "".join(
        f' {name}="{_attr(value)}"' for name, value in attrs.items() if value is not None
    )


def _el(indent: str, tag: str, text: str | None = None, **attrs: str | None) -> str:
    if text is None:
        return f"{indent}<{tag}{_attrs(attrs)}/>\n"
    return f"{indent}<{tag}{_attrs(attrs)}>{_text(text)}</{tag}>\n"


def atom_date(value: datetime) -> str:
    """RFC 3339 in UTC, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(indent: str, person: Person, dropped: Dropped) -> str:
    inner = indent + "  "
    parts = [f"{indent}<author>\n", _el(inner, "name", person.name)]
    email = dropped.check(person.email, email_address(person.email))
    if email:
        parts.append(_el(inner, "email", email))
    if person.uri:
        parts.append(_el(inner, "uri", mend_iri(person.uri.strip())))
    parts.append(f"{indent}</author>\n")
    return "".join(parts)


def _category(indent: str, category: Category, dropped: Dropped) -> str:
    scheme = category.scheme
    scheme = dropped.check(scheme, absolute_iri(scheme) if scheme else None)
    return _el(indent, "category", term=category.term, scheme=scheme, label=category.label)


def _links(indent: str, links: Iterable[Link], dropped: Dropped = _UNCOUNTED) -> str:
    """Links, with at most one alternate per (type, hreflang) as RFC 4287 requires."""
    seen: set[tuple[str, str]] = set()
    alternates: set[tuple[str, str]] = set()
    out = []
    for link in links:
        if len(link.href) > MAX_URL:
            continue
        rel = link.rel
        if rel == "hub":
            continue  # the upstream's WebSub hub does not publish this feed
        if rel == "self":
            rel = "via"  # the upstream's own address: where this feed's content came from
        kind, lang = media_type(link.type), language_tag(link.hreflang)
        if rel == "alternate":
            key = (kind or "", lang or "")  # as written: "html" and "text/html" are one type
            if key in alternates:
                rel = "related"
            alternates.add(key)
        href = mend_iri(link.href.strip())
        if (rel, href) in seen:
            continue
        seen.add((rel, href))
        length = str(link.length) if link.length and link.length > 0 else None
        out.append(
            _el(
                indent,
                "link",
                href=href,
                rel=rel,
                type=dropped.check(link.type, kind),
                hreflang=dropped.check(link.hreflang, lang),
                title=link.title,
                length=length,
            )
        )
    return "".join(out)


def _media(indent: str, media: Media) -> str:
    content = media.kind == "content"
    return _el(
        indent,
        f"media:{media.kind}",
        url=mend_iri(media.url.strip()),
        type=media.type if content else None,
        medium=media.medium if content else None,
        width=str(media.width) if media.width else None,
        height=str(media.height) if media.height else None,
    )


def render_entry(
    entry: Entry, feed_lang: str | None, when: datetime, dropped: Dropped = _UNCOUNTED
) -> str:
    """One ``<entry>``; ``when`` stands in for an entry with no date at all."""
    i = "    "
    lang = dropped.check(entry.lang, language_tag(entry.lang))
    lang = lang if lang and lang != language_tag(feed_lang) else None
    parts = [
        f"  <entry{_attrs({'xml:lang': lang})}>\n",
        _el(i, "id", entry.id or ""),
        _el(i, "title", entry.title or ""),
        _el(i, "updated", atom_date(entry.updated or entry.published or when)),
    ]
    if entry.published:
        parts.append(_el(i, "published", atom_date(entry.published)))
    parts.append(_links(i, entry.links, dropped))
    parts.extend(_person(i, person, dropped) for person in entry.authors)
    parts.extend(_category(i, category, dropped) for category in entry.categories)
    if entry.summary:
        parts.append(_el(i, "summary", entry.summary, type="html"))
    if entry.content or entry.link is None:  # an entry without content needs an alternate link
        parts.append(_el(i, "content", entry.content or "", type="html"))
    if entry.rights:
        parts.append(_el(i, "rights", entry.rights))
    parts.extend(_media(i, media) for media in entry.media if len(media.url) <= MAX_URL)
    parts.append("  </entry>\n")
    return "".join(parts)


@dataclass(frozen=True)
class FeedFacts:
    """What the feed header needs to know about all entries, gathered before they stream."""

    updated: datetime
    needs_author: bool
    has_media: bool

    @classmethod
    def of(cls, feed: Feed) -> FeedFacts:
        """Facts from the (uncleaned or cleaned) feed: rules change neither dates nor authors."""
        dates = [e.date for e in feed.entries if e.date]
        return cls(
            updated=feed.updated or max(dates, default=FALLBACK_UPDATED),
            needs_author=not feed.authors and any(not e.authors for e in feed.entries),
            has_media=any(e.media for e in feed.entries),
        )


def render_header(
    feed: Feed, facts: FeedFacts, self_url: str | None = None, dropped: Dropped = _UNCOUNTED
) -> str:
    """The XML declaration, the ``<feed>`` start tag and the feed's own elements."""
    i = "  "
    root_attrs = {
        "xmlns": ATOM,
        "xmlns:media": MEDIA if facts.has_media else None,
        "xml:lang": dropped.check(feed.lang, language_tag(feed.lang)),
    }
    parts = [
        "<?xml version='1.0' encoding='utf-8'?>\n",
        f"<feed{_attrs(root_attrs)}>\n",
        _el(i, "id", feed.id or ""),
        _el(i, "title", feed.title or ""),
    ]
    if feed.subtitle:
        parts.append(_el(i, "subtitle", feed.subtitle))
    parts.append(_el(i, "updated", atom_date(facts.updated)))
    if self_url:
        self_link = mend_iri(self_url)
        parts.append(_el(i, "link", href=self_link, rel="self", type="application/atom+xml"))
    parts.append(_links(i, feed.links, dropped))
    authors = feed.authors
    if facts.needs_author:
        authors = (Person(name=feed.title or "unknown"),)  # every entry needs an author
    parts.extend(_person(i, person, dropped) for person in authors)
    parts.extend(_category(i, category, dropped) for category in feed.categories)
    parts.append(_el(i, "generator", "feedfix", version=__version__))
    if feed.icon and len(feed.icon) <= MAX_URL:
        parts.append(_el(i, "icon", mend_iri(feed.icon.strip())))
    if feed.logo and len(feed.logo) <= MAX_URL:
        parts.append(_el(i, "logo", mend_iri(feed.logo.strip())))
    if feed.rights:
        parts.append(_el(i, "rights", feed.rights))
    return "".join(parts)


DropCounter = Callable[[int, bool], None]
"""Told how many values an element dropped, and whether that element was an entry."""


def render_chunks(
    feed: Feed,
    facts: FeedFacts,
    entries: Iterable[Entry],
    self_url: str | None = None,
    on_dropped: DropCounter | None = None,
) -> Iterator[bytes]:
    """The feed as UTF-8 chunks: header, one chunk per entry, footer."""
    dropped = Dropped()
    yield render_header(feed, facts, self_url, dropped).encode("utf-8")
    if on_dropped is not None and dropped.count:
        on_dropped(dropped.count, False)
    for entry in entries:
        dropped.count = 0
        yield render_entry(entry, feed.lang, facts.updated, dropped).encode("utf-8")
        if on_dropped is not None and dropped.count:
            on_dropped(dropped.count, True)
    yield b"</feed>\n"


def render_atom(
    feed: Feed, *, self_url: str | None = None, on_dropped: DropCounter | None = None
) -> bytes:
    """The whole feed as Atom 1.0 bytes."""
    facts = FeedFacts.of(feed)
    return b"".join(render_chunks(feed, facts, feed.entries, self_url, on_dropped))


@dataclass(frozen=True)
class Rendering:
    """A rendered feed and where each entry's bytes lie in it.

    The service renders the same feed again on every poll that brings anything new, and all
    but the new entries render to the bytes they had: ``rerender`` copies those instead
    (rendering was nearly half the work of a poll that brought one new entry). The spans
    cost a few integers per entry; the body is the one already being served.
    """

    body: bytes
    lang: str | None  # the feed's language, which an entry's xml:lang is rendered against
    updated: datetime  # what entries without a date of their own were rendered with
    # entry id -> (its stamp, start, end); an entry without a stamp is never copied
    spans: Mapping[str, tuple[str | None, int, int]]
    rendered: int  # entries rendered anew; the others were copied from the previous body


def rerender(
    feed: Feed,
    previous: Rendering | None,
    self_url: str | None = None,
    stamps: Mapping[str, str] | None = None,
) -> Rendering:
    """``render_atom(feed)``, copying the bytes of each entry whose stamp is the one it had in
    ``previous`` and that would render the same way.

    A stamp (by entry id) must change whenever the entry does: the service's is the digest
    of the entry's source and rules, so the spans hold a few strings and integers per entry
    rather than the entries themselves (which stay in the store)."""
    facts = FeedFacts.of(feed)
    header = render_header(feed, facts, self_url).encode("utf-8")
    old = previous.spans if previous is not None and previous.lang == feed.lang else {}
    same_fallback = previous is not None and previous.updated == facts.updated
    view = memoryview(previous.body) if previous is not None else memoryview(b"")
    chunks: list[bytes | memoryview] = [header]
    spans: dict[str, tuple[str | None, int, int]] = {}
    offset, rendered = len(header), 0
    for entry in feed.entries:
        key = entry.id or ""
        seen = old.get(key)
        stamp = stamps.get(key) if stamps is not None else None
        chunk: bytes | memoryview
        if (
            seen is not None
            and stamp is not None
            and seen[0] == stamp
            and (entry.date or same_fallback)
        ):
            chunk = view[seen[1] : seen[2]]
        else:
            chunk = render_entry(entry, feed.lang, facts.updated).encode("utf-8")
            rendered += 1
        spans.setdefault(key, (stamp, offset, offset + len(chunk)))
        offset += len(chunk)
        chunks.append(chunk)
    chunks.append(b"</feed>\n")
    return Rendering(b"".join(chunks), feed.lang, facts.updated, spans, rendered)
