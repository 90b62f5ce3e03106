"""The LICENSE file and pyproject.toml name the same licence."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_is_the_mit_licence_pyproject_declares() -> None:
    """pyproject.toml says MIT and LICENSE holds the MIT licence text with a copyright line."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["license"]
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert declared == "MIT"
    assert text.startswith("MIT License\n")
    assert "Copyright (c)" in text
    assert "Permission is hereby granted, free of charge" in text
