"""The rules, in the order they run, and how a rule set is built from options.

The order is fixed whatever order the user names them in: unwrapping and lazy-image repair
come before sanitizing (so a URL they produce is still checked), and junk goes last (an element
emptied by the others can then go too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from feedfix.core.errors import ConfigError
from feedfix.core.rules.base import Rule
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DropEmptyJunk, Remove
from feedfix.core.rules.sanitize import Sanitize
from feedfix.core.rules.select import Filter, Limit
from feedfix.core.rules.unwrap_proxies import UnwrapProxies

RULE_CLASSES: tuple[type[Rule], ...] = (
    Filter,
    Limit,
    UnwrapProxies,
    FixLazyImages,
    Sanitize,
    Remove,
    DropEmptyJunk,
)
RULES: dict[str, type[Rule]] = {cls.name: cls for cls in RULE_CLASSES}


@dataclass(frozen=True)
class RuleSet:
    """The active rules, in running order."""

    rules: tuple[Rule, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the active rules."""
        return tuple(rule.name for rule in self.rules)

    @property
    def html_rules(self) -> tuple[Rule, ...]:
        """The rules that need an entry's HTML parsed."""
        return tuple(rule for rule in self.rules if rule.touches_html)


def build_ruleset(
    options: Mapping[str, Any] | None = None, disabled: Iterable[str] = ()
) -> RuleSet:
    """Rules from a ``[rules]`` table: ``{name: {option: value, "enabled": bool}}``."""
    options = dict(options or {})
    disabled = set(disabled)
    for name in [*options, *disabled]:
        if name not in RULES:
            known = ", ".join(RULES)
            raise ConfigError(f"unknown rule {name!r} (rules: {known})")
    active: list[Rule] = []
    for cls in RULE_CLASSES:
        table = options.get(cls.name) or {}
        if not isinstance(table, Mapping):
            raise ConfigError(f"rules.{cls.name} must be a table of options")
        table = dict(table)
        enabled = table.pop("enabled", None)
        if enabled is not None and not isinstance(enabled, bool):
            raise ConfigError(f"rules.{cls.name}.enabled must be true or false")
        rule = cls.configured(table)
        on = cls.default_on or rule.is_active() if enabled is None else enabled
        if on and cls.name not in disabled:
            active.append(rule)
    return RuleSet(tuple(active))


__all__ = ["RULES", "Rule", "RuleSet", "build_ruleset"]
