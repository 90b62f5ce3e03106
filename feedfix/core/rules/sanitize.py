"""sanitize: remove what could run code or change the reader's page, keep all the article."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlsplit

from lxml import etree

from feedfix.core.html import (
    SRCSET_ATTRIBUTES,
    URL_ATTRIBUTES,
    drop_tag,
    drop_tree,
    elements,
    set_attr,
    srcset_urls,
)
from feedfix.core.rules.base import Rule, string_list

# Removed with everything inside them: code, styling of the reader's page, plug-ins, frames.
DROP_WITH_CONTENT = frozenset(
    {
        "script", "style", "embed", "applet", "base", "meta", "link", "frame", "frameset",
        "iframe", "param", "template", "xml", "import", "bgsound", "layer", "ilayer",
        "input", "keygen", "portal", "noembed", "noframes",
        # SVG's animation elements can set an attribute (e.g. href) to a javascript: URL
        "animate", "set", "animatemotion", "animatetransform", "handler", "listener",
    }
)  # fmt: skip
# Removed, but their children (fallback content, article text) stay.
DROP_TAG_ONLY = frozenset(
    {"form", "object", "fieldset", "label", "optgroup", "option", "button", "select", "textarea"}
)
DANGEROUS_SCHEMES = frozenset({"javascript", "vbscript", "livescript", "mocha", "jscript"})
SAFE_DATA_TYPES = re.compile(r"^data:image/(?:png|gif|jpe?g|webp|avif|bmp|x-icon)[;,]")
DEFAULT_IFRAME_HOSTS = (
    "www.youtube.com",
    "www.youtube-nocookie.com",
    "player.vimeo.com",
    "player.bilibili.com",
    "v.qq.com",
)
IFRAME_SANDBOX = "allow-scripts allow-same-origin allow-popups allow-presentation"
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]+")
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)")
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.S)
_CSS_DANGER = ("expression(", "javascript:", "vbscript:", "-moz-binding", "behavior:", "@import")
_ATTRIBUTES_TO_DROP = frozenset({"srcdoc", "formaction", "action", "http-equiv"})


def _normalized_url(value: str) -> str:
    """A URL as a browser would read its scheme: entities decoded, invisible characters gone."""
    for _ in range(3):
        decoded = htmllib.unescape(value)
        if decoded == value:
            break
        value = decoded
    return _INVISIBLE.sub("", value).lower()


def is_dangerous_url(value: str) -> bool:
    """``javascript:``, ``vbscript:`` and ``data:`` (other than plain images) in any disguise."""
    url = _normalized_url(value)
    scheme, colon, _ = url.partition(":")
    if not colon or not scheme.isascii() or "/" in scheme or "?" in scheme or "#" in scheme:
        return False
    if scheme in DANGEROUS_SCHEMES:
        return True
    return scheme == "data" and not SAFE_DATA_TYPES.match(url)


def is_dangerous_style(value: str) -> bool:
    """CSS that can run script (IE ``expression``, bindings) or import more CSS."""

    def unescape(match: re.Match[str]) -> str:
        if match.group(1):
            try:
                return chr(int(match.group(1), 16))
            except (ValueError, OverflowError):
                return ""
        return match.group(2)

    css = _CSS_ESCAPE.sub(unescape, _CSS_COMMENT.sub("", htmllib.unescape(value)))
    css = _INVISIBLE.sub("", css).lower()
    return any(marker in css for marker in _CSS_DANGER) or (
        "url(" in css and any(s in css for s in ("url(javascript", "url(vbscript", "url(data:text"))
    )


class Sanitize(Rule):
    """Remove scripts, event handlers and javascript: URLs; keep everything harmless.

    Removes script, style, form, object, embed and iframe elements (iframes from the allowed
    video hosts stay, sandboxed), every on* attribute including ZAKER's bare onclick, and
    javascript:/vbscript:/data:text/html URLs in all their case, entity and whitespace
    disguises. Text, images, links and formatting stay.
    """

    name = "sanitize"
    unit = "elements and attributes"
    default_on = True
    options: ClassVar[Mapping[str, str]] = {
        "iframe_hosts": "hosts whose iframes (video players) are kept, sandboxed"
    }

    def __init__(self, iframe_hosts: list[str] | None = None) -> None:
        hosts = (
            string_list("iframe_hosts", iframe_hosts)
            if iframe_hosts is not None
            else DEFAULT_IFRAME_HOSTS
        )
        self.iframe_hosts = frozenset(h.lower() for h in hosts)

    def html(self, container: etree._Element) -> int:
        """Walk the fragment once; drop elements, then attributes of what stays."""
        changed = 0
        drop: list[etree._Element] = []
        unwrap: list[etree._Element] = []
        for el in elements(container):
            tag = el.tag.lower() if isinstance(el.tag, str) else ""
            if tag == "iframe" and self._allowed_iframe(el):
                changed += self._sandbox(el)
            elif tag in DROP_WITH_CONTENT or tag.rpartition(":")[2] == "script":
                drop.append(el)
                continue
            elif tag in DROP_TAG_ONLY:
                unwrap.append(el)
            changed += self._clean_attributes(el)
        for el in drop:
            if el.getparent() is not None:
                drop_tree(el)
                changed += 1
        for el in unwrap:
            if el.getparent() is not None:
                drop_tag(el)
                changed += 1
        return changed

    def _clean_attributes(self, el: etree._Element) -> int:
        changed = 0
        for name, value in list(el.attrib.items()):
            lowered = name.lower()
            bad = (
                lowered.startswith("on")
                or lowered in _ATTRIBUTES_TO_DROP
                or (lowered == "style" and is_dangerous_style(value))
                or (
                    (lowered in URL_ATTRIBUTES or lowered.startswith("data-"))
                    and is_dangerous_url(value)
                )
                or (
                    lowered in SRCSET_ATTRIBUTES
                    and any(is_dangerous_url(u) for u in srcset_urls(value))
                )
                or (lowered == "values" and "script" in _normalized_url(value))
            )
            if bad:
                del el.attrib[name]
                changed += 1
        return changed

    def _allowed_iframe(self, el: etree._Element) -> bool:
        src = (el.get("src") or "").strip()
        if src.startswith("//"):
            src = "https:" + src
        try:
            parts = urlsplit(src)
        except ValueError:
            return False
        return parts.scheme == "https" and (parts.hostname or "") in self.iframe_hosts

    def _sandbox(self, el: etree._Element) -> int:
        src = (el.get("src") or "").strip()
        changed = 0
        if src.startswith("//"):
            set_attr(el, "src", "https:" + src)
            changed += 1
        if el.get("sandbox") != IFRAME_SANDBOX:
            el.set("sandbox", IFRAME_SANDBOX)
            changed += 1
        return changed
