"""The image's HEALTHCHECK command, ``python -m feedfix.cli.healthcheck``: it asks the port
the config decides (file, defaults file or environment), as ``feedfix serve`` reads it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from feedfix.cli.healthcheck import health_url
from service_helpers import REPO, TEST_POLL, Service, free_port

EXAMPLE = REPO / "feedfix" / "examples" / "zaker-channel.rss.xml"


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedfix.cli.healthcheck"],
        capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, **env},
    )  # fmt: skip


def test_it_asks_the_loopback_form_of_an_address_that_listens_on_all() -> None:
    """0.0.0.0 and :: are asked on loopback; a named address as it is."""
    assert health_url("0.0.0.0", 18080) == "http://127.0.0.1:18080/healthz"
    assert health_url("::", 8080) == "http://[::1]:8080/healthz"
    assert health_url("127.0.0.2", 80) == "http://127.0.0.2:80/healthz"


def test_it_asks_the_port_the_config_file_gives_over_the_defaults_file(tmp_path: Path) -> None:
    """A service on the config file's port, a defaults file naming another: healthy (0);
    stopped: unhealthy (1), with one line saying what failed."""
    defaults = tmp_path / "defaults.toml"
    defaults.write_text(f"[server]\nport = {free_port()}\n", "utf-8")
    with Service(tmp_path / "svc", [{"name": "x", "path": str(EXAMPLE)}], poll=TEST_POLL) as svc:
        env = {"FEEDFIX_CONFIG": str(svc.config_path), "FEEDFIX_DEFAULTS": str(defaults)}
        healthy = _check(env)
        assert healthy.returncode == 0, healthy.stderr
        svc.stop()
    down = _check(env)
    assert down.returncode == 1
    assert down.stderr.startswith("feedfix healthcheck: ") and "Traceback" not in down.stderr
