"""Golden tests: convert fixture feeds and compare the Atom, element by element, with expectations.

Each tests/data/golden/NAME.expected.json was written by hand from reading its fixture (never by
running feedfix). A key that is present is compared; a key that is absent is not checked:

- feed: id, title, subtitle, alternate, logo, icon, updated, lang, authors;
- entries (in output order, the count must match): id, title, alternate, authors, categories
  (compared as a multiset), published, updated, enclosures (exact list of {href, type, length?}),
  enclosures_include (must be among the enclosures), img_srcs (in document order), a_hrefs,
  text_contains (visible text of content or summary), present_ids / absent_ids (element ids in
  content), entry_urls_include (URLs that must appear somewhere in the entry), lang.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from atomcheck import (
    DATA,
    NS,
    Entry,
    assert_converted,
    entries,
    feed_links,
    feed_text,
    html_fragment,
    run_feedfix,
    visible_text,
)

GOLDEN = DATA / "golden"
CASES = sorted(GOLDEN.glob("*.expected.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _same_time(actual: str | None, expected: str, what: str) -> None:
    assert actual is not None, f"{what}: missing, expected {expected}"
    assert actual.replace(".000", "") == expected, f"{what}: {actual!r} != {expected!r}"


def _enclosures(entry: Entry) -> list[dict[str, str | None]]:
    return [
        {"href": link.href, "type": link.type, "length": link.length}
        for link in entry.links_by_rel("enclosure")
    ]


def _enclosure_matches(actual: dict[str, str | None], expected: dict[str, str]) -> bool:
    return all(actual.get(key) == value for key, value in expected.items())


def _urls_in(element: etree._Element, content_html: str) -> set[str]:
    urls = {value for el in element.iter() for value in el.attrib.values()}
    urls |= {(el.text or "").strip() for el in element.iter()}
    fragment = html_fragment(content_html)
    urls |= {value for el in fragment.iter() for value in el.attrib.values()}
    return urls


def _check_feed(root: etree._Element, expected: dict[str, Any], label: str) -> None:
    for key in ("id", "title", "subtitle", "logo", "icon"):
        if key in expected:
            assert feed_text(root, key) == expected[key], (
                f"{label}: feed {key} {feed_text(root, key)!r} != {expected[key]!r}"
            )
    if "updated" in expected:
        _same_time(feed_text(root, "updated"), expected["updated"], f"{label}: feed updated")
    if "alternate" in expected:
        alternates = [link.href for link in feed_links(root) if link.rel == "alternate"]
        assert expected["alternate"] in alternates, (
            f"{label}: feed alternate link {expected['alternate']!r} not in {alternates}"
        )
    if "lang" in expected:
        lang = root.get("{http://www.w3.org/XML/1998/namespace}lang")
        assert (lang or "").lower() == expected["lang"].lower(), (
            f"{label}: feed xml:lang {lang!r} != {expected['lang']!r}"
        )
    if "authors" in expected:
        names = [
            (a.findtext("a:name", namespaces=NS) or "").strip()
            for a in root.findall("a:author", NS)
        ]
        assert names == expected["authors"], (
            f"{label}: feed authors {names} != {expected['authors']}"
        )


def _check_entry(entry: Entry, expected: dict[str, Any], label: str) -> None:
    simple = {"id": entry.id, "title": entry.title, "alternate": entry.alternate}
    for key, value in simple.items():
        if key in expected:
            assert value == expected[key], f"{label}: {key} {value!r} != {expected[key]!r}"
    if "authors" in expected:
        assert entry.authors == expected["authors"], (
            f"{label}: authors {entry.authors} != {expected['authors']}"
        )
    if "categories" in expected:
        assert sorted(entry.categories) == sorted(expected["categories"]), (
            f"{label}: categories {entry.categories} != {expected['categories']}"
        )
    for key in ("published", "updated"):
        if key in expected:
            _same_time(getattr(entry, key), expected[key], f"{label}: {key}")
    if "enclosures" in expected:
        actual = _enclosures(entry)
        assert len(actual) == len(expected["enclosures"]) and all(
            _enclosure_matches(a, e) for a, e in zip(actual, expected["enclosures"], strict=True)
        ), f"{label}: enclosures {actual} != {expected['enclosures']}"
    for wanted in expected.get("enclosures_include", []):
        actual = _enclosures(entry)
        assert any(_enclosure_matches(a, wanted) for a in actual), (
            f"{label}: enclosure {wanted} not among {actual}"
        )
    if "img_srcs" in expected:
        assert entry.img_srcs == expected["img_srcs"], (
            f"{label}: img srcs {entry.img_srcs} != {expected['img_srcs']}"
        )
    if "a_hrefs" in expected:
        hrefs = [a.get("href") for a in html_fragment(entry.content_html).iter("a")]
        assert hrefs == expected["a_hrefs"], f"{label}: a hrefs {hrefs} != {expected['a_hrefs']}"
    if "text_contains" in expected:
        shown = visible_text(entry.content_html) + " " + visible_text(entry.summary_html)
        for phrase in expected["text_contains"]:
            assert " ".join(phrase.split()) in shown, (
                f"{label}: text {phrase!r} missing from content/summary: {shown[:300]!r}"
            )
    ids = {el.get("id") for el in html_fragment(entry.content_html).iter() if el.get("id")}
    for wanted in expected.get("present_ids", []):
        assert wanted in ids, f"{label}: element id={wanted!r} should have been kept"
    for unwanted in expected.get("absent_ids", []):
        assert unwanted not in ids, f"{label}: element id={unwanted!r} should have been removed"
    if "entry_urls_include" in expected:
        assert entry.element is not None
        urls = _urls_in(entry.element, entry.content_html)
        for url in expected["entry_urls_include"]:
            assert url in urls, f"{label}: URL {url!r} appears nowhere in the entry"
    if "lang" in expected:
        assert (entry.lang or "").lower() == expected["lang"].lower(), (
            f"{label}: xml:lang {entry.lang!r} != {expected['lang']!r}"
        )


@pytest.mark.parametrize("case", CASES, ids=[c.name.removesuffix(".expected.json") for c in CASES])
def test_golden(case: Path) -> None:
    """Converting the fixture yields the feed and entries its hand-written expectation lists."""
    golden = _load(case)
    result = run_feedfix("convert", DATA / golden["fixture"], *golden.get("args", []))
    root = assert_converted(result)
    label = golden["fixture"]
    _check_feed(root, golden.get("feed", {}), label)
    actual = entries(root)
    titles = [e.title for e in actual]
    assert len(actual) == len(golden["entries"]), (
        f"{label}: {len(actual)} entries {titles}, expected {len(golden['entries'])}"
    )
    for index, (entry, expected) in enumerate(zip(actual, golden["entries"], strict=True)):
        _check_entry(entry, expected, f"{label} entry #{index} ({entry.title!r})")


def test_every_expectation_names_an_existing_fixture() -> None:
    """Each golden file points at a fixture that exists, and there are several of them."""
    assert len(CASES) >= 8
    for case in CASES:
        assert (DATA / _load(case)["fixture"]).exists(), case.name


def test_generated_fixtures_match_their_generator() -> None:
    """The encoded and binary fixtures on disk are byte-for-byte what make_encoded.py writes."""
    spec = importlib.util.spec_from_file_location("make_encoded", DATA / "make_encoded.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, data in module.all_fixtures().items():
        assert (DATA / name).read_bytes() == data, f"{name} differs from make_encoded.py output"
