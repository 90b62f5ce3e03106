"""No module of the package grows past 400 lines (issue 21's bound): a module does one job,
and one that outgrows it is split by job, not left to sprawl."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "feedfix"
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    """Every ``.py`` under ``feedfix/``, counted as ``wc -l`` counts."""
    sizes = {
        str(path.relative_to(PACKAGE.parent)): path.read_bytes().count(b"\n")
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 100, "the package was not found where the test looks"
    over = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"
