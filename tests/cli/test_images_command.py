"""``feedfix images``: the archive's state from the store, as a person or a script reads it.

The store is filled here through the index itself (what the service writes); the command
runs as a user runs it, in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

from feedfix.service.images.archive_index import Ref
from feedfix.service.images.archive_sqlite import SQLiteArchiveIndex
from feedfix.service.images.meta import CACHE_SCHEMA, CacheEntry, SQLiteMeta
from service_helpers import run_cli

NOW = 1_800_000_000.0


def _config(tmp: Path, store: str) -> Path:
    config = tmp / "c.toml"
    config.write_text(
        f"[server]\nbase_url = 'https://f.example'\n[storage]\npath = '{store}'\n"
        "[images]\nproxy = 'all'\narchive = true\n"
        "[[feeds]]\nname = 'pics'\nurl = 'https://rsshub.example/pics'\n"
        "[[feeds]]\nname = 'other'\nurl = 'https://rsshub.example/other'\n",
        "utf-8",
    )
    return config


def _store(path: Path) -> None:
    """One archived image, one retrying after a 404, one given up after a timeout."""
    meta, index = SQLiteMeta(path), SQLiteArchiveIndex(path, CACHE_SCHEMA)
    refs = [Ref(k * 4, f"/img/v1/s/n/{k}", f"https://img.example/{k}.jpg") for k in "abc"]
    index.update("pics", NOW, {"e1": NOW}, {"e1": refs}, 0)
    meta.put(CacheEntry("aaaa", "image/jpeg", 1500, '"e"', "u", NOW, NOW))
    index.claim(NOW, 10, 60)
    index.archived({"aaaa": 1500})
    index.failed("bbbb", NOW, "404", "origin answered 404", NOW + 60)
    index.failed("cccc", NOW, "timeout", "no complete answer within 20 s", None)
    meta.close()
    index.close()


def test_counts_per_feed_and_the_failures_with_their_reason(tmp_path: Path) -> None:
    """Text: a line for all feeds and one per feed; ``--failed``: each failure's reason,
    state and URL. ``--json``: the same for scripts."""
    _store(tmp_path / "s.db")
    config = _config(tmp_path, str(tmp_path / "s.db"))
    done = run_cli("images", "--config", str(config), "--failed")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "all feeds: 1 images archived, 0.0 MB; 0 pending, 1 to be tried again, 1 could not be kept"
    )
    assert lines[1].startswith("  pics: 1 images archived") and lines[2].startswith("  other: 0")
    assert any(
        line.startswith("404") and "https://img.example/b.jpg" in line
        and "will be tried again" in line for line in lines
    )  # fmt: skip
    assert any(line.startswith("timeout") and "given up" in line for line in lines)
    data = json.loads(run_cli("images", "--config", str(config), "--json", "--failed").stdout)
    assert data["total"]["archived"] == 1 and data["total"]["bytes"] == 1500
    assert data["total"]["reasons"] == {"404": 1, "timeout": 1}
    assert {r["reason"]: r["state"] for r in data["failed"]} == {
        "404": "retrying",
        "timeout": "failed",
    }
    assert data["feeds"]["other"]["archived"] == 0


def test_retry_makes_the_failures_pending_again(tmp_path: Path) -> None:
    """``--retry``: both failures pending, none listed as failed any more."""
    _store(tmp_path / "s.db")
    config = str(_config(tmp_path, str(tmp_path / "s.db")))
    data = json.loads(run_cli("images", "--config", config, "--json", "--retry", "--failed").stdout)
    assert data["retried"] == 2 and data["failed"] == []
    assert data["total"]["pending"] == 2


def test_a_bad_question_is_one_line(tmp_path: Path) -> None:
    """An unknown feed, a store that does not exist yet, a store that keeps nothing: exit
    2 and one line each, never a traceback."""
    config = _config(tmp_path, str(tmp_path / "missing.db"))
    cases = {
        ("--feed", "nope"): "no feed named 'nope' (feeds: pics, other)",
        (): "no store yet (has feedfix served?)",
    }
    for args, message in cases.items():
        done = run_cli("images", "--config", str(config), *args)
        assert done.returncode == 2 and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    memory = _config(tmp_path, ":memory:")
    done = run_cli("images", "--config", str(memory))
    assert done.returncode == 2 and "keeps no image archive" in done.stderr
