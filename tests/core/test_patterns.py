"""Users' patterns (``core/patterns.py``): RE2, linear in the text, case ignored, and a
clear refusal of what needs backtracking."""

from __future__ import annotations

import re
import time

import pytest

from feedfix.core.patterns import UnsupportedPattern, compile_user_pattern


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    """``(a+)+$`` over 100,000 ``a`` and a ``!``: Python's ``re`` would never finish."""
    pattern = compile_user_pattern("(a+)+$")
    started = time.process_time()
    assert pattern.search("a" * 100_000 + "!") is None
    assert time.process_time() - started < 1.0
    assert pattern.search("xxAAA") is not None  # case is ignored, as the filter always did


@pytest.mark.parametrize("text", [r"(a)\1", r"(?<=a)b", r"(?!a)b", "a++", "(unclosed"])
def test_what_needs_backtracking_is_refused_with_a_reason(text: str) -> None:
    """Refused as a ``re.error`` (what the rules already catch), naming RE2's reason."""
    with pytest.raises(UnsupportedPattern, match="RE2") as caught:
        compile_user_pattern(text)
    assert isinstance(caught.value, re.error)
