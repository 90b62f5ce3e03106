"""fix-lazy-images: give lazy-loaded images their real ``src``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from lxml import etree

from feedfix.core.html import set_attr
from feedfix.core.proxies import DEFAULT_TEMPLATES, Unwrapper
from feedfix.core.rules.base import Rule, string_list

LAZY_SOURCES = ("data-original", "data-src", "data-lazy-src", "data-actualsrc", "data-echo")
PLACEHOLDERS = ("data:", "about:blank", "javascript:")
DEFAULT_LAZY_CLASSES = ("lazy", "lazyload", "lazyloading", "opacity_0")
_PIXEL_NAMES = ("blank.gif", "pixel.gif", "spacer.gif", "1x1.gif", "grey.gif", "placeholder")


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

    def html(self, container: etree._Element) -> int:
        """Every ``img`` in the fragment."""
        return sum(self._fix(img) for img in container.iterdescendants("img"))

    def _fix(self, img: etree._Element) -> int:
        touched = False
        real_attr = next((a for a in self.sources if (img.get(a) or "").strip()), None)
        if real_attr is not None:
            real = (img.get(real_attr) or "").strip()
            src = (img.get("src") or "").strip()
            if self._is_placeholder(src) or self._same_image(src, real):
                set_attr(img, "src", real)
                del img.attrib[real_attr]
                touched = True
            elif src == real:
                del img.attrib[real_attr]
                touched = True
        srcset = (img.get("data-srcset") or "").strip()
        if srcset and not img.get("srcset"):
            set_attr(img, "srcset", srcset)
            del img.attrib["data-srcset"]
            touched = True
        for size in ("width", "height"):
            value = (img.get(f"data-{size}") or "").strip()
            if value and not img.get(size):
                if value.isdigit():
                    set_attr(img, size, value)
                del img.attrib[f"data-{size}"]
                touched = True
        classes = (img.get("class") or "").split()
        kept = [c for c in classes if c not in self.classes]
        if len(kept) != len(classes):
            if kept:
                set_attr(img, "class", " ".join(kept))
            else:
                del img.attrib["class"]
            touched = True
        return int(touched)

    def _is_placeholder(self, src: str) -> bool:
        lowered = src.lower()
        return not src or lowered.startswith(PLACEHOLDERS) or lowered.endswith(_PIXEL_NAMES)

    def _same_image(self, src: str, real: str) -> bool:
        """``src`` is a proxied copy of the real URL."""
        return src != real and self.unwrapper.unwrap(src) == self.unwrapper.unwrap(real)
