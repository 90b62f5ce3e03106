"""The examining workers stay a bounded distance ahead of whoever reads their outcomes."""

from __future__ import annotations

import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from feedfix.cli import mend_runner
from feedfix.cli.mend_runner import AHEAD, SETTLE, MendSettings, Outcome, examine_all
from feedfix.core.mend import BodyRules


def test_workers_examine_at_most_ahead_files_before_a_slow_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that takes a while per outcome (``--save-images`` waits on the network):
    the workers never hold more than AHEAD outcomes it has not taken (Pool.imap alone
    examined the whole tree at once and queued every mended post in memory)."""
    log = tmp_path / "examined"
    log.touch()

    def examine(path: Path, settings: MendSettings) -> Outcome:
        with log.open("a") as handle:  # the workers are forked: they count in a file
            handle.write("x")
        return Outcome(path, "unchanged")

    monkeypatch.setattr(mend_runner, "examine", examine)
    paths = [tmp_path / f"{i}.md" for i in range(3 * AHEAD)]
    settings = MendSettings(BodyRules(), 1000, frozenset(), diff=False, colour=False,
                            keep_data=False)  # fmt: skip
    most = 0
    with closing(examine_all(paths, settings, jobs=2)) as outcomes:
        for taken, outcome in enumerate(outcomes, 1):
            assert outcome.status == "unchanged"
            time.sleep(0.002)  # the slow reader
            most = max(most, log.stat().st_size - taken)
    assert log.stat().st_size == len(paths)
    assert most <= AHEAD


def test_closing_early_ends_the_workers_while_paths_wait(tmp_path: Path) -> None:
    """The reader stops after one outcome (an error, Ctrl-C) while the pool's feeding
    thread waits for room: closing returns at once instead of waiting for it forever."""
    paths = [tmp_path / f"{i}.md" for i in range(3 * AHEAD)]
    settings = MendSettings(BodyRules(), 1000, frozenset(), diff=False, colour=False,
                            keep_data=False)  # fmt: skip
    outcomes = examine_all(paths, settings, jobs=2)
    assert next(outcomes).status == "failed"  # (the files do not exist)
    closer = threading.Thread(target=outcomes.close, daemon=True)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive(), "closing the outcomes hangs"


def test_closing_while_workers_send_big_outcomes_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader stops (Ctrl-C) while workers are writing outcomes larger than a pipe holds
    (``--write`` brings each mended file back). Pool.terminate killed a worker halfway
    through one, and its result thread then waited forever for the rest of it: Ctrl-C hung
    ``fix-posts --jobs`` now and then under load. Closing must return, every time."""

    def examine(path: Path, settings: MendSettings) -> Outcome:
        return Outcome(path, "changed", data=b"x" * 256_000)

    monkeypatch.setattr(mend_runner, "examine", examine)
    paths = [tmp_path / f"{i}.md" for i in range(3 * AHEAD)]
    settings = MendSettings(BodyRules(), 1000, frozenset(), diff=False, colour=False,
                            keep_data=True)  # fmt: skip
    for _ in range(8):
        outcomes = examine_all(paths, settings, jobs=2)
        assert next(outcomes).status == "changed"
        time.sleep(0.05)  # the workers are busy sending
        closer = threading.Thread(target=outcomes.close, daemon=True)
        closer.start()
        # what they still send is taken at once: well before SETTLE, the bound on waiting
        closer.join(timeout=SETTLE / 2)
        assert not closer.is_alive(), "closing hangs (or waits out SETTLE) while workers send"
