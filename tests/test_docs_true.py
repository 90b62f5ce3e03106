"""The documents say what the program does, where a test can tell: every config key the
README names is in the schema, every route of its table answers, every script or test a
document names exists, and each benchmark's targets are the ones benchmarks/README.md states
(said once, in benchmarks/targets.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from feedfix.config import FEED_KEYS, SECTION_KEYS, parse_config
from service_helpers import TEST_POLL, Service

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "SECURITY.md", "ARCHITECTURE.md", "benchmarks/README.md", "CHANGELOG.md",
        "config.example.toml", "config.docker.toml", "Dockerfile",
        "docker-compose.example.yml", "docker-compose.scaled.example.yml"]  # fmt: skip
EXAMPLE = ROOT / "feedfix" / "examples" / "zaker-channel.rss.xml"


def _text(name: str) -> str:
    return (ROOT / name).read_text("utf-8")


def _without_removed(text: str) -> str:
    """CHANGELOG's "Removed" sections name files that are gone on purpose."""
    return re.sub(r"^### Removed\n.*?(?=^##)", "", text, flags=re.M | re.S)


# ---- config keys --------------------------------------------------------------------------


def test_every_config_key_the_readme_names_is_in_the_schema() -> None:
    """Each ```toml block of the README parses (unknown keys are errors), and every key it
    names in prose (``[server] port``, ``FEEDFIX_SERVER__PORT``, a feed's ``interval``) is
    one the schema has."""
    readme = _text("README.md")
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        parse_config(block, "README.md")
    named = re.findall(r"`\[(server|storage|poll|images)\] ([a-z_]+)`", readme)
    named += re.findall(r"\[(server|storage|poll|images)\] `([a-z_]+)`", readme)
    named += [(s.lower(), k.lower()) for s, k in re.findall(r"FEEDFIX_([A-Z]+)__([A-Z_]+)", readme)
              if s != "SECTION"]  # fmt: skip
    assert len(named) >= 15
    for section, key in named:
        assert key in SECTION_KEYS[section], f"README names [{section}] {key}, not a setting"
    per_feed = readme.split("Per feed: ", 1)[1].split("\n\n", 1)[0]
    feed_keys = set(re.findall(r"`([a-z_]+)`", per_feed)) - {"convert"}
    own = {"url", "path", "rules", "title", "link", "id", "disable"}
    assert feed_keys - own <= set(FEED_KEYS), feed_keys - own - set(FEED_KEYS)
    assert set(FEED_KEYS) <= feed_keys, (
        f"keys the README's per-feed list misses: {set(FEED_KEYS) - feed_keys}"
    )


# ---- routes ---------------------------------------------------------------------------------


def _routes() -> list[tuple[str, str]]:
    table = _text("README.md").split("### HTTP routes", 1)[1].split("\n\n", 2)[1]
    found = []
    for row in table.splitlines():
        for method, path in re.findall(r"`(GET|POST) (/[^`]*)`", row.split("|")[1]):
            found.append((method, path))
    return found


def test_every_route_in_the_readmes_table_answers(tmp_path: Path) -> None:
    """A service with one feed and the image proxy on answers every route of the table with
    what its row says: none is missing (404) or refused by method (405), none fails (5xx);
    the image route with a made-up signature is the documented 403, the POSTs without a
    form token 403 (they exist and are guarded)."""
    routes = _routes()
    assert len(routes) == 11, routes
    feed = {"name": "ex", "path": str(EXAMPLE)}
    images = {"FEEDFIX_IMAGES__PROXY": "all", "FEEDFIX_SERVER__BASE_URL": "http://127.0.0.1"}
    service = Service(tmp_path, [feed], poll=TEST_POLL, env=images)
    with service:
        service.wait_served("ex")
        for method, path in routes:
            concrete = path.replace("{name}", "ex").replace("{sig}", "AAAA")
            concrete = concrete.replace("{policy}", "n").replace("{url}", "aHR0cDovL3g")
            answer = service.get(concrete, method=method)
            assert answer.status not in (404, 405) and answer.status < 500, (path, answer.status)
            if path.startswith(("/img/",)) or method == "POST":
                assert answer.status in (400, 403), (path, answer.status)
        service.stop()


# ---- files the documents name ---------------------------------------------------------------


def test_every_script_test_and_module_a_document_names_exists() -> None:
    """``scripts/…``, ``benchmarks/….py``, ``tests/….py`` and ``feedfix/…`` paths in the
    documents exist (SECURITY.md cited a removed script)."""
    pattern = re.compile(
        r"(?<![\w/.-])((?:scripts|benchmarks|tests|feedfix|docker)/[\w./-]+\.(?:py|sh|toml|md))"
    )
    checked = 0
    for name in DOCS:
        text = _text(name)
        if name == "CHANGELOG.md":
            text = _without_removed(text)
        for path in pattern.findall(text):
            checked += 1
            assert (ROOT / path).exists(), f"{name} names {path}, which does not exist"
    assert checked >= 30


# ---- benchmark targets ----------------------------------------------------------------------


def _targets() -> ModuleType:
    spec = importlib.util.spec_from_file_location("targets", ROOT / "benchmarks" / "targets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(script: str) -> str:
    """The target cell of the first row of the figures table for ``script``."""
    for line in _text("benchmarks/README.md").splitlines():
        if line.startswith(f"| `{script}"):
            return line.rsplit("|", 2)[1]
    raise AssertionError(f"benchmarks/README.md's table has no row for {script}")


def _stated() -> dict[str, tuple[str, str]]:
    """Each target, as the table states it: (script, text)."""
    t = _targets()
    return {
        "CONVERT_TIME_RATIO": ("bench_convert.py", f"≤ {t.CONVERT_TIME_RATIO:g}x"),
        "CONVERT_RSS_RATIO": ("bench_convert.py", f"< {t.CONVERT_RSS_RATIO:g}x input"),
        "SERVE_200": ("bench_serve.py", f"≥ {t.SERVE_200:g}x"),
        "SERVE_304": ("bench_serve.py", f"≥ {t.SERVE_304:g}x"),
        "SERVE_FORMAT_SHARE": ("bench_serve.py", f"≥ {t.SERVE_FORMAT_SHARE:g}x the Atom's"),
        "RENDER_RATIO": ("bench_formats.py", f"≤ {t.RENDER_RATIO:g}x the Atom's"),
        "IMAGES_200": ("bench_images.py", f"≥ {t.IMAGES_200:g}x"),
        "IMAGES_304": ("bench_images.py", f"≥ {t.IMAGES_304:g}x"),
        "IMAGES_COLD_MS": ("bench_images.py", f"< {t.IMAGES_COLD_MS:g} ms"),
        "FIX_POSTS_PER_S": ("bench_fix_posts.py", f"≥ {t.FIX_POSTS_PER_S:,.0f} posts/s"),
        "SAVE_IMAGES_RSS_MB": ("bench_fix_posts_images.py", f"≤ {t.SAVE_IMAGES_RSS_MB:g} MB"),
        "POLL_304_SHARE": ("bench_poll.py", f"< {t.POLL_304_SHARE * 100:g} %"),
        "POLL_RSS_MB": ("bench_poll.py", f"≤ {t.POLL_RSS_MB:g} MB"),
        "LOAD_DRIFT": ("bench_load.py", f"within {t.LOAD_DRIFT * 100:g} %"),
        "ARCHIVE_SERVING": ("bench_archive.py", f"≥ {t.ARCHIVE_SERVING:g}x"),
        "ARCHIVE_RSS_MB": ("bench_archive.py", f"within {t.ARCHIVE_RSS_MB:g} MB"),
    }


def test_every_benchmark_target_is_stated_in_the_table_and_nowhere_else_differently() -> None:
    """benchmarks/targets.py is the one source: the table states each target (in its
    benchmark's row), the prose states no other target number, and the scripts print only
    targets.py's (no number after "target" in their strings)."""
    stated = _stated()
    names = {k for k in vars(_targets()) if k.isupper()} - {"CONVERT_ITEMS"}
    assert names == set(stated), names ^ set(stated)
    for name, (script, text) in stated.items():
        assert text in _row(script), f"{name}: the {script} row does not say {text!r}"
    readme = _text("benchmarks/README.md")
    prose = "\n".join(line for line in readme.splitlines() if not line.startswith("| `bench"))
    said = {text.split(" ", 1)[1] for _, text in stated.values()}
    for sentence in re.findall(r"[Tt]argets?\b[^.|]*", prose):
        for number in re.findall(r"[≤≥<>]=?\s*(\d[\d,.]*\s*(?:x|×|MB|ms|%| %|posts/s))", sentence):
            assert number.replace("×", "x") in said, f"the prose states a target {number!r}"
    for bench in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        source = bench.read_text("utf-8")
        literal = re.findall(r"target[^\"{}.]*?\s(?:[<>]=?|≤|≥|within)\s*\d", source, re.I)
        assert not literal, f"{bench.name} prints a target of its own: {literal}"
        if "PASS" in source:
            assert "import targets" in source, bench.name


@pytest.mark.parametrize("name", ["README.md", "config.example.toml"])
def test_a_path_is_watched_by_the_same_four_things_everywhere(name: str) -> None:
    """README and config.example.toml say the same of what a path source's stat watches."""
    text = " ".join(re.sub(r"#\s*", "", _text(name)).split())
    assert "name, inode, size and modification time" in text


def test_compose_is_spelled_both_ways_for_both_example_files() -> None:
    """Debian 12's docker.io has no `docker compose` plugin (its docker-compose is v1): the
    README and both example files give each command in both spellings, and the README says
    which suite runs which."""
    readme = _text("README.md")
    for name in ("docker-compose.example.yml", "docker-compose.scaled.example.yml"):
        header = _text(name)
        for spelling in ("docker compose -f", "docker-compose -f"):
            assert f"{spelling} {name} up" in header, (name, spelling)
    docker = readme.split("## Docker sidecar", 1)[1].split("\n## ", 1)[0]
    assert "docker compose -f docker-compose.example.yml up" in docker
    assert "docker-compose -f docker-compose.example.yml up" in docker
    assert "docker-compose` package" in docker and "Compose v2" in docker
