"""Crash safety of `fix-posts --write`: a kill -9 in the middle of a big tree, and a full disk
(RLIMIT_FSIZE), leave every file either as it was or fully mended, never partial."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from atomcheck import REPO, stderr_text
from feedfix.core.mend import BodyRules, mend
from feedfix.core.proxies import DEFAULT_TEMPLATES, Unwrapper

RULES = BodyRules(unwrapper=Unwrapper.from_templates(DEFAULT_TEMPLATES))
TEMP_NAME = re.compile(r"^\..+\.feedfix-tmp$")


def _post(number: int, paragraphs: int) -> bytes:
    image = f"http://zkres1.myzaker.com/202206/{number:05d}_{{}}_1024.jpg"
    wrapped = "https://cors.zfour.workers.dev/?" + image
    body = "".join(
        f'<p>{"正文段落。" * 20}</p><img src="{wrapped.format(i)}" referrerpolicy="no-referrer">'
        for i in range(paragraphs)
    )
    return (
        f"---\ntitle: '第 {number} 篇'\nheadimg: '{wrapped.format(0)}'\n---\n\n<div>{body}</div>\n"
    ).encode()


def _make_tree(root: Path, count: int, paragraphs: int) -> dict[Path, tuple[bytes, bytes]]:
    """Posts under ``root``; for each, its bytes and the bytes a finished mend gives."""
    expected = {}
    for number in range(count):
        path = root / f"{number // 500:02d}" / f"{number:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _post(number, paragraphs)
        path.write_bytes(data)
        expected[path] = (data, mend(data, RULES).data)
    return expected


def _command(root: Path) -> list[str]:
    return [sys.executable, "-m", "feedfix", "fix-posts", str(root), "--write"]


def _states(expected: dict[Path, tuple[bytes, bytes]]) -> tuple[int, int]:
    """How many files are old and how many new; fails on any other content."""
    old = new = 0
    for path, (before, after) in expected.items():
        data = path.read_bytes()
        assert data in (before, after), f"{path.name} is neither old nor new ({len(data)} bytes)"
        old += data == before
        new += data == after
    return old, new


def test_kill_9_during_write_leaves_each_file_old_or_new(tmp_path: Path) -> None:
    """SIGKILL while a 3,000-post tree is being written: no file is partial, some are new and
    some still old, and the only litter is hidden temporary files beside them."""
    root = tmp_path / "posts"
    expected = _make_tree(root, 3000, 12)
    first = min(expected)
    process = subprocess.Popen(
        _command(root), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while first.read_bytes() == expected[first][0] and time.monotonic() < deadline:
        assert process.poll() is None, "fix-posts ended before writing anything"
        time.sleep(0.005)
    time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL, "the run finished before the kill"
    old, new = _states(expected)
    assert new > 0 and old > 0, (old, new)
    _assert_no_process_left(str(root))
    visible = {p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert visible == set(expected)
    litter = [p.name for p in root.rglob(".*") if p.is_file()]
    assert all(TEMP_NAME.match(name) for name in litter), litter
    rerun = subprocess.run(_command(root), cwd=REPO, capture_output=True, check=False)
    assert rerun.returncode == 0, stderr_text(rerun)
    assert _states(expected) == (0, len(expected)), "a second run finishes the job"


def _assert_no_process_left(marker: str) -> None:
    """The forked workers end when their parent is killed (within a few seconds)."""
    deadline = time.monotonic() + 10
    while True:
        left = []
        for proc in Path("/proc").iterdir():
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in command and "fix-posts" in command:
                left.append(proc.name)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes left after the kill: {left}"


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_full_disk_leaves_big_files_old_and_says_so(tmp_path: Path) -> None:
    """With files limited to 64 KB (RLIMIT_FSIZE, as a full disk would refuse them), posts
    too big to write stay exactly as they were and are reported; small ones are mended."""
    root = tmp_path / "posts"
    small = _make_tree(root / "small", 20, 2)
    big = _make_tree(root / "big", 5, 200)
    assert all(len(after) > 64 * 1024 for _, after in big.values())
    result = subprocess.run(
        _command(root), cwd=REPO, capture_output=True, check=False,
        preexec_fn=_limit_file_size,
    )  # fmt: skip
    err = stderr_text(result)
    assert result.returncode == 2, err
    assert "Traceback" not in err
    assert _states(small) == (0, len(small))
    assert _states(big) == (len(big), 0)
    for path in big:
        assert any(str(path) in line and "too large" in line.lower() for line in err.splitlines())
    assert not [p for p in root.rglob(".*") if p.is_file()], "temporary files were left"


def test_ctrl_c_during_a_parallel_write_is_quiet_and_safe(tmp_path: Path) -> None:
    """SIGINT to the whole process group (what Ctrl-C does) while workers mend: exit 130,
    no traceback from the parent or a worker, every file old or new, no process left.
    (fix-posts starts with SIGINT's default action, as from a terminal: a suite started in
    the background, ``cmd &``, has SIGINT ignored, which children would inherit.)"""
    root = tmp_path / "posts"
    expected = _make_tree(root, 2000, 12)
    first = min(expected)
    # A handler of our own, not SIG_IGN: the child then starts with the default action.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [*_command(root), "--jobs", "2"], cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while first.read_bytes() == expected[first][0] and time.monotonic() < deadline:
        assert process.poll() is None, "fix-posts ended before writing anything"
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert b"Traceback" not in err, err.decode()
    _states(expected)
    _assert_no_process_left(str(root))
