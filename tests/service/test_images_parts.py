"""The image proxy's smaller parts: which bodies count as images, the cache index
(SQLite and memory, same contract), byte ranges and the settings' limits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from feedfix.config import parse_config
from feedfix.core.errors import ConfigError
from feedfix.service.images import ImageSettings
from feedfix.service.images.handler import byte_range
from feedfix.service.images.media import MediaRefused, allowed_type, matches
from feedfix.service.images.meta import CacheEntry, CacheMeta, MemoryMeta, SQLiteMeta
from image_origin import HTML_PAGE, IMAGES, SVG_WITH_SCRIPT, settings

pytest.importorskip("PIL")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_real_images_match_their_declared_type(name: str) -> None:
    """Each Pillow-made file passes as its own type and fails as every other."""
    body, media_type = IMAGES[name]
    assert allowed_type(media_type, svg=False) == media_type
    assert matches(media_type, body[:512])
    others = {t for _, t in IMAGES.values()} - {media_type}
    assert not any(matches(t, body[:512]) for t in others)


def test_types_are_canonical_and_the_allowlist_is_closed() -> None:
    """Aliases and parameters are normalised; HTML, scripts, octet-stream and (unless on)
    SVG are refused; HTML and SVG bodies never match a raster type."""
    assert allowed_type("image/JPG; charset=binary", svg=False) == "image/jpeg"
    assert allowed_type("image/vnd.microsoft.icon", svg=False) == "image/x-icon"
    for declared in ("text/html", "application/javascript", "application/octet-stream", None):
        with pytest.raises(MediaRefused):
            allowed_type(declared, svg=False)
    with pytest.raises(MediaRefused, match="SVG"):
        allowed_type("image/svg+xml", svg=False)
    assert allowed_type("image/svg+xml", svg=True) == "image/svg+xml"
    assert matches("image/svg+xml", SVG_WITH_SCRIPT)
    assert not matches("image/svg+xml", HTML_PAGE)
    for raster in ("image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"):
        assert not matches(raster, HTML_PAGE) and not matches(raster, SVG_WITH_SCRIPT)
    assert matches("image/bmp", b"BM" + b"\0" * 60)
    assert matches("image/x-icon", b"\0\0\1\0" + b"\0" * 60)


def _entry(key: str, size: int, used: float) -> CacheEntry:
    return CacheEntry(key, "image/png", size, f'"{key}"', f"http://x/{key}", used, used)


@pytest.fixture(params=["sqlite", "memory"])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> CacheMeta:
    """Each implementation of the index."""
    return SQLiteMeta(tmp_path / "store.db") if request.param == "sqlite" else MemoryMeta()


def test_the_index_keeps_totals_and_evicts_least_recently_used_first(meta: CacheMeta) -> None:
    """put/get/touch/evict/discard/stats behave alike in both implementations."""
    for i, key in enumerate("abcd"):
        meta.put(_entry(key, 100, float(i)))
    assert meta.stats().entries == 4 and meta.stats().bytes == 400
    meta.put(_entry("b", 150, 1.0))  # replaced, not added
    assert meta.stats().bytes == 450 and meta.get("b") == _entry("b", 150, 1.0)
    meta.touch([("a", 10.0)])  # a is now the most recent
    removed = meta.evict(260, keep="b")
    assert [e.key for e in removed] == ["c", "d"]  # b kept although older
    assert meta.get("c") is None and meta.get("a") is not None
    assert meta.stats().entries == 2 and meta.stats().bytes == 250
    meta.discard("a")
    meta.discard("missing")
    assert meta.stats().entries == 1 and meta.stats().bytes == 150
    meta.close()


def test_the_sqlite_index_survives_a_reopen_beside_other_tables(tmp_path: Path) -> None:
    """The index is one table in a file that may hold the store's own tables; a reopen
    finds the entries and the totals."""
    path = tmp_path / "feedfix.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE feeds (name TEXT)")
    meta = SQLiteMeta(path)
    meta.put(_entry("k", 1234, 5.0))
    meta.touch([("k", 9.0)])
    meta.close()
    again = SQLiteMeta(path)
    assert again.stats().entries == 1 and again.stats().bytes == 1234
    entry = again.get("k")
    assert entry is not None and entry.used_at == 9.0
    again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM feeds").fetchone() == (0,)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None), ("bytes=0-9", (0, 10)), ("bytes=5-", (5, 95)), ("bytes=-10", (90, 10)),
        ("bytes=-500", (0, 100)), ("bytes=90-500", (90, 10)), ("bytes=100-", False),
        ("bytes=-0", False), ("bytes=0-1,4-5", None), ("items=0-1", None), ("bytes=9-3", None),
        ("bytes=-", None),
    ],
)  # fmt: skip
def test_byte_ranges_of_a_100_byte_image(
    header: str | None, expected: tuple[int, int] | bool | None
) -> None:
    """(start, count) for one satisfiable range, False for 416, None to send it whole."""
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize(
    "line",
    ["max_size = 0", "timeout = 0", "connect_timeout = 0", "max_redirects = -1",
     "per_host = 0", "cache_size = 0", "remember_failures = -1"],
)  # fmt: skip
def test_impossible_limits_are_errors_naming_the_setting(line: str) -> None:
    """A zero size or timeout, or a negative count, is refused where the proxy's limits are
    read (the parsed ``[images]`` table), naming the key."""
    key = line.split(" ", 1)[0]
    with pytest.raises(ConfigError, match=f"images.{key}:"):
        parse_config(f"[images]\n{line}\n")


def test_settings_refuse_no_key(tmp_path: Path) -> None:
    """A proxy without a signing key (or with an empty one) cannot be built."""
    with pytest.raises(ValueError, match="key"):
        ImageSettings((), tmp_path)
    with pytest.raises(ValueError, match="key"):
        ImageSettings((b"",), tmp_path)


def test_an_image_may_not_be_larger_than_the_whole_cache(tmp_path: Path) -> None:
    """max_size over cache_size could never be cached: refused when the settings are made."""
    with pytest.raises(ValueError, match="max_size can't exceed cache_size"):
        settings(tmp_path, max_size=2_000, cache_size=1_000)
