"""The rules, in the order they run, and how a rule set is built from what the config says.

The order is fixed whatever order the user names them in: unwrapping and lazy-image repair
come before sanitizing (so a URL they produce is still checked), and junk goes last (an element
emptied by the others can then go too).

What the config says is a ``RuleSpec``: frozen plain data, hashable and picklable, so it can
travel to the cleaning worker and key ``ruleset``'s cache. The compiled rules (selectors,
regular expressions) are built from it once per process and spec, never carried around.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from feedfix.core.errors import ConfigError
from feedfix.core.rules.base import Rule
from feedfix.core.rules.fix_lazy_images import FixLazyImages
from feedfix.core.rules.junk import DropEmptyJunk, Remove
from feedfix.core.rules.proxy_images import ImageProxySettings, ProxyImages
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
# Every step's unit, for ``--explain``: the rules, and the image proxy that follows them.
_STEPS: tuple[type[Rule], ...] = (*RULE_CLASSES, ProxyImages)
UNITS: dict[str, str] = {cls.name: cls.unit for cls in _STEPS}
RULESET_CACHE = 256  # built rule sets kept per process; a config has one per distinct spec
_SCALARS = (str, int, float, bool, datetime, date, time)  # what TOML gives besides tables

Options = tuple[tuple[str, Hashable], ...]  # (option, value) pairs, in the order written


def _freeze(value: object, key: str) -> Hashable:
    """A TOML option value as hashable data: arrays become tuples; a table is refused."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(item, key) for item in value)
    if isinstance(value, _SCALARS):
        return value
    raise ConfigError(f"{key}: expected a string, a number, true/false or an array, got a table")


def _thaw(value: Hashable) -> Any:
    """The option value as TOML gave it (tuples back to lists), for the rules and for display."""
    return [_thaw(item) for item in value] if isinstance(value, tuple) else value


def _known() -> str:
    return ", ".join(RULES)


@dataclass(frozen=True)
class RuleSpec:
    """A ``[rules]`` table checked and frozen: options per rule, and the rules switched off.

    Equal specs build one rule set (``ruleset`` caches it): the thirty feeds that only
    inherit ``[rules]`` share one set of compiled selectors.
    """

    options: tuple[tuple[str, Options], ...] = ()  # per rule named, in the order written
    disabled: tuple[str, ...] = ()
    # [images]: the proxy step after every rule (None: off); set by the config's loader
    images: ImageProxySettings | None = None

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any], where: str = "rules", base: RuleSpec | None = None
    ) -> RuleSpec:
        """Check a ``[rules]`` table and lay it over ``base`` (a feed's over ``[rules]``):
        options add to the base's, ``disable`` replaces the base's list.

        Every mistake is a ConfigError naming ``where`` and the key: an unknown rule, option
        or disabled name, a value the rule refuses (the set is built here, once, to see).
        """
        merged: dict[str, dict[str, Hashable]] = {n: dict(o) for n, o in (base or cls()).options}
        disabled = base.disabled if base is not None else ()
        for name, options in table.items():
            if name == "disable":
                disabled = cls._disabled(options, f"{where}.disable")
                continue
            rule = RULES.get(name)
            if rule is None:
                raise ConfigError(f"{where}.{name}: unknown rule (rules: {_known()})")
            if not isinstance(options, Mapping):
                raise ConfigError(f"{where}.{name}: expected a table of the rule's options")
            for option, value in options.items():
                key = f"{where}.{name}.{option}"
                if option == "enabled" and not isinstance(value, bool):
                    raise ConfigError(f"{key}: expected true or false, got {value!r}")
                if option != "enabled" and option not in rule.options:
                    known = ", ".join(sorted(rule.options)) or "none"
                    raise ConfigError(f"{key}: unknown option (options: {known})")
                merged.setdefault(name, {})[option] = _freeze(value, key)
        spec = cls(tuple((n, tuple(o.items())) for n, o in merged.items()), disabled)
        try:
            ruleset(spec)
        except ConfigError as exc:  # a value the rule refuses: its message names the rule
            raise ConfigError(f"{where}.{exc}") from exc
        return spec

    @staticmethod
    def _disabled(names: object, key: str) -> tuple[str, ...]:
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{key}: expected a list of rule names")
        for name in names:
            if name not in RULES:
                raise ConfigError(f"{key}: unknown rule {name!r} (rules: {_known()})")
        return tuple(names)

    def disabling(self, names: Iterable[str], key: str = "--no-rule") -> RuleSpec:
        """This spec with more rules switched off (``convert --no-rule``)."""
        more = self._disabled(list(names), key)
        return RuleSpec(
            self.options,
            (*self.disabled, *(n for n in more if n not in self.disabled)),
            self.images,
        )

    def table(self) -> dict[str, Any]:
        """As a ``[rules]`` table of plain data: ``{rule: {option: value}, "disable": [...]}``."""
        out: dict[str, Any] = {name: {o: _thaw(v) for o, v in opts} for name, opts in self.options}
        return {**out, "disable": list(self.disabled)}

    @property
    def fingerprint(self) -> str:
        """Changes whenever an option does; stored in the archive's source hashes, so its
        form must stay as it is (a new form re-cleans and refetches every feed once). The
        image proxy adds its own part, only when it is on: a new mode, base URL, host rule
        or key re-renders every entry, and the key shows only as a digest."""
        rules = repr(sorted((k, repr(v)) for k, v in self.table().items()))
        return rules if self.images is None else f"{rules}\x1f{self.images.fingerprint}"


@dataclass(frozen=True)
class RuleSet:
    """The active rules, in running order."""

    rules: tuple[Rule, ...]

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Names of the active rules."""
        return tuple(rule.name for rule in self.rules)

    @functools.cached_property
    def html_rules(self) -> tuple[Rule, ...]:
        """The rules that need an entry's HTML parsed (worked out once: asked per fragment)."""
        return tuple(rule for rule in self.rules if rule.touches_html)

    @functools.cached_property
    def entry_rules(self) -> tuple[Rule, ...]:
        """The rules that act on an entry's other fields (the others need not be asked)."""
        return tuple(rule for rule in self.rules if type(rule).entry is not Rule.entry)


@functools.lru_cache(maxsize=RULESET_CACHE)
def ruleset(spec: RuleSpec) -> RuleSet:
    """The rules a checked spec asks for, built once per process and spec (rules are
    immutable once built, so one set serves every feed and thread that asks)."""
    options = dict(spec.options)
    active: list[Rule] = []
    for cls in RULE_CLASSES:
        table = {option: _thaw(value) for option, value in options.get(cls.name, ())}
        enabled = table.pop("enabled", None)
        rule = cls.configured(table)
        on = cls.default_on or rule.is_active() if enabled is None else enabled
        if on and cls.name not in spec.disabled:
            active.append(rule)
    if spec.images is not None and spec.images.mode != "off":
        active.append(ProxyImages(spec.images))  # last: every URL is final by now
    return RuleSet(tuple(active))


def build_ruleset(
    options: Mapping[str, Any] | None = None, disabled: Iterable[str] = ()
) -> RuleSet:
    """Rules from a ``[rules]``-shaped mapping: ``{name: {option: value, "enabled": bool}}``."""
    spec = RuleSpec.from_table(options or {})
    return ruleset(spec.disabling(disabled, "disabled") if disabled else spec)


__all__ = [
    "RULES",
    "UNITS",
    "ImageProxySettings",
    "ProxyImages",
    "Rule",
    "RuleSet",
    "RuleSpec",
    "build_ruleset",
    "ruleset",
]
