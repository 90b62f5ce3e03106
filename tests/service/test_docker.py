"""The Docker image's recipe, checked without a Docker engine.

scripts/docker-steps.sh replays the Dockerfile: the builder stage's own COPY and RUN lines,
then the runtime stage's ENV, HEALTHCHECK and ENTRYPOINT/CMD. Slow (a wheel is built and the
dependencies installed from the package index): select with ``-m docker``, skip with
``-m "not docker"``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "docker-steps.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_steps(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run scripts/docker-steps.sh from the repository root and capture what it says."""
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.docker
def test_dockerfile_lints_clean() -> None:
    """hadolint finds nothing in the Dockerfile, and its ENV, EXPOSE, VOLUME, USER and
    HEALTHCHECK agree with each other (FEEDFIX_SERVER__PORT is the exposed port, the store is
    on the volume, the user is not root)."""
    result = run_steps("--lint", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: hadolint Dockerfile is clean" in result.stdout


@pytest.mark.docker
def test_image_install_steps_give_a_runtime_only_venv() -> None:
    """The builder stage's own RUN lines, replayed in a temporary root, build feedfix's wheel
    and install it into /opt/venv with its runtime dependencies only: no pytest, hypothesis,
    mypy, ruff or pip there, and the image's ENTRYPOINT runs from that venv."""
    result = run_steps(timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: venv has no pytest, hypothesis, mypy, ruff" in result.stdout
    assert "ok: install" in result.stdout
