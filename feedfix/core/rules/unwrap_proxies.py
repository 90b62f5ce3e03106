"""unwrap-proxies: take image-proxy wrappers off every URL.

The decisions here are the rule's, whichever engine carries them out: ``convert`` on a parsed
tree (``UnwrapVisit``) and ``fix-posts`` on spans of a post's text (``feedfix.core.mend``).
Both ask ``url_kind`` which attributes hold URLs, find URLs in text with ``TEXT_URL`` and ask
the ``Unwrapper`` what each one unwraps to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import ClassVar, Literal

from lxml import etree

from feedfix.core.html import (
    SRCSET_ATTRIBUTES,
    URL_ATTRIBUTES,
    map_srcset,
    set_item,
    xml_chars,
)
from feedfix.core.html import elements as elements_below
from feedfix.core.model import Entry, Feed, Link, Media
from feedfix.core.proxies import DEFAULT_TEMPLATES, Unwrapper
from feedfix.core.rules.base import Rule, string_list
from feedfix.core.rules.walk import Attributes, Visit

# A URL written out in text (or in Markdown: ``![](…)``, ``[](…)``, ``<…>``, ``[id]: …``): it
# stops at what ends a Markdown destination or an HTML token.
TEXT_URL = re.compile(r"(?:https?:)?//[^\s<>\"'()\[\]{}`]+", re.I)


def url_kind(tag: str, name: str) -> Literal["url", "srcset"] | None:
    """Whether attribute ``name`` of a ``tag`` element holds one URL, a srcset of them, or
    neither: the URL attributes, ``data-*`` (lazy loaders keep URLs there) and a ``meta``
    element's ``content`` (``og:image`` and friends)."""
    if name in SRCSET_ATTRIBUTES:
        return "srcset"
    if name in URL_ATTRIBUTES or name.startswith("data-") or (name == "content" and tag == "meta"):
        return "url"
    return None


def unwrap_attribute(unwrap: Callable[[str], str], tag: str, name: str, value: str) -> str:
    """What an attribute's (decoded) value becomes: itself unless it holds wrapped URLs."""
    kind = url_kind(tag, name)
    if kind == "srcset":
        return map_srcset(value, unwrap)
    return unwrap(value) if kind == "url" else value


def unwrap_text(unwrap: Callable[[str], str], text: str) -> tuple[str, int]:
    """``text`` with every URL written in it unwrapped, and how many were."""
    count = 0

    def sub(match: re.Match[str]) -> str:
        nonlocal count
        new = unwrap(match.group(0))
        count += new != match.group(0)
        return new

    return TEXT_URL.sub(sub, text), count


class UnwrapVisit(Visit):
    """unwrap-proxies in the walk: each element's URL attributes; after it, URLs in text.

    Only values holding ``//`` are looked at (every wrapped URL holds one, protocol-relative
    ones included), with ``in`` at C speed before the wrapper hosts are looked for. Text is
    looked at once for the whole fragment (libxml2 joins it in C) and element by element
    only when it holds a ``//``: asking every element for its text and tail in the walk cost
    10 µs a ZAKER entry, whose text has none. (No later rule reads text in the walk, so
    unwrapping it after the walk changes nothing they see.)
    """

    attributed = True

    def __init__(self, unwrapper: Unwrapper) -> None:
        self.unwrap = unwrapper.unwrap
        self.unwrap_mentioned = unwrapper.unwrap_mentioned
        self.might_wrap = unwrapper.might_wrap

    def element(self, el: etree._Element, attributes: Attributes) -> int:
        """The element's URL attributes."""
        changed = 0
        might_wrap = self.might_wrap
        for name, value in attributes:
            if "//" in value and might_wrap(value):
                new = unwrap_attribute(self.unwrap_mentioned, str(el.tag), name, value)
                if new != value:
                    set_item(el, attributes, name, new)
                    changed += 1
        return changed

    def done(self, container: etree._Element) -> int:
        """URLs written in the fragment's text: its own and every element's text and tail."""
        every_text = etree.tostring(container, method="text", encoding="unicode", with_tail=False)
        if not self.might_wrap(every_text):
            return 0
        changed = 0
        for el in (container, *elements_below(container)):
            text = el.text
            if text and "//" in text and self.might_wrap(text):
                el.text, count = self._text(text)
                changed += count
            tail = el.tail
            if tail and el is not container and "//" in tail and self.might_wrap(tail):
                el.tail, count = self._text(tail)
                changed += count
        return changed

    def _text(self, text: str) -> tuple[str, int]:
        new, count = unwrap_text(self.unwrap, text)
        return xml_chars(new), count


class UnwrapProxies(Rule):
    """Take proxy wrappers off every URL, so images load from their origin.

    Understands the three families RSSHub's hotlink templates produce: a prefix
    (https://cors.zfour.workers.dev/?URL), a URL-encoded query parameter
    (https://images.weserv.nl/?url=URL) and host+path (https://i0.wp.com/HOST/PATH), nested,
    protocol-relative or HTML-escaped. Acts on img src/srcset/data-*, picture sources, video and
    audio src/poster, links, enclosures, media:content/thumbnail and the feed's logo and icon.
    """

    name = "unwrap-proxies"
    unit = "urls"
    default_on = True
    options: ClassVar[Mapping[str, str]] = {
        "wrappers": "wrapper templates, replacing the defaults (RSSHub HOTLINK_TEMPLATE form)",
        "extra_wrappers": "wrapper templates added to the defaults",
    }

    def __init__(
        self,
        wrappers: list[str] | None = None,
        extra_wrappers: list[str] | None = None,
    ) -> None:
        base = string_list("wrappers", wrappers) if wrappers is not None else DEFAULT_TEMPLATES
        extra = string_list("extra_wrappers", extra_wrappers) if extra_wrappers else ()
        self.unwrapper = Unwrapper.from_templates((*base, *extra))
        self._visit = UnwrapVisit(self.unwrapper)  # keeps no state: one serves every fragment

    def _url(self, url: str | None) -> str | None:
        return self.unwrapper.unwrap(url) if url else url

    def feed(self, feed: Feed) -> tuple[Feed, int]:
        """The feed's logo, icon and links."""
        logo, icon = self._url(feed.logo), self._url(feed.icon)
        links, changed = self._links(feed.links)
        changed += (logo != feed.logo) + (icon != feed.icon)
        if not changed:
            return feed, 0
        return replace(feed, logo=logo, icon=icon, links=links), changed

    def _links(self, links: tuple[Link, ...]) -> tuple[tuple[Link, ...], int]:
        out, changed = [], 0
        for link in links:
            href = self.unwrapper.unwrap(link.href)
            changed += href != link.href
            out.append(replace(link, href=href) if href != link.href else link)
        return tuple(out), changed

    def entry(self, entry: Entry) -> tuple[Entry, int]:
        """Enclosures, links and Media RSS elements."""
        links, changed = self._links(entry.links)
        media: list[Media] = []
        for item in entry.media:
            url = self.unwrapper.unwrap(item.url)
            changed += url != item.url
            media.append(replace(item, url=url) if url != item.url else item)
        if not changed:
            return entry, 0
        return replace(entry, links=links, media=tuple(media)), changed

    def visit(self) -> Visit:
        """URL attributes (src, href, poster, srcset, data-*) and URLs written out as text."""
        return self._visit
