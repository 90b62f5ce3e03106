"""Per-rule attribution (feedfix/core/inspect.py): the rules one at a time over a ZAKER
entry, each with its own count and its own differences."""

from __future__ import annotations

from pathlib import Path

from feedfix.core.inspect import diff, inspect_entry, without
from feedfix.core.model import Entry
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.pipeline import clean_entry
from feedfix.core.rules import build_ruleset

DATA = Path(__file__).resolve().parents[1] / "data"


def _entries() -> tuple[Entry, ...]:
    data = (DATA / "zaker-classic.rss.xml").read_bytes()
    return parse_document(data, "zaker", ParseOptions()).entries


def test_steps_count_what_each_rule_reports_and_end_where_the_pipeline_does() -> None:
    """Run one at a time, the rules make the same counts and the same HTML as all at once."""
    rules = build_ruleset()
    for entry in _entries():
        inspection = inspect_entry(entry, rules)
        cleaned, report = clean_entry(entry, rules)
        assert inspection.counts == {n: c.changes for n, c in report.counts.items() if c.changes}
        assert inspection.cleaned == cleaned.content


def test_first_zaker_entry_is_attributed_rule_by_rule() -> None:
    """Two wrapped src unwrapped, two lazy images fixed, two onclick dropped, the trailer gone."""
    steps = {s.rule: s for s in inspect_entry(_entries()[0], build_ruleset()).steps}
    assert {n: s.changes for n, s in steps.items()} == {
        "unwrap-proxies": 2,
        "fix-lazy-images": 2,
        "sanitize": 2,
        "drop-empty-junk": 2,
    }
    unwrapped = steps["unwrap-proxies"].hunks
    assert len(unwrapped) == 2 and all("cors.zfour.workers.dev" in h.old for h in unwrapped)
    assert all("cors.zfour" not in h.new and h.kind == "changed" for h in unwrapped)
    assert [h.old.strip() for h in steps["sanitize"].hunks] == ["onclick", "onclick"]
    junk = steps["drop-empty-junk"].hunks
    assert junk[0].kind == "removed" and 'id="recommend_bottom"' in junk[0].old


def test_a_rule_switched_off_leaves_its_change_undone() -> None:
    """Without sanitize the onclick stays; the other rules still count theirs."""
    entry = _entries()[0]
    inspection = inspect_entry(entry, without(build_ruleset(), ["sanitize"]))
    assert "sanitize" not in inspection.counts
    assert "onclick" in inspection.cleaned and "cors.zfour" not in inspection.cleaned
    assert inspect_entry(entry, without(build_ruleset(), build_ruleset().names)).steps == ()


def test_diff_is_attribute_sized_and_capped() -> None:
    """A changed attribute is one difference; past the cap the rest are counted."""
    hunks, more = diff('<img alt="a" src="x">', '<img alt="a" src="y">')
    assert [(h.old, h.new) for h in hunks] == [(' src="x"', ' src="y"')] and more == 0
    many_old = "".join(f"<b>{i}</b>" for i in range(100))
    hunks, more = diff(many_old, many_old.replace("<b>", "<i>"))
    assert len(hunks) == 40 and more > 0


def test_a_large_differing_middle_is_one_change_found_in_linear_time() -> None:
    """7,500 tokens of repetitive ``<p>`` took SequenceMatcher 69 s; past ``MAX_DIFF_TOKENS``
    the middle between the common beginning and end is one change."""
    old = "<h1>t</h1>" + "".join(f"<p>{i % 7}</p>" for i in range(20_000)) + "<p>end</p>"
    new = "<h1>t</h1>" + "".join(f"<p>{i % 5}</p>" for i in range(20_000)) + "<p>end</p>"
    hunks, more = diff(old, new)
    assert more == 0 and len(hunks) == 1
    assert hunks[0].old.startswith("5</p><p>6") and "end" not in hunks[0].old  # 0-4 shared
