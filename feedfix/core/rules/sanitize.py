"""sanitize: keep only what an article needs (an allowlist), so nothing can run or restyle a page.

Two passes over one allowlist (``rules/allowlist.py``):

1. The tree pass (``visit``), on libxml2's parse, in the walk the other rules share: it turns
   raw-text elements into ``<pre>``, drops the elements outside the allowlist (with their
   content for code, frames, SVG and the page's title; unwrapped otherwise), every attribute
   outside it, URLs whose scheme is not http/https/mailto/tel, CSS that can run script or
   load something, and iframes from other hosts. It is what ``--explain`` counts.
2. The final pass (``finish``), on the serialized fragment: nh3 (ammonia over html5ever)
   parses it as HTML5, as readers do, applies the same allowlist per element, adds
   ``rel="noopener noreferrer"`` to links and ``sandbox`` to iframes, and writes HTML5
   that parses back to the same tree. Whatever libxml2's HTML4 parse and a reader's HTML5
   parse see differently, this pass sees the reader's way. (ammonia checks neither
   ``srcset``, ``cite`` nor CSS values: the tree pass does.)

Cost, measured on ``benchmarks/make_feed.py``'s 1,000 ZAKER items (CPU time, 2-core shared VM):
the denylist walk this replaces cost ~72 ms; the tree pass costs ~31 ms and nh3 ~74 ms. The
difference is paid by work made cheaper in ``html.py`` (one ``tostring`` per fragment, the
void-element fix-up only where libxml2 needs it, absolute URLs not resolved again), so the
allowlist costs 0 to 5%: ``clean_html`` over the feed, main -> this, 0.554 -> 0.563 s,
0.537 -> 0.538 s and 0.543 -> 0.570 s (three sessions); a whole ``feedfix convert`` 0.96 ->
0.92 s and 0.82 -> 0.81 s CPU (best of 7; medians +2% and +3.5%). That is about +0.05x on
feedfix/floor, which was 2.59x and 2.51x in ``bench_convert.py --items 1000 --repeat 3`` before
the work on a quieter machine; the wall-clock runs during it (load 4 to 15) gave 2.0x to 5.6x
for main and this alike.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlsplit

import nh3
from lxml import etree

from feedfix.core.html import del_items, drop_trees, set_attr
from feedfix.core.rules.allowlist import (
    ALLOWED_TAGS,
    ANY_TAG_ATTRIBUTES,
    CLEAN_CONTENT_TAGS,
    DROP_WITH_CONTENT,
    GLOBAL_ATTRIBUTES,
    RAW_TEXT_AS_PRE,
    SRCSET_VALUED,
    STYLE_PROPERTIES,
    TAG_ATTRIBUTES,
    URL_SCHEMES,
    URL_VALUED,
)
from feedfix.core.rules.base import Rule, string_list
from feedfix.core.rules.walk import ALWAYS, WITH_ATTRIBUTES, Attributes, Visit

DEFAULT_IFRAME_HOSTS = (
    "www.youtube.com",
    "www.youtube-nocookie.com",
    "player.vimeo.com",
    "player.bilibili.com",
    "v.qq.com",
)
IFRAME_SANDBOX = "allow-scripts allow-same-origin allow-popups allow-presentation"
LINK_REL = "noopener noreferrer"
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]+")
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)")
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.S)
_CSS_DANGER = ("expression(", "javascript:", "vbscript:", "-moz-binding", "behavior:", "@import")
# data-* attributes stay (unwrap-proxies and lazy-load readers use them); no browser loads
# them, so only values with a scheme that can run script are refused there.
_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "livescript:", "mocha:", "jscript:", "data:")
_DATA_RASTER = tuple(f"data:image/{t}" for t in ("png", "gif", "jpeg", "jpg", "webp", "avif"))
# Allowed attributes whose value needs no check.
_PLAIN_ATTRIBUTES = ANY_TAG_ATTRIBUTES - URL_VALUED - SRCSET_VALUED - {"style"}


def _normalized_url(value: str) -> str:
    """A URL as a browser would read its scheme: entities decoded, invisible characters gone."""
    for _ in range(3):
        decoded = htmllib.unescape(value)
        if decoded == value:
            break
        value = decoded
    return _INVISIBLE.sub("", value).lower()


def is_allowed_url(value: str) -> bool:
    """A relative URL, or one whose scheme is in URL_SCHEMES, in whatever disguise it comes."""
    if value.startswith(("https://", "http://")):
        return True  # the common case, and no disguise can hide behind a literal prefix
    url = _normalized_url(value)
    scheme, colon, _ = url.partition(":")
    if not colon or "/" in scheme or "?" in scheme or "#" in scheme:
        return True  # no scheme: a relative URL (the colon is in its path, query or fragment)
    return scheme in URL_SCHEMES


def _has_script_scheme(value: str) -> bool:
    """A ``data-*`` value that a reader's lazy-load script could turn into a script URL."""
    url = _normalized_url(value)
    return url.startswith(_SCRIPT_SCHEMES) and not url.startswith(_DATA_RASTER)


def is_dangerous_style(value: str) -> bool:
    """CSS that can run script (IE ``expression``, bindings) or load something (``url()``)."""

    def unescape(match: re.Match[str]) -> str:
        if match.group(1):
            try:
                return chr(int(match.group(1), 16))
            except (ValueError, OverflowError):
                return ""
        return match.group(2)

    css = _CSS_ESCAPE.sub(unescape, _CSS_COMMENT.sub("", htmllib.unescape(value)))
    css = _INVISIBLE.sub("", css).lower()
    return any(marker in css for marker in _CSS_DANGER) or "url(" in css


def _final_cleaner(iframes: bool) -> nh3.Cleaner:
    """The HTML5 pass: the allowlist per element, rel on links, sandbox on iframes."""
    tags = set(ALLOWED_TAGS) if iframes else set(ALLOWED_TAGS - {"iframe"})
    attributes = {tag: set(names) for tag, names in TAG_ATTRIBUTES.items() if tag in tags}
    attributes["*"] = set(GLOBAL_ATTRIBUTES)
    return nh3.Cleaner(
        tags=tags,
        clean_content_tags=set(CLEAN_CONTENT_TAGS) | ({"iframe"} - tags),
        attributes=attributes,
        strip_comments=True,
        link_rel=LINK_REL,
        set_tag_attribute_values={"iframe": {"sandbox": IFRAME_SANDBOX}} if iframes else None,
        generic_attribute_prefixes={"data-"},
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(STYLE_PROPERTIES),
    )


class Sanitize(Rule):
    """Keep only the elements, attributes and URL schemes an article needs; drop the rest.

    An allowlist: text structure, headings, lists, tables, code/pre, blockquote, links (given
    rel="noopener noreferrer"), img with src/srcset/sizes/width/height/alt/referrerpolicy,
    picture/source, figure/figcaption, video/audio with their sources and posters, and
    iframes from the allowed video hosts (sandboxed). Everything else goes: script, style,
    forms, objects, frames, svg, math, title, noscript, unknown elements (their text stays),
    every on* handler and unknown attribute (data-* stay, minus script URLs), and URLs other
    than http, https, mailto and tel (relative URLs are resolved first). data: images go
    too: in feeds they are lazy-load placeholders that fix-lazy-images replaces, and the
    final pass's schemes hold for every URL attribute, links included. Checked last as an
    HTML5 parser (a reader) reads the fragment.
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
        self._cleaner = _final_cleaner(iframes=bool(self.iframe_hosts))

    def visit(self) -> Visit:
        """The tree pass: in the walk, elements outside the list are noted and the attributes
        of the rest cleaned; after it, the noted elements go and iframes are checked."""
        return _SanitizeVisit(self)

    def finish(self, markup: str) -> str:
        """The final pass: the same allowlist, as an HTML5 reader parses the fragment."""
        return self._cleaner.clean(markup)

    def keep_iframes(self, container: etree._Element, iframes: list[etree._Element]) -> int:
        """Players from allowed hosts sandboxed and emptied; every other iframe goes."""
        changed = 0
        dropped: list[etree._Element] = []
        for el in iframes:
            if el.getparent() is None:
                continue
            if self._allowed_iframe(el):
                changed += self._sandbox(el)
            else:
                dropped.append(el)
        drop_trees(container, dropped)
        return changed + len(dropped)

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
        if el.text or len(el):  # fallback content no browser shows, raw text to HTML5
            el.text = None
            for child in list(el):
                el.remove(child)
            changed += 1
        if el.get("sandbox") != IFRAME_SANDBOX:
            el.set("sandbox", IFRAME_SANDBOX)
            changed += 1
        return changed


class _SanitizeVisit(Visit):
    """The tree pass over one fragment (it keeps what it found in that fragment)."""

    reshapes = True

    @classmethod
    def wants(cls, tag: str) -> int:
        """Every element outside the list and every iframe; the others for their attributes."""
        return ALWAYS if tag not in ALLOWED_TAGS or tag == "iframe" else WITH_ATTRIBUTES

    def __init__(self, rule: Sanitize) -> None:
        self.rule = rule
        self.unlisted: list[etree._Element] = []
        self.iframes: list[etree._Element] = []

    def element(self, el: etree._Element, attributes: Attributes) -> int:
        """An element outside the list is noted; the attributes of the others are cleaned."""
        tag = el.tag
        if tag not in ALLOWED_TAGS:
            self.unlisted.append(el)
            return 0
        if tag == "iframe":
            self.iframes.append(el)
        for name, _ in attributes:
            if name not in _PLAIN_ATTRIBUTES:
                return _clean_attributes(el, attributes)
        return 0

    def done(self, container: etree._Element) -> int:
        """The noted elements go, then each iframe is kept (sandboxed) or dropped."""
        changed = _drop_unlisted(container, self.unlisted) if self.unlisted else 0
        if self.iframes:  # after the attributes: sandbox is not a listed attribute
            changed += self.rule.keep_iframes(container, self.iframes)
        return changed


def _clean_attributes(el: etree._Element, attributes: Attributes) -> int:
    """Drop the attributes outside the list, URLs outside the schemes, and scripted CSS."""
    bad_names: set[str] = set()
    for name, value in attributes:
        if name in _PLAIN_ATTRIBUTES:
            continue
        if name in URL_VALUED:
            if value.startswith(("https://", "http://")):
                continue  # the common case, and no disguise hides behind a literal prefix
            bad = not is_allowed_url(value)
        elif name in SRCSET_VALUED:
            # Each candidate whole, spaces squeezed out: "java\tscript:…" is not "java".
            bad = not all(is_allowed_url(candidate) for candidate in value.split(","))
        elif name == "style":
            bad = is_dangerous_style(value)
        elif name.startswith("data-"):
            bad = _has_script_scheme(value)
        else:
            bad = True
        if bad:
            bad_names.add(name)
    if bad_names:
        del_items(el, attributes, bad_names)
    return len(bad_names)


def _drop_unlisted(container: etree._Element, unlisted: list[etree._Element]) -> int:
    """Raw-text elements become <pre>; what must go with its content goes; the rest unwrapped.

    Dropping and unwrapping are done by name in C (``strip_elements``, ``strip_tags``), each
    in one walk: one element at a time costs a walk over its siblings, and 100,000 unknown
    siblings took 24 s.
    """
    changed = 0
    gone: set[etree._Element] = set()  # inside what is dropped: neither counted nor looked at
    drop: set[str] = set()
    unwrap: set[str] = set()
    for el in unlisted:
        if el in gone:
            continue
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in RAW_TEXT_AS_PRE:
            gone.update(el.iterdescendants())
            _as_pre(el)
        elif tag.rpartition(":")[2] in DROP_WITH_CONTENT:
            gone.update(el.iterdescendants())
            drop.add(tag)
        else:
            unwrap.add(tag)
        changed += 1
    if drop:
        etree.strip_elements(container, *drop, with_tail=False)
    if unwrap:
        etree.strip_tags(container, *unwrap)
    return changed


def _as_pre(el: etree._Element) -> None:
    """xmp/plaintext/listing as the <pre> text a reader shows (libxml2 read it as raw text);
    a listing's children, which libxml2 parses, go with their text."""
    text = el.text or ""
    if el.tag == "plaintext":
        text = _swallowed_end_removed(text)
    el.tag = "pre"
    el.attrib.clear()
    for child in list(el):
        el.remove(child)  # its tail with it: one at a time, never text joined again and again
    el.text = text or None


def _swallowed_end_removed(text: str) -> str:
    """``text`` without the ``</body>`` and ``</html>`` (and spaces) that libxml2 lets a
    <plaintext> swallow from the end of the document it was given.

    Scanned from the end, not with a pattern: ``(?:</body>)?\\s*(?:</html>)?\\s*$`` tried
    every space of ``<plaintext>a`` + 1,600 spaces + ``b`` against every other (cubic)."""
    text = text.rstrip()
    if text[-7:].lower() == "</html>":
        text = text[:-7].rstrip()
    if text[-7:].lower() == "</body>":
        text = text[:-7]
    return text
