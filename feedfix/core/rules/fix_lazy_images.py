"""fix-lazy-images: give lazy-loaded images their real ``src``.

``FixLazyImages.image_edits`` is the rule's one decision, what an img's attributes should
become, made on their values; ``convert`` carries it out on a parsed tree (``LazyVisit``) and
``fix-posts`` on spans of a post's text (``feedfix.core.mend``), so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from lxml import etree

from feedfix.core.proxies import DEFAULT_TEMPLATES, Unwrapper
from feedfix.core.rules.base import Rule, string_list
from feedfix.core.rules.walk import Attributes, Visit

LAZY_SOURCES = ("data-original", "data-src", "data-lazy-src", "data-actualsrc", "data-echo")
PLACEHOLDERS = ("data:", "about:blank", "javascript:")
DEFAULT_LAZY_CLASSES = ("lazy", "lazyload", "lazyloading", "opacity_0")
_PIXEL_NAMES = ("blank.gif", "pixel.gif", "spacer.gif", "1x1.gif", "grey.gif", "placeholder")
_IMG = frozenset({"img"})
_SIZES = (("width", "data-width"), ("height", "data-height"))


ImageEdit = tuple[Literal["move", "set", "delete"], str, str, str]
"""One change to an img's attributes, as ``(kind, name, value, target)``.

``move``: ``target`` takes ``value`` (``name``'s value, stripped) and ``name`` goes (where
``target`` is not there yet, a span engine renames ``name``); ``set``: ``name`` becomes
``value``; ``delete``: ``name`` goes. Plain tuples: a NamedTuple's constructor cost a third
of the rule's time on a ZAKER feed."""
# What the questions after the first read: only a source named like one of them needs the
# first answer carried over to them.
_READ_LATER = frozenset(
    {"data-srcset", "srcset", "data-width", "width", "data-height", "height", "class"}
)


def is_placeholder(src: str) -> bool:
    """A src that only holds the place of the real image: none, a data: URI, a 1x1 gif…"""
    lowered = src.lower()
    return not src or lowered.startswith(PLACEHOLDERS) or lowered.endswith(_PIXEL_NAMES)


class FixLazyImages(Rule):
    """Give lazy-loaded images their real src, size and visibility.

    Where an img's src is missing, a placeholder (a data: URI, a 1x1 gif, about:blank) or a
    wrapped copy of its data-original/data-src, the real URL becomes src; data-width and
    data-height become width and height; lazy-load classes that hide the image (lazy,
    opacity_0) go. referrerpolicy="no-referrer" stays: it lets hotlink-protected images load.
    """

    name = "fix-lazy-images"
    unit = "images"
    default_on = True
    options: ClassVar[Mapping[str, str]] = {
        "classes": "CSS classes that hide an image until a script loads it",
        "attributes": "attributes that hold the real image URL, in order of preference",
    }

    def __init__(
        self, classes: list[str] | None = None, attributes: list[str] | None = None
    ) -> None:
        self.classes = frozenset(
            string_list("classes", classes) if classes is not None else DEFAULT_LAZY_CLASSES
        )
        self.sources = (
            string_list("attributes", attributes) if attributes is not None else LAZY_SOURCES
        )
        self.unwrapper = Unwrapper.from_templates(DEFAULT_TEMPLATES)
        self._visit = LazyVisit(self)  # keeps no state: one serves every fragment

    def visit(self) -> Visit:
        """Every ``img`` in the fragment."""
        return self._visit

    def same_image(self, src: str, real: str) -> bool:
        """``src`` is a proxied copy of the real URL."""
        return src != real and self.unwrapper.unwrap(src) == self.unwrapper.unwrap(real)

    def image_edits(self, attributes: Mapping[str, str]) -> list[ImageEdit]:
        """What one img's attributes (name to decoded value) should become, in order. Each
        edit sees the ones before it: a moved attribute is gone for the next question."""
        state = attributes
        edits: list[ImageEdit] = []
        real_attr = None
        for name in self.sources:
            value = state.get(name)
            if value and not value.isspace():
                real_attr = name
                break
        if real_attr is not None:
            real, src = state[real_attr].strip(), (state.get("src") or "").strip()
            if is_placeholder(src) or (src != real and self.same_image(src, real)):
                edits.append(("move", real_attr, real, "src"))
                if real_attr in _READ_LATER:
                    state = {**state, "src": real}
                    del state[real_attr]
            elif src == real:
                edits.append(("delete", real_attr, "", ""))
                if real_attr in _READ_LATER:
                    state = {k: v for k, v in state.items() if k != real_attr}
        srcset = (state.get("data-srcset") or "").strip()
        if srcset and not state.get("srcset"):
            edits.append(("move", "data-srcset", srcset, "srcset"))
        for size, data_size in _SIZES:
            data = (state.get(data_size) or "").strip()
            if data and not state.get(size):
                if data.isdigit():
                    edits.append(("move", data_size, data, size))
                else:
                    edits.append(("delete", data_size, "", ""))
        classes = (state.get("class") or "").split()
        if classes and not self.classes.isdisjoint(classes):
            kept = " ".join(c for c in classes if c not in self.classes)
            edits.append(("set", "class", kept, "") if kept else ("delete", "class", "", ""))
        return edits


class LazyVisit(Visit):
    """fix-lazy-images in the walk: each img's edits carried out on the tree."""

    tags = _IMG

    def __init__(self, rule: FixLazyImages) -> None:
        self.rule = rule

    def element(self, el: etree._Element, attributes: Attributes) -> int:
        """One img: one change however many of its attributes moved. The values set come
        from the img's own attributes, so they need no cleaning for XML."""
        items = dict(attributes)  # (image_edits does not change it)
        edits = self.rule.image_edits(items)
        if not edits:
            return 0
        attrib = el.attrib  # set() and del: a third cheaper than item assignment and pop()
        for kind, name, value, target in edits:
            if kind == "move":
                el.set(target, value)
                items[target] = value  # a dict keeps lxml's order: a value set keeps its place
            elif kind == "set":
                el.set(name, value)
                items[name] = value
                continue
            del attrib[name]  # every deleted name is one the img has (image_edits read it)
            del items[name]
        attributes[:] = items.items()
        return 1
