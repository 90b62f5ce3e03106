"""HTML fragments (entry content) as lxml trees: parse once, let every rule edit, serialize once.

lxml's HTML parser is used rather than BeautifulSoup: the same edit costs about a tenth as
much, which matters at 8 images an entry and a thousand entries a feed. Its plain elements are
used, not lxml.html's, whose per-element Python class lookup cost a fifth of the run time.
The fragment is parsed as the body of a document, so stray end tags cannot break out of it.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urljoin

from lxml import etree

from feedfix.core.ids import is_plain_url, mend_iri
from feedfix.core.limits import MAX_DEPTH, LimitHits, bound_depth, bound_markup
from feedfix.core.urls import SCHEME, scheme_of

# Attributes whose whole value is one URL.
URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "poster", "action", "formaction", "background", "cite", "longdesc",
        "lowsrc", "dynsrc", "data", "codebase", "usemap", "xlink:href", "manifest", "icon",
    }
)  # fmt: skip
SRCSET_ATTRIBUTES = frozenset({"srcset", "data-srcset"})
# The void elements libxml2 does not know as void, tried one by one: it nests whatever follows
# inside them, and parse_fragment moves that back out. The others (img, br, hr, input, meta…)
# it never nests anything in.
UNKNOWN_VOID_ELEMENTS = ("bgsound", "command", "embed", "keygen", "source", "track", "wbr")
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_VOID_END_TAGS = re.compile(rf"</(?:{'|'.join(UNKNOWN_VOID_ELEMENTS)})>")
# No table of ids (nothing looks elements up by id): 8% faster. huge_tree: libxml2's depth
# cap is 2,048, not 256 (limits.py keeps the text under it and applies MAX_DEPTH itself).
_PARSER = etree.HTMLParser(
    remove_comments=True,
    remove_pis=True,
    no_network=True,
    default_doctype=False,
    collect_ids=False,
    huge_tree=True,
)
# A "<" that starts no tag: not followed by a valid (ASCII) tag name and then a space, "/" or
# ">", nor by "!" or "?". libxml2 (and an HTML5 tokenizer) would open an element named after
# whatever follows: ZAKER's "SRAM<HMB<FTL）<p>" became <hmb<ftl）<p> and its text vanished.
_STRAY_LT = re.compile(r"<(?!/?[A-Za-z][A-Za-z0-9_.:-]*[\s/>]|[!?])")
_DOCUMENT_PARTS = re.compile(r"<(?:head|title)[\s>]", re.IGNORECASE)
_HEAD_START = re.compile(r"<head[\s>]", re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_SVG = re.compile(r"<svg[\s>/]", re.IGNORECASE)
_SPECIAL_PARTS = re.compile(r"<(?:head|title|svg)[\s>/]", re.IGNORECASE)  # one scan for both
# HTML5's case adjustments for SVG (libxml2's HTML parser lowercases every name).
_SVG_TAG_NAMES = (
    "altGlyph altGlyphDef altGlyphItem animateColor animateMotion animateTransform "
    "clipPath feBlend feColorMatrix feComponentTransfer feComposite feConvolveMatrix "
    "feDiffuseLighting feDisplacementMap feDistantLight feDropShadow feFlood feFuncA "
    "feFuncB feFuncG feFuncR feGaussianBlur feImage feMerge feMergeNode feMorphology "
    "feOffset fePointLight feSpecularLighting feSpotLight feTile feTurbulence "
    "foreignObject glyphRef linearGradient radialGradient textPath"
)
_SVG_ATTRIBUTE_NAMES = (
    "attributeName attributeType baseFrequency baseProfile calcMode clipPathUnits "
    "diffuseConstant edgeMode filterUnits glyphRef gradientTransform gradientUnits "
    "kernelMatrix kernelUnitLength keyPoints keySplines keyTimes lengthAdjust "
    "limitingConeAngle markerHeight markerUnits markerWidth maskContentUnits maskUnits "
    "numOctaves pathLength patternContentUnits patternTransform patternUnits pointsAtX "
    "pointsAtY pointsAtZ preserveAlpha preserveAspectRatio primitiveUnits refX refY "
    "repeatCount repeatDur requiredExtensions requiredFeatures specularConstant "
    "specularExponent spreadMethod startOffset stdDeviation stitchTiles surfaceScale "
    "systemLanguage tableValues targetX targetY textLength viewBox viewTarget "
    "xChannelSelector yChannelSelector zoomAndPan"
)
_SVG_TAGS = {name.lower(): name for name in _SVG_TAG_NAMES.split()}
_SVG_ATTRIBUTES = {name.lower(): name for name in _SVG_ATTRIBUTE_NAMES.split()}
_ABSOLUTE = ("https://", "http://")
_PATH = ("/", "./", "../")  # a data-* value that is a path is a URL too


class XMLText(str):
    """A string known to hold only characters XML 1.0 can carry: ``xml_chars`` passes it.

    Cleaned HTML is one when its source held no character reference (only a reference can
    bring such a character into the tree); the renderer then need not look again, which cost
    it a twentieth of a ZAKER conversion (``isprintable`` over every 7 KB content)."""

    __slots__ = ()


def xml_chars(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry (lxml refuses to store them).

    A printable string has none of them, and ``isprintable`` says so at twice the speed of
    the pattern (the 1,000 ZAKER contents: 5.0 ms against 11.1; it stops at the first newline,
    so text with newlines pays little more than before)."""
    if type(value) is XMLText or value.isprintable():
        return value
    return _INVALID_XML.sub("", value)


def set_attr(el: etree._Element, name: str, value: str) -> None:
    """Set an attribute, dropping characters XML cannot carry (a character reference can
    bring a control character into a parsed value)."""
    el.set(name, xml_chars(value))


def set_item(el: etree._Element, items: list[tuple[str, str]], name: str, value: str) -> None:
    """``set_attr``, and the same change in ``items`` (the element's ``items()``, which the
    rules after this one read instead of asking lxml again)."""
    value = xml_chars(value)
    el.set(name, value)
    for index, (key, _) in enumerate(items):
        if key == name:
            items[index] = (name, value)
            return
    items.append((name, value))


def del_items(el: etree._Element, items: list[tuple[str, str]], names: set[str]) -> None:
    """Delete the named attributes of ``el``, and from ``items`` alike."""
    attrib = el.attrib
    for name in names:
        del attrib[name]
    items[:] = [item for item in items if item[0] not in names]


def parse_fragment(markup: str, hits: LimitHits | None = None) -> etree._Element:
    """The fragment as the children of a ``<body>`` element (the container).

    Text is not lost to broken markup: a ``<`` that starts no valid tag stays text. An HTML
    document pasted whole loses its own ``<head>`` and ``<title>`` (not article text), and
    SVG keeps its case-sensitive names (``viewBox``), which libxml2 lowercases. What the
    limits (``limits.py``) dropped is counted in ``hits``.
    """
    hits = hits if hits is not None else LimitHits()
    markup = _STRAY_LT.sub("&lt;", xml_chars(markup))
    tags = markup.count("<")  # at most as many elements, and as deep: most limits are far
    markup = bound_markup(markup, hits, tags)
    special = _SPECIAL_PARTS.search(markup) is not None
    document = special and _DOCUMENT_PARTS.search(markup) is not None
    if document:
        markup = _without_heads(markup)
    doc = etree.fromstring(f"<html><body>{markup}</body></html>", _PARSER)
    # find("body") without ElementPath: half its time
    body = next((child for child in doc if child.tag == "body"), None)
    if body is None:  # libxml2 always makes one, but never trust it blindly
        body = etree.SubElement(doc, "body")
    _unnest_void_elements(body)
    if tags > MAX_DEPTH:  # fewer tags cannot nest that deep
        bound_depth(body, hits)
    if document:
        etree.strip_elements(body, "title", "head", with_tail=False)
    if special and _SVG.search(markup):
        for svg in body.iter("svg"):
            _svg_case(svg)
    return body


def _without_heads(markup: str) -> str:
    """``markup`` without its ``<head>…</head>`` parts, in one pass: the pattern that did it
    looked for an end from every ``<head`` in turn (2,000 ``<head>`` without one: 75 ms,
    16,000: 4.9 s); once one has no end, none after it has."""
    parts: list[str] = []
    pos = 0
    while (start := _HEAD_START.search(markup, pos)) is not None:
        end = _HEAD_END.search(markup, start.end())
        if end is None:
            break
        parts.append(markup[pos : start.start()])
        pos = end.end()
    parts.append(markup[pos:])
    return "".join(parts)


def _svg_case(svg: etree._Element) -> None:
    """Give SVG element and attribute names their case back (the HTML5 parser's table)."""
    for el in svg.iter(etree.Element):
        if not isinstance(el.tag, str):
            continue
        el.tag = _SVG_TAGS.get(el.tag, el.tag)
        if any(name in _SVG_ATTRIBUTES for name in el.attrib):
            items = list(el.attrib.items())
            el.attrib.clear()
            for name, value in items:
                el.set(_SVG_ATTRIBUTES.get(name, name), value)


def _unnest_void_elements(container: etree._Element) -> None:
    """Move content that the parser nested inside a void element back to after it."""
    for el in list(container.iter(*UNKNOWN_VOID_ELEMENTS)):
        parent = el.getparent()
        if parent is None or (not len(el) and not el.text):
            continue
        children = list(el)
        text, tail = el.text or "", el.tail or ""
        el.text = None
        if children:
            el.tail = text or None
            children[-1].tail = ((children[-1].tail or "") + tail) or None
            index = parent.index(el)
            for offset, child in enumerate(children, 1):
                parent.insert(index + offset, child)
        else:
            el.tail = (text + tail) or None


def serialize_fragment(container: etree._Element) -> str:
    """The container's inside as HTML text.

    One ``tostring`` of the container with its tags cut off costs half as much as one per
    child (measured on the benchmark feed), which pays for sanitize's final HTML5 pass.
    """
    tag = container.tag
    if container.attrib or not isinstance(tag, str):  # <body onload=…> lands here: not a prefix
        parts = [htmllib.escape(container.text or "", quote=False)]
        parts.extend(
            etree.tostring(child, encoding="unicode", method="html", with_tail=True)
            for child in container
        )
        markup = "".join(parts)
    else:
        whole = etree.tostring(container, encoding="unicode", method="html", with_tail=False)
        start, end = f"<{tag}>", f"</{tag}>"
        markup = whole[len(start) : -len(end)] if whole.endswith(end) else whole[len(start) :]
    if next(container.iter(*UNKNOWN_VOID_ELEMENTS), None) is not None:  # half a text scan
        markup = _VOID_END_TAGS.sub("", markup)
    return markup.strip()


def html_to_text(markup: str) -> str:
    """Visible text of an HTML string (for titles and subtitles that arrive as HTML)."""
    if "<" not in markup and "&" not in markup:
        return markup
    return "".join(parse_fragment(markup).itertext())


def elements(container: etree._Element) -> Iterator[etree._Element]:
    """Every element below the container (not comments or entities)."""
    return container.iterdescendants(etree.Element)


# The name elements are given for the moment ``drop_trees`` strips them: libxml2 lowercases
# every name it parses (and lxml matches names case-sensitively), so no element has it.
_DROPPED = "FeedfixDropped"


def drop_trees(container: etree._Element, elements: Iterable[etree._Element]) -> None:
    """Remove each element (below ``container``) and everything inside it, keeping the text
    that follows it; elements already removed are passed over.

    All in one pass in C (``strip_elements``): removed one at a time, each one's tail was
    joined onto the text before it, the same text growing again and again, and 16,000
    dropped siblings took seconds. The removed elements keep their names.
    """
    named = [(el, el.tag) for el in elements if el.getparent() is not None]
    if not named:
        return
    for el, _ in named:
        el.tag = _DROPPED
    etree.strip_elements(container, _DROPPED, with_tail=False)
    for el, tag in named:
        el.tag = tag


def map_srcset(value: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to each URL of a ``srcset``, keeping the descriptors."""
    out = []
    for part in value.split(","):
        pieces = part.strip().split(None, 1)
        if not pieces:
            continue
        url = fn(pieces[0])
        out.append(" ".join([url, *pieces[1:]]))
    return ", ".join(out)


def resolve(url: str, base: str | None) -> str:
    """``url`` made absolute against ``base``; unchanged when either makes that impossible."""
    url = url.strip()
    if not base or not url or SCHEME.match(url) or url.startswith("#"):
        return url
    try:
        return urljoin(base, url)
    except ValueError:
        return url


# What resolving does with an attribute, by name, remembered for the names met (a bounded
# table: one dictionary lookup an attribute instead of four tests cost a fifth of resolving).
_OTHER, _URL, _DATA, _SRCSET, _DATA_SRCSET = range(5)
_KINDS: dict[str, int] = {}
_MAX_KINDS = 4096


def _kind(name: str) -> int:
    if name in URL_ATTRIBUTES:
        kind = _URL
    elif name.startswith("data-"):
        kind = _DATA_SRCSET if name in SRCSET_ATTRIBUTES else _DATA
    else:
        kind = _SRCSET if name in SRCSET_ATTRIBUTES else _OTHER
    if len(_KINDS) < _MAX_KINDS:
        _KINDS[name] = kind
    return kind


class Resolver:
    """Makes relative URL attributes absolute against ``base``, one element at a time."""

    def __init__(self, base: str) -> None:
        self.base = base

    def element(self, el: etree._Element, attributes: list[tuple[str, str]]) -> int:
        """One element's relative URL attributes (``attributes``: its ``items()``) made
        absolute; returns how many changed."""
        changed = 0
        kinds = _KINDS
        for name, value in attributes:
            kind = kinds.get(name)
            if kind is None:
                kind = _kind(name)
            if kind == _OTHER:
                continue
            if kind == _URL or (kind != _SRCSET and value.startswith(_PATH)):  # data-*: a path
                if value.startswith(_ABSOLUTE) and not value[-1].isspace():
                    continue  # already absolute: the common case, checked without resolve()
                new = resolve(value, self.base)
            elif kind >= _SRCSET:
                new = map_srcset(value, lambda u: resolve(u, self.base))
            else:
                continue
            if new != value:
                set_item(el, attributes, name, new)
                changed += 1
        return changed


_WEB_SCHEMES = {None, "http", "https"}


# In serialized HTML, an href/src value that still holds what an IRI cannot: libxml2's
# serializer already escapes spaces, quotes and non-ASCII there, but not "{}|^`\\" or a "%"
# that starts no escape. Only a fragment with one needs encode_url_attributes' tree walk.
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNUSUAL_URL = re.compile(r"""\s(?:href|src)="[^"]*?(?:[{}|^`\\]|%(?![0-9A-Fa-f]{2}))""")


def has_unusual_url(html: str) -> bool:
    """True when serialized ``html`` may hold an href/src that ``encode_url_attributes``
    would change (a cheap scan of the text, instead of a walk of the tree)."""
    suspect = any(char in html for char in "{}|^`\\") or (
        "%" in html and _BAD_PERCENT.search(html) is not None
    )  # str's "in" runs at memchr speed, a regex character class at a tenth of it
    return suspect and _UNUSUAL_URL.search(html) is not None


def encode_url_attributes(container: etree._Element) -> int:
    """Percent-encode what an IRI cannot hold (``{}|^``, a stray ``%``) in every web
    ``href``/``src``; returns how many changed. Run after sanitizing: an obfuscated
    ``java&#9;script:`` must meet the sanitizer as written, not as ``java%09script:``."""
    changed = 0
    for value in container.xpath(".//@href | .//@src"):
        if is_plain_url(value) or scheme_of(value) not in _WEB_SCHEMES:
            continue
        mended = mend_iri(value.strip())
        if mended != value:
            value.getparent().set(value.attrname, mended)
            changed += 1
    return changed
