"""The README's first command, run exactly as written from a fresh clone, serves a clean feed.

A newcomer clones the repository and pastes the first line of the README's first code block.
This test does that: ``git clone`` of this repository (its committed HEAD) into a temporary
folder, the command run by ``bash -c`` there with a temporary, empty HOME, and then, from the
moment the server logs ``listening``, the bundled example feed must be served clean within
10 s at ``/feeds/zaker-example.atom``, and the index must show it ok. Making the venv and
installing take up to a minute or two, hence ``slow`` (it stays in the default run).

The README's command listens on 8080. On a shared machine that port may be taken; then the
documented ``FEEDFIX_SERVER__PORT`` variable moves it and the command stays as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from atomcheck import assert_valid_atom, entries
from service_helpers import free_port, http_request, port_is_free, wait_for

ROOT = Path(__file__).resolve().parents[1]
SERVED_WITHIN = 10.0  # seconds from "listening" to the clean feed
INSTALL_TIMEOUT = 600.0  # venv and pip install on a slow, shared machine


def first_command(readme: str) -> str:
    """The first line of the README's first ``sh`` code block."""
    match = re.search(r"^```sh\n(.+?)\n", readme, re.M)
    assert match, "README.md has no ```sh block"
    return match.group(1)


def _listening(log: Path) -> dict[str, Any] | None:
    for line in log.read_text("utf-8", "replace").splitlines():
        if line.startswith("{") and '"listening"' in line:
            record: dict[str, Any] = json.loads(line)
            return record
    return None


def test_first_command_parses_as_documented() -> None:
    """The command found is the venv, the install and ``serve`` of config.example.toml."""
    command = first_command((ROOT / "README.md").read_text("utf-8"))
    assert command.startswith("python3 -m venv .venv && ")
    assert command.endswith("feedfix serve --config config.example.toml")


@pytest.mark.slow
def test_readme_first_command_serves_the_example_clean_from_a_fresh_clone(
    tmp_path: Path,
) -> None:
    """Clone, run the first command as written, and find the example served clean within
    10 s of the server starting, and ok in the index."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    command = first_command((ROOT / "README.md").read_text("utf-8"))
    clone = tmp_path / "feedfix"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDFIX_", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )  # the system's python3, as on a fresh machine, not this checkout's venv
    port = 8080
    if not port_is_free(port):
        port = free_port()
        env["FEEDFIX_SERVER__PORT"] = str(port)
    log = tmp_path / "first-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
    try:
        listening = wait_for(
            lambda: (
                _listening(log) or (proc.poll() is not None and {"exited": proc.returncode}) or None
            ),
            INSTALL_TIMEOUT,
            "the server to log 'listening'",
            interval=0.2,
        )
        assert "exited" not in listening, log.read_text("utf-8", "replace")[-3000:]
        assert listening["url"] == f"http://127.0.0.1:{port}/"
        started = time.monotonic()

        def served() -> bytes | None:
            try:
                answer = http_request(port, "/feeds/zaker-example.atom", timeout=2)
            except OSError:
                return None
            return answer.body if answer.status == 200 else None

        body = wait_for(served, SERVED_WITHIN, "the example feed to be served")
        assert time.monotonic() - started <= SERVED_WITHIN
        root = assert_valid_atom(body)
        text = body.decode("utf-8")
        assert len(entries(root)) == 3
        for junk in ("cors.zfour.workers.dev", "onclick", "opacity_0", "recommend_bottom"):
            assert junk not in text, f"{junk!r} in the served example"
        index = http_request(port, "/?format=json").json()
        rows = {row["name"]: row for row in index["feeds"]}
        assert rows["zaker-example"]["ok"] is True
    finally:
        with_group = os.getpgid(proc.pid) if proc.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert proc.returncode == 0, log.read_text("utf-8", "replace")[-3000:]
    # Everything the first command made in the checkout (the venv, the store beside the
    # config, an image folder) is ignored by git: `git status` shows nothing new.
    made = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=clone, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert made == "", f"the first run left files git does not ignore:\n{made[:2000]}"
    assert (clone / "feedfix.db").is_file(), "the store is beside config.example.toml"
