"""Other parsers' own test feeds, fetched once from PyPI: feedparser's (about 2,242 small
feeds), podcastparser's (70) and lemon24/reader's (6).

Each sdist is fetched once with ``pip download --no-binary :all: --no-deps`` into
``~/.cache/feedfix-tests/`` (or ``$FEEDFIX_TEST_CACHE``) and unpacked there. A test that needs
one skips when PyPI cannot be reached, unless ``FEEDFIX_REQUIRE_NETWORK=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

FEEDPARSER_SDIST = "feedparser==6.0.14"  # pinned, so the file count and results are stable
OTHER_SDISTS = ("podcastparser==0.6.11", "reader==3.26")  # their tests/ ship feeds too
FEED_SUFFIXES = {".xml", ".rdf", ".atom", ".rss"}


def cache_dir() -> Path:
    """Where the sdist is kept between runs."""
    configured = os.environ.get("FEEDFIX_TEST_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "feedfix-tests"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _no_network(reason: str) -> None:
    if os.environ.get("FEEDFIX_REQUIRE_NETWORK") == "1":
        pytest.fail(f"FEEDFIX_REQUIRE_NETWORK=1 but {reason}")
    pytest.skip(reason)


def sdist_tests_dir(spec: str) -> Path:
    """The unpacked ``tests/`` folder of a pinned sdist, downloading it when needed."""
    base = cache_dir()
    project, version = spec.split("==")
    unpacked = base / f"{project}-{version}"
    if (unpacked / "tests").is_dir():
        return unpacked / "tests"
    archive = base / f"{project}-{version}.tar.gz"
    if not archive.exists():
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                   "--no-deps", "--disable-pip-version-check", "-d", str(base),
                   spec]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            _no_network(f"pip download of the {project} sdist timed out (PyPI unreachable?)")
        if done.returncode != 0 or not archive.exists():
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            _no_network(f"cannot download the {project} sdist from PyPI: {tail}")
    partial = base / f".unpacking-{os.getpid()}"
    with tarfile.open(archive) as tar:
        tar.extractall(partial, filter="data")
    (partial / f"{project}-{version}").replace(unpacked)
    partial.rmdir()
    return unpacked / "tests"


def feedparser_tests_dir() -> Path:
    """The unpacked ``tests/`` folder of feedparser's sdist."""
    return sdist_tests_dir(FEEDPARSER_SDIST)


def feed_files(root: Path) -> list[Path]:
    """Every file that looks like a feed, sorted for a stable order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in FEED_SUFFIXES)
