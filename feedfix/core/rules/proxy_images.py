"""proxy-images: point image URLs at feedfix's own signed image proxy.

The step that replaces the worker RSSHub's wrapper stood for. It runs after every other rule
(a wrapped URL is unwrapped first, so nothing is proxied twice) and is configured by
``[images]`` rather than ``[rules]``: it needs the public ``base_url`` and the signing key.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from lxml import etree

from feedfix.core.html import map_srcset, set_item
from feedfix.core.imagesign import NO_REFERER, PREFIX, Referer, parse_referer, proxied
from feedfix.core.model import Entry, Feed, Link, Media
from feedfix.core.rules.base import Rule
from feedfix.core.rules.walk import Attributes, Visit

Mode = Literal["off", "http", "all"]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".bmp", ".ico")


@dataclass(frozen=True)
class HostRule:
    """How to treat images of hosts matching ``pattern`` (a glob such as ``*.sinaimg.cn``).

    ``referer``: proxy these images and send this Referer (hosts that refuse a foreign one).
    ``https``: True rewrites ``http://`` to ``https://`` without proxying (the host serves
    both); False keeps ``http://`` (and so proxies it when the mode is ``http``).
    """

    pattern: str
    referer: Referer | None = None
    https: bool | None = None

    def matches(self, host: str) -> bool:
        """Glob match on the lower-cased host name."""
        return fnmatch.fnmatchcase(host, self.pattern.lower())


# Hosts known to refuse a foreign or empty Referer (RSSHub's own lists and the issues of
# Miniflux and RSSHub): their images load only through the proxy with the site's Referer.
DEFAULT_HOST_RULES: tuple[HostRule, ...] = (
    HostRule("*.sinaimg.cn", Referer("fixed", "https://weibo.com/")),
    HostRule("*.weibocdn.com", Referer("fixed", "https://weibo.com/")),
    HostRule("i.pximg.net", Referer("fixed", "https://www.pixiv.net/")),
    HostRule("*.hdslb.com", Referer("fixed", "https://www.bilibili.com/")),
    HostRule("*.doubanio.com", Referer("fixed", "https://www.douban.com/")),
    HostRule("mmbiz.qpic.cn", NO_REFERER),
    HostRule("*.zhimg.com", NO_REFERER),
)


@dataclass(frozen=True)
class ImageProxySettings:
    """Everything the step needs: the mode, where the proxy is and how to sign for it."""

    mode: Mode
    base_url: str
    key: bytes = field(repr=False)  # a secret: kept out of any log line or traceback
    hosts: tuple[HostRule, ...] = DEFAULT_HOST_RULES  # configured rules first, then defaults

    @property
    def fingerprint(self) -> str:
        """Changes with anything that changes the output: mode, base URL, host rules, key
        (as a digest: the fingerprint is stored in the clear)."""
        import hashlib  # noqa: PLC0415 - see imagesign.signature

        digest = hashlib.sha256(
            repr((self.mode, self.base_url, self.hosts)).encode() + b"\x00" + self.key
        )
        return "images:" + digest.hexdigest()[:32]

    def rule_for(self, host: str) -> HostRule | None:
        """The first host rule that matches."""
        return next((rule for rule in self.hosts if rule.matches(host)), None)

    def rewrite(self, url: str) -> str:
        """The URL a reader should load ``url`` from (``url`` itself when left alone)."""
        try:
            parts = urlsplit(url)
        except ValueError:  # not a URL (an unclosed "[", a bad IPv6 host): left as it is
            return url
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if self.mode == "off" or scheme not in ("http", "https") or not host:
            return url
        if url.startswith(self.base_url.rstrip("/") + PREFIX):
            return url  # already ours
        rule = self.rule_for(host)
        if rule is not None and rule.https and scheme == "http":
            url, scheme = urlunsplit(parts._replace(scheme="https")), "https"
            if self.mode == "http" and rule.referer is None:
                return url
        explicit = rule is not None and rule.referer is not None
        if self.mode == "all" or scheme == "http" or explicit:
            referer = rule.referer if rule is not None and rule.referer is not None else NO_REFERER
            return proxied(self.base_url, self.key, url, referer)
        return url


def host_rules(table: Mapping[str, Mapping[str, object]]) -> tuple[HostRule, ...]:
    """``[images.hosts]`` entries, then the defaults they don't name (config wins)."""
    configured: list[HostRule] = []
    for pattern, options in table.items():
        unknown = sorted(set(options) - {"referer", "https"})
        if unknown:
            raise ValueError(f"{pattern}: unknown option {unknown[0]!r} (options: https, referer)")
        referer = options.get("referer")
        https = options.get("https")
        if referer is not None and not isinstance(referer, str):
            raise ValueError(f"{pattern}.referer: expected a string")
        if https is not None and not isinstance(https, bool):
            raise ValueError(f"{pattern}.https: expected true or false")
        try:
            policy = parse_referer(referer) if referer is not None else None
        except ValueError as exc:
            raise ValueError(f"{pattern}.referer: {exc}") from exc
        configured.append(HostRule(pattern, policy, https))
    named = {rule.pattern for rule in configured}
    return (*configured, *(r for r in DEFAULT_HOST_RULES if r.pattern not in named))


def _is_image_link(link: Link) -> bool:
    if link.rel != "enclosure":
        return False
    if link.type:
        return link.type.lower().startswith("image/")
    return _path(link.href).lower().endswith(IMAGE_EXTENSIONS)


def _path(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:  # not a URL: no image of ours
        return ""


def _is_image_media(item: Media) -> bool:
    if item.kind == "thumbnail":
        return True
    if item.medium:
        return item.medium == "image"
    if item.type:
        return item.type.lower().startswith("image/")
    return _path(item.url).lower().endswith(IMAGE_EXTENSIONS)


class ProxyImages(Rule):
    """Serve images through feedfix's own signed, caching image proxy ([images] proxy).

    With proxy = "http", http:// images (mixed content in an HTTPS reader) and those of hosts
    that refuse a foreign Referer; with "all", every image. Acts on img src and each srcset
    candidate, picture sources, video posters, image enclosures, media:thumbnail and image
    media:content, and the feed's logo and icon. Links to pages stay as they are.
    """

    name = "proxy-images"
    unit = "images"
    default_on = False
    options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, settings: ImageProxySettings) -> None:
        self.settings = settings
        self._visit = _ProxyVisit(settings)

    def is_active(self) -> bool:
        """On whenever a mode other than off is set."""
        return self.settings.mode != "off"

    def feed(self, feed: Feed) -> tuple[Feed, int]:
        """The feed's logo and icon."""
        logo = self.settings.rewrite(feed.logo) if feed.logo else feed.logo
        icon = self.settings.rewrite(feed.icon) if feed.icon else feed.icon
        changed = (logo != feed.logo) + (icon != feed.icon)
        return (replace(feed, logo=logo, icon=icon), changed) if changed else (feed, 0)

    def entry(self, entry: Entry) -> tuple[Entry, int]:
        """Image enclosures and Media RSS images."""
        changed = 0
        links: list[Link] = []
        for link in entry.links:
            href = self.settings.rewrite(link.href) if _is_image_link(link) else link.href
            changed += href != link.href
            links.append(replace(link, href=href) if href != link.href else link)
        media: list[Media] = []
        for item in entry.media:
            url = self.settings.rewrite(item.url) if _is_image_media(item) else item.url
            changed += url != item.url
            media.append(replace(item, url=url) if url != item.url else item)
        if not changed:
            return entry, 0
        return replace(entry, links=tuple(links), media=tuple(media)), changed

    def visit(self) -> Visit:
        """img src and srcset, a picture's source srcset/src, video poster."""
        return self._visit


class _ProxyVisit(Visit):
    tags = frozenset({"img", "source", "video"})

    def __init__(self, settings: ImageProxySettings) -> None:
        self.rewrite = settings.rewrite

    def element(self, el: etree._Element, attributes: Attributes) -> int:
        changed = 0
        for name in _attributes(el):
            value = el.get(name)
            if not value:
                continue
            if name.endswith("srcset"):
                new = map_srcset(value, self.rewrite)
            else:
                new = self.rewrite(value.strip())
            if new != value:
                set_item(el, attributes, name, new)
                changed += 1
        return changed


def _attributes(el: etree._Element) -> Iterable[str]:
    if el.tag == "img":
        return ("src", "srcset")
    if el.tag == "video":
        return ("poster",)
    parent = el.getparent()  # <source>: only a picture's sources are images
    return ("srcset", "src") if parent is not None and parent.tag == "picture" else ()
