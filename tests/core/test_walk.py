"""The walk of a fragment (feedfix/core/rules/walk.py): one walk, every rule in its turn.

The rules read each element's attributes from a list the walk read once; a rule that changes
them changes the list alike. Over hypothesis-made HTML, after every rule's turn on every
element, the list must be what lxml says the element has; and the one walk must leave the
fragment, and count each rule's changes, as running the rules one at a time does.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from feedfix.core.html import parse_fragment, serialize_fragment
from feedfix.core.rules import RuleSpec, ruleset, walk
from feedfix.core.rules.proxy_images import ImageProxySettings
from feedfix.core.rules.walk import Attributes, ResolveVisit, Visit

PROXY = ImageProxySettings(mode="all", base_url="https://feeds.example", key=b"k" * 32)
pieces = st.sampled_from(
    [
        '<img class="lazy opacity_0" data-original="http://a.example/1.jpg" data-width="9"'
        ' data-height="x" src="https://cors.zfour.workers.dev/?http://a.example/1.jpg">',
        '<img src="/blank.gif" data-src="//i0.wp.com/a.example/2.jpg?ssl=1"'
        ' data-srcset="b.jpg 2x">',
        '<div class="img_box" id="recommend_bottom" onclick></div>',
        '<a href="javascript:x" onmouseover="y()" title="t">link</a>',
        '<picture><source srcset="//wsrv.nl/?url=a.example%2F3.jpg 1x"></picture>',
        '<video poster="../p.jpg" data-x="javascript:z"></video>',
        '<p style="color: red; width: expression(1)" data-path="./q">text http://x.example</p>',
        '<iframe src="//player.vimeo.com/v/1"></iframe>',
        "<span>plain</span>",
        '<div id="article_bottom"></div>',
        '<div id="recommend_bottom"><p> </p></div>',
        '<div id="recommend_bottom">kept</div>',
        '<svg><div id="recommend_bottom"></div></svg>',
        '<font><div id="article_bottom"></div></font>',
        "<script>x()</script>",
    ]
)


def checked(visit: Visit) -> Visit:
    """``visit`` whose every element handler is followed by a look at lxml's own list."""
    handle = visit.element

    def element(el: etree._Element, attributes: Attributes) -> int:
        changed = handle(el, attributes)
        assert attributes == el.items(), (type(visit).__name__, el.tag)
        return changed

    visit.element = element  # type: ignore[method-assign]
    return visit


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pieces, min_size=1, max_size=8).map("".join))
def test_every_rule_keeps_the_attributes_it_was_given_in_step(markup: str) -> None:
    """After each rule's turn the walk's list is the element's attributes, in lxml's order."""
    container = parse_fragment(markup)
    rules = ruleset.__wrapped__(RuleSpec(images=PROXY))  # rules of its own: their visits change
    visits: list[Visit] = [ResolveVisit("http://base.example/dir/")]
    visits += [visit for rule in rules.html_rules if (visit := rule.visit()) is not None]
    walk.run(container, [checked(v) for v in visits])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pieces, min_size=1, max_size=8).map("".join), st.booleans())
def test_one_walk_does_what_the_rules_do_one_at_a_time(markup: str, proxy: bool) -> None:
    """The same HTML and the same counts as each rule's own walk in turn (the inspector's
    way), with the default rules and with the image proxy after them. Sanitize reshapes the
    fragment when it drops ``<svg>`` or unwraps ``<font>``: drop-empty-junk, which notes its
    candidates in the walk it shares with the default rules, must then look again, and
    neither count nor remove a candidate that went with the ``<svg>``."""
    rules = ruleset.__wrapped__(RuleSpec(images=PROXY if proxy else None))
    base = "http://base.example/dir/"
    fused = parse_fragment(markup)
    visits: list[Visit] = [ResolveVisit(base)]
    visits += [rule.visit() or Visit() for rule in rules.html_rules]
    counts = walk.run(fused, visits)
    alone = parse_fragment(markup)
    expected = walk.run(alone, [ResolveVisit(base)])
    expected += [rule.html(alone) for rule in rules.html_rules]
    assert serialize_fragment(fused) == serialize_fragment(alone)
    assert counts == expected
