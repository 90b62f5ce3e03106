"""``docker-compose.scaled.example.yml`` is a valid compose file for replicas on one Redis.

Validated by compose itself (``docker-compose config`` needs no engine), then read back: two
feedfix replicas on the same Redis URL and the same image volume, a Redis with AOF
``everysec`` and ``noeviction``, and a load balancer in front whose config names both
replicas.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCALED = ROOT / "docker-compose.scaled.example.yml"


def _compose() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    message = "docker-compose is not installed (apt-get install docker-compose)"
    if os.environ.get("FEEDFIX_REQUIRE_DOCKER"):
        pytest.fail(f"{message}; FEEDFIX_REQUIRE_DOCKER is set")
    pytest.skip(message)


def test_scaled_compose_file_runs_two_replicas_on_one_redis() -> None:
    """Compose accepts the file; the replicas share one Redis configured not to evict."""
    done = subprocess.run(
        [*_compose(), "-f", str(SCALED), "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    replicas = [s for name, s in services.items() if name.startswith("feedfix-")]
    assert len(replicas) == 2
    urls = {r["environment"]["FEEDFIX_STORAGE__URL"] for r in replicas}
    assert len(urls) == 1 and urls.pop().startswith("redis://redis:")
    assert all(r["environment"]["FEEDFIX_STORAGE__BACKEND"] == "redis" for r in replicas)
    assert all(r["read_only"] for r in replicas)
    mounts = [_named_volumes(r["volumes"]) for r in replicas]
    assert mounts[0] == mounts[1] == {("images", "/data")}  # one image folder, both replicas
    assert all(r["environment"]["FEEDFIX_IMAGES__PATH"] == "/data/images" for r in replicas)
    command = " ".join(services["redis"]["command"])
    assert "--appendfsync everysec" in command and "--maxmemory-policy noeviction" in command
    balancer = (ROOT / "nginx.scaled.conf").read_text("utf-8")
    assert "feedfix-1:8080" in balancer and "feedfix-2:8080" in balancer
    assert "rsshub" in services and services["rsshub"]["environment"]["CACHE_TYPE"] == "redis"


def _named_volumes(volumes: list[Any]) -> set[tuple[str, str]]:
    """A service's named volumes as (volume, mount point), in compose's long or short form."""
    found = set()
    for volume in volumes:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if not source.startswith((".", "/")):
                found.add((source, target))
        elif volume.get("type") == "volume":
            found.add((volume["source"], volume["target"]))
    return found
