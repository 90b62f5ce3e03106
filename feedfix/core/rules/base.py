"""What a rule is: a small named class whose docstring is its help and which counts its changes.

A rule may act on an entry's HTML (``visit``: its part in the one walk of a fragment, see
``walk.py``), on the entry's other fields (``entry``) or on the feed as a whole (``feed``); each
hook returns how many things it changed, which is what ``--explain`` and the metrics report.
Options arrive once, in ``__init__``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

from lxml import etree

from feedfix.core.errors import ConfigError
from feedfix.core.model import Entry, Feed
from feedfix.core.rules.walk import Visit, run


class Rule:
    """Base class: every hook is a no-op that changes nothing."""

    name: ClassVar[str] = ""
    unit: ClassVar[str] = "changes"
    default_on: ClassVar[bool] = False
    options: ClassVar[Mapping[str, str]] = {}  # option name -> one-line help

    def feed(self, feed: Feed) -> tuple[Feed, int]:
        """Act on the whole feed (select entries, feed-level URLs)."""
        return feed, 0

    def entry(self, entry: Entry) -> tuple[Entry, int]:
        """Act on one entry's fields other than its HTML."""
        return entry, 0

    def visit(self) -> Visit | None:
        """This rule's part in the walk of one HTML fragment (``None``: it has none)."""
        return None

    def html(self, container: etree._Element) -> int:
        """Act on one parsed HTML fragment (content or summary) on its own: a walk with this
        rule alone, as the inspector and the tests run it. The pipeline walks once for all."""
        visit = self.visit()
        return run(container, (visit,))[0] if visit is not None else 0

    def finish(self, markup: str) -> str:
        """Act on the serialized fragment, after the walk (a final pass)."""
        return markup

    @property
    def touches_html(self) -> bool:
        """Whether the pipeline needs to parse HTML for this rule."""
        return type(self).visit is not Rule.visit

    @classmethod
    def help(cls) -> str:
        """The docstring, cleaned: the help text that ``feedfix rules`` prints."""
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def configured(cls, options: Mapping[str, Any]) -> Rule:
        """Build from checked config options (``RuleSpec.from_table`` checked their names);
        a value the rule refuses is a ConfigError that starts with the rule's name."""
        try:
            return cls(**options)
        except (TypeError, ValueError, ConfigError) as exc:  # ConfigError: a bad wrapper
            raise ConfigError(f"{cls.name}: {exc}") from exc

    def is_active(self) -> bool:
        """Off-by-default rules are active only once configured with something to do."""
        return True


def string_list(name: str, value: object) -> tuple[str, ...]:
    """Validate an option that must be a list of strings."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"option {name!r} must be a list of strings")
    return tuple(value)
