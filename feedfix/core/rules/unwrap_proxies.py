"""unwrap-proxies: take image-proxy wrappers off every URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from lxml import etree

from feedfix.core.html import (
    SRCSET_ATTRIBUTES,
    URL_ATTRIBUTES,
    map_srcset,
    set_attr,
    xml_chars,
)
from feedfix.core.model import Entry, Feed, Link, Media
from feedfix.core.proxies import DEFAULT_TEMPLATES, Unwrapper
from feedfix.core.rules.base import Rule, string_list

_URL_IN_TEXT = re.compile(r"(?:https?:)?//[^\s<>\"'()]+")


_SLASHED = {
    "attributes": etree.XPath("descendant::*/@*[contains(., '//')]"),
    "texts": etree.XPath("descendant-or-self::*/text()[contains(., '//')]"),
}


def _with_slashes(container: etree._Element, what: str) -> list[etree._ElementUnicodeResult]:
    """The attribute values or text nodes below ``container`` that contain ``//`` (every
    wrapped URL does, protocol-relative ones included)."""
    found = _SLASHED[what](container)
    return found if isinstance(found, list) else []


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

    def html(self, container: etree._Element) -> int:
        """URL attributes (src, href, poster, srcset, data-*) and URLs written out as text.

        Only values holding ``//`` are looked at, found by XPath in C: walking every
        attribute and text node in Python cost 0.24 s of a 1,000-entry ZAKER feed (110,000
        values for 9,000 wrapped URLs); this costs a fifth of that.
        """
        unwrap, might_wrap = self.unwrapper.unwrap, self.unwrapper.might_wrap
        changed = 0
        for value in _with_slashes(container, "attributes"):
            if not might_wrap(value):
                continue
            el, name = value.getparent(), value.attrname
            if el is None or name is None:
                continue
            if name in SRCSET_ATTRIBUTES:
                new = map_srcset(value, unwrap)
            elif name in URL_ATTRIBUTES or name.startswith("data-"):
                new = unwrap(value)
            else:
                continue
            if new != value:
                set_attr(el, name, new)
                changed += 1
        for text in _with_slashes(container, "texts"):
            node = text.getparent()
            if node is not None and might_wrap(text):
                changed += self._text(node, "tail" if text.is_tail else "text")
        return changed

    def _text(self, node: etree._Element, attr: str) -> int:
        text = getattr(node, attr)
        if not text or not self.unwrapper.might_wrap(text):
            return 0
        count = 0

        def sub(match: re.Match[str]) -> str:
            nonlocal count
            new = self.unwrapper.unwrap(match.group(0))
            count += new != match.group(0)
            return new

        setattr(node, attr, xml_chars(_URL_IN_TEXT.sub(sub, text)))
        return count
