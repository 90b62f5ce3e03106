"""fix-lazy-images as a plan for one img's attributes: which to delete, rename or rewrite.

The decisions are the tree rule's own (feedfix.core.rules.fix_lazy_images), made on the
attribute values as written, so that the plan can be carried out as spans.
"""

from __future__ import annotations

from dataclasses import dataclass

from feedfix.core.mend.markup import Attribute
from feedfix.core.rules.fix_lazy_images import FixLazyImages


@dataclass
class Plan:
    """What becomes of one attribute."""

    delete: bool = False
    rename: str | None = None
    value: str | None = None  # the new decoded value, replacing the whole value
    by_lazy: bool = False  # the lazy rule set ``value`` (unwrapping may still change it)


def plan_lazy_image(
    rule: FixLazyImages, attrs: dict[str, Attribute], plans: dict[str, Plan]
) -> bool:
    """fix-lazy-images on one img, as the rule does it on a parsed tree, written as a plan."""

    def value(name: str) -> str:
        attr = attrs.get(name)
        return attr.value.strip() if attr is not None else ""

    touched = False
    real_attr = next((a for a in rule.sources if value(a)), None)
    if real_attr is not None:
        real, src = value(real_attr), value("src")
        if rule._is_placeholder(src) or rule._same_image(src, real):
            if "src" in attrs:
                plans["src"].value = real
                plans["src"].by_lazy = True
                plans[real_attr].delete = True
            else:
                plans[real_attr].rename = "src"
            touched = True
        elif src == real:
            plans[real_attr].delete = True
            touched = True
    if value("data-srcset") and not value("srcset") and not plans["data-srcset"].delete:
        if "srcset" in attrs:
            plans["srcset"].value = value("data-srcset")
            plans["srcset"].by_lazy = True
            plans["data-srcset"].delete = True
        else:
            plans["data-srcset"].rename = "srcset"
        touched = True
    for size in ("width", "height"):
        data = value(f"data-{size}")
        if data and not value(size):
            if data.isdigit() and size not in attrs:
                plans[f"data-{size}"].rename = size
            else:
                if data.isdigit():
                    plans[size].value = data
                    plans[size].by_lazy = True
                plans[f"data-{size}"].delete = True
            touched = True
    if "class" in attrs:
        classes = attrs["class"].value.split()
        kept = [c for c in classes if c not in rule.classes]
        if len(kept) != len(classes):
            if kept:
                plans["class"].value = " ".join(kept)
                plans["class"].by_lazy = True
            else:
                plans["class"].delete = True
            touched = True
    return touched
