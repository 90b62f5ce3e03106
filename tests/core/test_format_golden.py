"""The golden outputs: every golden case in Atom, RSS and JSON Feed, byte for byte.

``tests/data/golden/formats/`` was written once by ``make_formats.py`` (``feedfix convert
FIXTURE --format FMT``) and read by a person before it was committed: each RSS and JSON Feed
beside its Atom and its fixture (ids, titles, dates, links, enclosures, content, the feed's
own fields). This test runs the same conversion and compares the bytes; a change in the
output is a change to review (run ``make_formats.py`` again and read its diff).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from atomcheck import DATA
from formats import assert_valid

GOLDEN = DATA / "golden"


def _maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_formats", GOLDEN / "make_formats.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _maker()
CASES = [
    pytest.param(name, fixture, args, fmt, id=f"{name}-{fmt}")
    for name, fixture, args in MAKER.cases()
    for fmt in MAKER.SUFFIXES
]


@pytest.mark.parametrize(("name", "fixture", "args", "fmt"), CASES)
def test_output_is_the_golden_one(name: str, fixture: Path, args: list[str], fmt: str) -> None:
    """``convert --format FMT`` gives the reviewed bytes, and they are valid in their format."""
    golden = GOLDEN / "formats" / f"{name}{MAKER.SUFFIXES[fmt]}"
    made = MAKER.convert(fixture, args, fmt)
    assert made == golden.read_bytes(), f"{golden.name} changed: review make_formats.py's diff"
    assert_valid(fmt, made)


def test_every_case_has_its_three_formats_and_nothing_else() -> None:
    """One file per case and format in formats/, none left over from a removed case."""
    expected = {
        f"{name}{suffix}" for name, _, _ in MAKER.cases() for suffix in MAKER.SUFFIXES.values()
    }
    assert {p.name for p in (GOLDEN / "formats").iterdir()} == expected
