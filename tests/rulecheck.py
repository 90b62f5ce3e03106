"""HTML compared by meaning: read back by the tree parser with attributes sorted, and one
rule run over a fragment on its own (tests/core/test_rules.py and test_sanitize_cases.py)."""

from __future__ import annotations

from lxml import etree

from feedfix.core.html import parse_fragment, serialize_fragment
from feedfix.core.rules.base import Rule


def normalized(markup: str) -> str:
    """Markup as the parser reads it, attributes sorted, so equal meaning compares equal."""
    container = parse_fragment(markup)
    for el in container.iterdescendants(etree.Element):
        attributes = sorted(el.attrib.items())
        el.attrib.clear()
        for name, value in attributes:
            el.set(name, value)
    return serialize_fragment(container)


def apply(rule: Rule, markup: str) -> tuple[str, int]:
    """Run one rule's HTML hook over a fragment; the result comes back normalized."""
    container = parse_fragment(markup)
    changed = rule.html(container)
    return normalized(serialize_fragment(container)), changed
