"""One walk of a fragment's tree for every rule: each element handed to the rules that want it.

A rule's visit says which elements it wants (``tags``; ``None``: all of them) and handles one
element at a time (``element``), touching only that element's attributes, text and tail; what
needs the whole tree (removing elements, unwrapping unknown ones) waits for ``done``, which
runs after the walk, in rule order. Handling element by element in rule order gives what
running each rule over the whole tree in turn gives, with one walk instead of one per rule,
and each element's attributes read once for all of them instead of once per rule: resolving
and the four default rules over 200 ZAKER entries took 497 million instructions (callgrind)
as separate walks and XPath searches, and take 321 million in one walk (with the rules' own
work made cheaper too; the walk alone took 438 down to 398).

Once a visit has reshaped the tree (``reshapes``), a later visit that wants elements starts a
walk of its own, so that it sees the tree as the rules before it left it. A visit that only
takes note in the walk (``observes``) shares the walk before the reshaping one instead, and
walks again only when that one's ``done`` did change something: drop-empty-junk notes its
candidates so (sanitize reshapes nothing in a ZAKER entry), where a search of its own cost
a whole convert 1.1% (farm-bench, 21 pairs) and 1.2% of its instructions (callgrind).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from lxml import etree

from feedfix.core.html import Resolver
from feedfix.core.html import elements as elements_below

NOTHING: frozenset[str] = frozenset()
Attributes = list[tuple[str, str]]
Handler = Callable[[etree._Element, Attributes], int]
NEVER, WITH_ATTRIBUTES, ALWAYS = 0, 1, 2


class Visit:
    """One rule's turn in the walk of one fragment. The base visit changes nothing.

    A visit may keep state for its fragment (sanitize collects what to remove), so rules make
    a new one per fragment unless theirs keeps none.
    """

    tags: ClassVar[frozenset[str] | None] = NOTHING  # elements ``element`` wants (None: all)
    attributed: ClassVar[bool] = False  # and any element that has attributes
    reshapes: ClassVar[bool] = False  # whether ``done`` may add, remove or move elements
    observes: ClassVar[bool] = False  # whether ``element`` only takes note, changing nothing
    # Worked out for each class from the above (and ``wants``) when it is defined:
    walking: ClassVar[bool] = False  # whether it wants any element at all
    named: ClassVar[frozenset[str] | None] = NOTHING  # the only tags it wants (None: others too)

    @classmethod
    def wants(cls, tag: str) -> int:
        """Whether ``element`` wants elements named ``tag``: ``NEVER``, ``ALWAYS``, or only
        those that have attributes (``WITH_ATTRIBUTES``). A class's answer is kept for every
        walk, so it may depend on the tag alone."""
        if cls.tags is None or tag in cls.tags:
            return ALWAYS
        return WITH_ATTRIBUTES if cls.attributed else NEVER

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        own_wants = cls.wants.__func__ is not Visit.wants.__func__  # type: ignore[attr-defined]
        cls.walking = cls.tags != NOTHING or cls.attributed or own_wants
        cls.named = None if cls.tags is None or cls.attributed or own_wants else cls.tags

    def element(self, el: etree._Element, attributes: Attributes) -> int:
        """Act on one element: its attributes, its text and its tail; returns how many
        changes. ``attributes`` are its ``items()``, read once for every rule: a rule that
        changes an attribute changes them alike (``html.set_item``, ``html.del_items``), so
        that the rules after it need not read them again (11 thousand instructions an img)."""
        return 0

    def done(self, container: etree._Element) -> int:
        """Act on the whole fragment after the walk; returns how many changes (more than 0
        whenever a visit that ``reshapes`` did reshape the tree)."""
        return 0

    def forget(self) -> None:
        """Drop what ``element`` noted: the tree changed under a visit that ``observes``,
        and the walk is about to hand it the elements again."""


def run(container: etree._Element, visits: Sequence[Visit]) -> list[int]:
    """Walk the fragment below ``container`` with every visit; the changes of each, in order."""
    counts = [0] * len(visits)
    start = 0
    for index, visit in enumerate(visits):
        if visit.reshapes and any(v.walking and not v.observes for v in visits[index + 1 :]):
            _walk_and_finish(container, visits, start, index + 1, counts)
            start = index + 1
    _walk_and_finish(container, visits, start, len(visits), counts)
    return counts


def _walk_and_finish(
    container: etree._Element, visits: Sequence[Visit], start: int, stop: int, counts: list[int]
) -> None:
    """One walk for the visits ``start`` to ``stop``, then each one's ``done`` in turn; once a
    ``done`` has reshaped the tree, the visits after it (observers: see ``run``) forget what
    they noted and walk it again."""
    wanting = [i for i in range(start, stop) if visits[i].walking]
    if wanting:
        _walk(container, [visits[i] for i in wanting], wanting, counts)
    for i in range(start, stop):
        changed = visits[i].done(container)
        counts[i] += changed
        stale = [j for j in wanting if j > i] if changed and visits[i].reshapes else []
        if stale:
            for j in stale:
                visits[j].forget()
            _walk(container, [visits[j] for j in stale], stale, counts)


# For each line-up of visit classes: the tags they name, if they want no others (``None``:
# every element is walked), and each tag's handlers (those for an element with attributes,
# those for one without, as positions in the line-up), worked out once per tag.
Plan = tuple[tuple[int, ...], tuple[int, ...]]
_LINEUPS: dict[tuple[type[Visit], ...], tuple[tuple[str, ...] | None, dict[str, Plan]]] = {}


def _lineup(classes: tuple[type[Visit], ...]) -> tuple[tuple[str, ...] | None, dict[str, Plan]]:
    named: set[str] = set()
    for cls in classes:
        if cls.named is None:
            return None, {}
        named.update(cls.named)
    return tuple(named), {}


def _plan(classes: tuple[type[Visit], ...], tag: str) -> Plan:
    wants = [cls.wants(tag) for cls in classes]
    return (
        tuple(j for j, want in enumerate(wants) if want != NEVER),
        tuple(j for j, want in enumerate(wants) if want == ALWAYS),
    )


def _walk(
    container: etree._Element, visits: list[Visit], indices: list[int], counts: list[int]
) -> None:
    """Every element below the container, each to the visits that want it, in order."""
    classes = tuple(type(v) for v in visits)
    lineup = _LINEUPS.get(classes)
    if lineup is None:
        lineup = _LINEUPS[classes] = _lineup(classes)
    named, plans = lineup
    handlers = [v.element for v in visits]
    # Only named tags wanted: lxml picks them in C (``iter`` with tag names).
    elements = container.iterdescendants(*named) if named else elements_below(container)
    for el in elements:
        tag: str = el.tag  # type: ignore[assignment]  # an element's, never a QName
        plan = plans.get(tag)
        if plan is None:
            plan = plans[tag] = _plan(classes, tag)
        attributes = el.items()
        for j in plan[0] if attributes else plan[1]:
            changed = handlers[j](el, attributes)
            if changed:
                counts[indices[j]] += changed


class ResolveVisit(Resolver, Visit):
    """Relative URLs made absolute against the entry's base, before any rule looks at them."""

    attributed = True
