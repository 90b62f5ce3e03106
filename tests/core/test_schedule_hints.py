"""What an upstream's ``Cache-Control`` tells the schedule (``core.schedule``)."""

from __future__ import annotations

import pytest

from feedfix.core.schedule import max_age_seconds


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("max-age=600", 600),
        ("public, max-age=300", 300),
        ("s-maxage=60, public", 60),
        ("Max-Age=120", 120),  # directive names are case-insensitive (RFC 9111 5.2)
        ('max-age="90"', 90),
        ("private, max-age=30", 30),
        (None, None),
        ("", None),
        ("public", None),
        ("max-age=abc", None),
    ],
)
def test_max_age(header: str | None, seconds: float | None) -> None:
    """max-age (or s-maxage) in seconds; nothing when absent or unreadable."""
    assert max_age_seconds(header) == seconds


@pytest.mark.parametrize(
    "header",
    [
        "no-cache",
        "no-cache, max-age=600",
        "max-age=600, no-cache",
        "No-Cache, max-age=600",
        "no-store, max-age=600",
        "max-age=600,no-store",
        'no-cache="Set-Cookie", max-age=600',
        "public, max-age=600, must-revalidate, no-store",
    ],
)
def test_no_cache_and_no_store_win_over_max_age(header: str) -> None:
    """An upstream that says no-cache or no-store asks not to be trusted for any max-age it
    also sends: no hint to wait longer (it was read as max-age 600)."""
    assert max_age_seconds(header) is None


@pytest.mark.parametrize("header", ["max-age=600, x-no-cache", "max-age=600, no-cachex"])
def test_only_the_directives_themselves_count(header: str) -> None:
    """An extension whose name merely contains ``no-cache`` is not no-cache."""
    assert max_age_seconds(header) == 600
