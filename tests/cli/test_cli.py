"""The `feedfix` command line, run as a user runs it: a subprocess per call, bytes in and out.

Expectations are computed from the fixtures in tests/data (or written from reading them), never
from feedfix's own output. Every Atom document that comes out is validated with assert_valid_atom.
"""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

from atomcheck import (
    DATA,
    EPOCH,
    REPO,
    WRAPPER_RE,
    assert_converted,
    assert_one_line_error,
    assert_valid_atom,
    describe,
    entries,
    feed_text,
    html_fragment,
    run_feedfix,
    stderr_text,
    unwrap,
    visible_text,
)

FEED_FIXTURES = [
    "zaker-classic.rss.xml",
    "zaker-modern.rss.xml",
    "atom10.atom.xml",
    "atom03.atom.xml",
    "rss10.rdf",
    "rss091.xml",
    "nodates.rss.xml",
    "relative.atom.xml",
    "relative.rss.xml",
    "proxies.rss.xml",
    "lazy-images.rss.xml",
    "hostile-html.rss.xml",
    "gbk.rss.xml",
    "gb2312-declared-gbk.rss.xml",
    "big5.rss.xml",
    "utf16le-bom.rss.xml",
    "utf16be-bom.rss.xml",
    "utf16le-nobom.rss.xml",
    "gb18030.rss.xml",
    "latin1.rss.xml",
    "utf8-bom.rss.xml",
]
POSTS = DATA / "posts"
POST_FILES = [
    "posts/2023/03/data-pipeline.md",
    "posts/2023/edge-network.md",
    "posts/archive/deep/nested/weekly-notes.txt",
]
ALL_INPUTS = [*FEED_FIXTURES, *POST_FILES, "posts"]
RULES = [
    "unwrap-proxies",
    "drop-empty-junk",
    "fix-lazy-images",
    "sanitize",
    "remove",
    "filter",
    "limit",
]
TRAILER_IDS = ("recommend_bottom", "article_bottom")
EXPLAIN_LINE = re.compile(
    r"^(?P<rule>[a-z][a-z-]*): (?P<changes>\d+) (?P<unit>[^\d].*?) in (?P<entries>\d+) "
    r"entr(?:y|ies)$"
)


@functools.cache
def _convert(name: str) -> bytes:
    """Convert one fixture (path relative to tests/data) once per session; assert it worked."""
    result = run_feedfix("convert", DATA / name)
    assert_converted(result)
    return result.stdout


def _items(path: Path) -> list[lxml.html.HtmlElement]:
    """Each RSS item description of a fixture, parsed as HTML (the tests' own reading)."""
    tree = etree.parse(str(path))
    return [html_fragment(d or "") for d in tree.xpath("//item/description/text()")]


def _wrapped_count(item_xml: str) -> int:
    return len(re.findall(r"cors\.zfour\.workers\.dev/\?", item_xml))


def _item_blocks(path: Path) -> list[str]:
    return re.findall(r"<item>.*?</item>", path.read_text(encoding="utf-8"), flags=re.S)


def _has_text_or_media(element: lxml.html.HtmlElement) -> bool:
    media = element.xpath(".//img|.//video|.//audio|.//picture|.//iframe|.//source")
    return bool(element.text_content().strip()) or bool(media)


def _empty_trailers_removed(fragment: lxml.html.HtmlElement) -> int:
    """How many trailer divs drop-empty-junk should remove, removing repeatedly (the oracle)."""
    removed = 0
    while True:
        empty = [
            div
            for div in fragment.iter("div")
            if div.get("id") in TRAILER_IDS and not _has_text_or_media(div)
        ]
        if not empty:
            return removed
        for div in empty:
            div.drop_tree()
            removed += 1


def _explain_lines(result: subprocess.CompletedProcess[bytes]) -> dict[str, tuple[int, int]]:
    counts = {}
    for line in stderr_text(result).splitlines():
        if line.split(":", 1)[0].strip() not in RULES:
            continue  # e.g. a total line; only the per-rule lines have a documented form
        match = EXPLAIN_LINE.match(line.strip())
        assert match, f"--explain line not in the documented form: {line!r}"
        counts[match["rule"]] = (int(match["changes"]), int(match["entries"]))
    return counts


def _content_fragments(root: etree._Element) -> Iterator[lxml.html.HtmlElement]:
    for entry in entries(root):
        yield html_fragment(entry.content_html)


def _srcset_urls(value: str) -> list[str]:
    return [candidate.split()[0] for candidate in value.split(",") if candidate.strip()]


# ---- the program and its help ----------------------------------------------------------------


def test_python_m_help_lists_commands() -> None:
    """`python -m feedfix --help` exits 0 and mentions the convert and rules commands."""
    result = run_feedfix("--help")
    assert result.returncode == 0, describe(result)
    assert b"convert" in result.stdout
    assert b"rules" in result.stdout


def test_convert_help_lists_every_option() -> None:
    """`convert --help` documents every option of the contract."""
    result = run_feedfix("convert", "--help")
    assert result.returncode == 0, describe(result)
    text = result.stdout.decode()
    for option in (
        "-o",
        "--title",
        "--id",
        "--link",
        "--config",
        "--no-rule",
        "--explain",
        "--strict",
        "--max-size",
        "--timezone",
    ):
        assert option in text, f"{option} missing from convert --help"


def test_version_matches_pyproject() -> None:
    """`feedfix --version` prints the version declared in pyproject.toml and exits 0."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = run_feedfix("--version")
    assert result.returncode == 0, describe(result)
    assert version in (result.stdout + result.stderr).decode(), describe(result)


def test_console_script_matches_python_m() -> None:
    """The installed `feedfix` console script works and writes the same bytes as python -m."""
    script = Path(sys.executable).with_name("feedfix")
    assert script.exists(), f"console script not installed next to {sys.executable}"
    result = run_feedfix("convert", DATA / "zaker-classic.rss.xml", executable=[str(script)])
    assert_converted(result)
    assert result.stdout == _convert("zaker-classic.rss.xml")


def test_rules_lists_every_rule_with_help() -> None:
    """`feedfix rules` names all seven rules, each on a line with some help text."""
    result = run_feedfix("rules")
    assert result.returncode == 0, describe(result)
    lines = result.stdout.decode().splitlines()
    for rule in RULES:
        described = [
            line
            for line in lines
            if re.search(rf"(?<![\w-]){re.escape(rule)}(?![\w-])", line)
            and len(line.replace(rule, "").split()) >= 3
        ]
        assert described, f"rule {rule!r} not listed with help text in: {lines}"


# ---- conversion of every fixture -----------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_INPUTS)
def test_every_input_converts_to_valid_atom_without_wrappers(name: str) -> None:
    """Each fixture converts to valid Atom in which no proxy-wrapper host survives."""
    data = _convert(name)
    found = WRAPPER_RE.search(data.decode("utf-8"))
    assert found is None, f"wrapper host {found.group(0) if found else ''} left in output"


@pytest.mark.parametrize("name", ALL_INPUTS)
def test_converting_the_output_again_is_idempotent(name: str, tmp_path: Path) -> None:
    """Converting feedfix's own output again gives identical bytes."""
    first = _convert(name)
    again = tmp_path / "first.atom"
    again.write_bytes(first)
    result = run_feedfix("convert", again)
    assert_converted(result)
    assert result.stdout == first, "second conversion changed the output"


@pytest.mark.parametrize("name", ["zaker-classic.rss.xml", "nodates.rss.xml", "posts"])
def test_output_is_deterministic_across_time_and_local_zone(name: str) -> None:
    """Two runs a second apart, under different local time zones, give byte-identical output."""
    first = run_feedfix("convert", DATA / name, env={"TZ": "UTC"})
    time.sleep(1.1)
    second = run_feedfix("convert", DATA / name, env={"TZ": "Asia/Tokyo"})
    assert_converted(first)
    assert_converted(second)
    assert first.stdout == second.stdout


def test_posts_folder_output_does_not_depend_on_its_location(tmp_path: Path) -> None:
    """The same posts folder copied elsewhere converts to the same bytes (ids are stable)."""
    copy = tmp_path / "elsewhere" / "posts"
    shutil.copytree(POSTS, copy)
    result = run_feedfix("convert", copy)
    assert_converted(result)
    assert result.stdout == _convert("posts")


def _feed_id(atom: bytes) -> str | None:
    return etree.fromstring(atom).findtext("{http://www.w3.org/2005/Atom}id")


def test_a_posts_folder_keeps_its_feed_id_as_posts_are_added(tmp_path: Path) -> None:
    """A folder of posts has no id of its own: the one made up comes from its name and title,
    so a new post does not make readers see a new feed; ``--id`` and ``--link`` still win."""
    folder = tmp_path / "blog" / "_posts"
    shutil.copytree(POSTS, folder)
    before = run_feedfix("convert", folder)
    assert_converted(before)
    (folder / "new-post.md").write_text(
        "---\ntitle: 新的一篇\ndate: 2026-11-30 10:00:00\n---\n<p>正文</p>\n", encoding="utf-8"
    )
    after = run_feedfix("convert", folder)
    assert_converted(after)
    assert (
        len(entries(assert_valid_atom(after.stdout)))
        == len(entries(assert_valid_atom(before.stdout))) + 1
    )
    made_up = _feed_id(after.stdout)
    assert made_up == _feed_id(before.stdout)
    assert made_up is not None and made_up.startswith("urn:feedfix:folder:")
    titled = run_feedfix("convert", folder, "--title", "Another blog")
    assert _feed_id(titled.stdout) not in (made_up, None)  # another feed, another id
    assert _feed_id(run_feedfix("convert", folder, "--id", "urn:x:blog").stdout) == "urn:x:blog"
    linked = run_feedfix("convert", folder, "--link", "https://blog.example/")
    assert _feed_id(linked.stdout) == "https://blog.example/"


def test_output_option_writes_the_same_atom_to_a_file(tmp_path: Path) -> None:
    """`-o FILE` writes the Atom to FILE (same bytes as stdout) and nothing to stdout."""
    target = tmp_path / "out.atom"
    result = run_feedfix("convert", DATA / "zaker-modern.rss.xml", "-o", target)
    assert result.returncode == 0, describe(result)
    assert result.stdout == b""
    written = target.read_bytes()
    assert_valid_atom(written)
    assert written == _convert("zaker-modern.rss.xml")


@pytest.mark.parametrize("name", ["zaker-classic.rss.xml", "nodates.rss.xml", "gbk.rss.xml"])
def test_stdin_dash_gives_the_same_output_as_the_file(name: str) -> None:
    """`convert -` reads the feed from stdin and writes the same bytes as for the file."""
    result = run_feedfix("convert", "-", stdin=(DATA / name).read_bytes())
    assert_converted(result)
    assert result.stdout == _convert(name)


def test_stdin_accepts_a_post() -> None:
    """A Hexo post piped to `convert -` becomes one entry with its front-matter title."""
    post = DATA / "posts/2023/03/data-pipeline.md"
    root = assert_converted(run_feedfix("convert", "-", stdin=post.read_bytes()))
    assert [e.title for e in entries(root)] == ["一次数据管道迁移的复盘"]


# ---- rules -----------------------------------------------------------------------------------


def test_zaker_classic_images_are_restored_and_cleaned() -> None:
    """Classic ZAKER imgs get their data-original as src, data-* sizes, no lazy classes."""
    sources = [img for item in _items(DATA / "zaker-classic.rss.xml") for img in item.iter("img")]
    root = assert_valid_atom(_convert("zaker-classic.rss.xml"))
    outputs = [img for fragment in _content_fragments(root) for img in fragment.iter("img")]
    assert len(outputs) == len(sources) == 4
    for source, output in zip(sources, outputs, strict=True):
        assert output.get("src") == source.get("data-original")
        assert output.get("width") == source.get("data-width")
        assert output.get("height") == source.get("data-height")
        classes = (output.get("class") or "").split()
        assert "lazy" not in classes and "opacity_0" not in classes, classes
        assert output.get("referrerpolicy") == "no-referrer"


def test_zaker_trailers_and_bare_onclick_are_gone() -> None:
    """Empty trailer divs and every (bare) onclick disappear; a trailer with text stays."""
    root = assert_valid_atom(_convert("zaker-classic.rss.xml"))
    kept = []
    for fragment in _content_fragments(root):
        for element in fragment.iter():
            assert not [a for a in element.attrib if a.lower().startswith("on")], element.attrib
            if element.get("id") in TRAILER_IDS:
                assert _has_text_or_media(element), f"empty #{element.get('id')} left in output"
                kept.append(element.get("id"))
    assert kept == ["recommend_bottom"], "the non-empty recommend_bottom must stay"


def test_modern_zaker_unwraps_img_and_enclosure() -> None:
    """Modern ZAKER (no data-original): img src and enclosure are unwrapped to zkres hosts."""
    blocks = _item_blocks(DATA / "zaker-modern.rss.xml")
    root = assert_valid_atom(_convert("zaker-modern.rss.xml"))
    for block, entry in zip(blocks, entries(root), strict=True):
        wrapped = re.findall(r'src="([^"]+)"', block)
        assert entry.img_srcs == [unwrap(url) for url in wrapped]
        enclosure = re.search(r'<enclosure url="([^"]+)"', block)
        assert enclosure is not None
        assert [link.href for link in entry.links_by_rel("enclosure")] == [
            unwrap(enclosure.group(1))
        ]


def test_unwrap_reaches_srcset_picture_video_audio_links_and_data_attributes() -> None:
    """Wrapped URLs are unwrapped in srcset, picture source, video/audio, a href and data-*."""
    root = assert_valid_atom(_convert("proxies.rss.xml"))
    fragment = html_fragment(entries(root)[1].content_html)
    img = fragment.xpath("//img")[0]
    assert _srcset_urls(img.get("srcset", "")) == [
        "https://cdn.zoo.example.com/i-1x.jpg",
        "https://cdn.zoo.example.com/i-2x.jpg",
    ]
    assert img.get("data-full") == "https://cdn.zoo.example.com/i-full.jpg"
    source = fragment.xpath("//picture/source")[0]
    assert _srcset_urls(source.get("srcset", "")) == ["https://cdn.zoo.example.com/j.webp"]
    video = fragment.xpath("//video")[0]
    assert video.get("src") == "https://media.zoo.example.com/clip.mp4"
    assert video.get("poster") == "https://cdn.zoo.example.com/poster.jpg"
    assert fragment.xpath("//audio")[0].get("src") == "https://media.zoo.example.com/call.mp3"
    assert fragment.xpath("//a")[0].get("href") == "https://cdn.zoo.example.com/full-size.jpg"


def test_host_path_wrapper_without_ssl_hint_keeps_host_and_path() -> None:
    """An i0.wp.com/HOST/PATH wrapper without ssl=1 unwraps to HOST/PATH (http or https)."""
    root = assert_valid_atom(_convert("proxies.rss.xml"))
    assert entries(root)[2].img_srcs in (
        ["https://cdn.zoo.example.com/m/n.png"],
        ["http://cdn.zoo.example.com/m/n.png"],
    ), entries(root)[2].img_srcs


def test_lazy_placeholders_are_replaced_by_real_sources() -> None:
    """fix-lazy-images: placeholder/wrapped-copy src -> data-original/data-src; sizes; classes."""
    root = assert_valid_atom(_convert("lazy-images.rss.xml"))
    imgs = list(html_fragment(entries(root)[0].content_html).iter("img"))
    assert [img.get("src") for img in imgs] == [
        "https://img.lazy.example.org/one.jpg",
        "https://img.lazy.example.org/two.png",
        "https://img.lazy.example.org/three.jpg",
        "http://img.lazy.example.org/four.jpg",
        "https://img.lazy.example.org/five.jpg",
    ]
    sizes = [(img.get("width"), img.get("height")) for img in imgs]
    assert sizes[0] == ("640", "480") and sizes[3] == ("300", "200") and sizes[4] == ("120", "90")
    classes = [(img.get("class") or "").split() for img in imgs]
    assert all("lazy" not in c and "opacity_0" not in c for c in classes), classes
    assert "note" in classes[2] and "photo" in classes[4], classes
    assert imgs[0].get("referrerpolicy") == imgs[3].get("referrerpolicy") == "no-referrer"


def _dangerous(value: str) -> bool:
    squashed = re.sub(r"[\x00-\x20]+", "", value).lower()
    return squashed.startswith(("javascript:", "vbscript:", "data:text/html"))


def test_sanitize_removes_active_content_but_keeps_the_text() -> None:
    """sanitize drops script/style/form/object/embed/iframe, on* and script URLs; text stays."""
    data = _convert("hostile-html.rss.xml")
    root = assert_valid_atom(data)
    for payload in ("SCRIPT-PAYLOAD", "STYLE-PAYLOAD", "FORM-PAYLOAD", "IFRAME-PAYLOAD", "alert("):
        assert payload.encode() not in data, f"{payload} survived sanitize"
    fragment = html_fragment(entries(root)[0].content_html)
    for tag in ("script", "style", "form", "input", "object", "embed", "iframe"):
        assert not fragment.xpath(f"//{tag}"), f"<{tag}> survived sanitize"
    for element in fragment.iter():
        handlers = [name for name in element.attrib if name.lower().startswith("on")]
        assert not handlers, f"{element.tag!r} keeps {handlers}"
        for name, value in element.attrib.items():
            assert not _dangerous(value), f"{element.tag!r} {name}={value!r} survived sanitize"
    text = visible_text(entries(root)[0].content_html)
    for kept in (
        "Intro paragraph that stays.",
        "Bare onclick, text stays.",
        "Mixed-case handlers, text stays.",
        "plain javascript",
        "hex entity",
        "data html upper",
        "a safe link that stays",
        "Closing paragraph that stays.",
    ):
        assert kept in text, f"{kept!r} lost by sanitize"
    assert fragment.xpath("//a/@href").count("https://hostile.example.org/safe") == 1
    assert fragment.xpath("//img/@src") == ["https://img.hostile.example.org/ok.jpg"]


def test_sanitize_keeps_allowlisted_video_iframe_sandboxed() -> None:
    """A YouTube embed stays as a sandboxed iframe; an iframe from an unknown host goes."""
    root = assert_valid_atom(_convert("hostile-html.rss.xml"))
    iframes = html_fragment(entries(root)[1].content_html).xpath("//iframe")
    assert [f.get("src") for f in iframes] == ["https://www.youtube.com/embed/dQw4w9WgXcQ"]
    assert iframes[0].get("sandbox") is not None, "allowlisted iframe must carry sandbox"


# ---- --explain ---------------------------------------------------------------------------------


def _expected_counts() -> dict[str, dict[str, dict[str, int]]]:
    """Per-fixture rule counts computed from the fixtures themselves (not from feedfix)."""
    modern = _item_blocks(DATA / "zaker-modern.rss.xml")
    wrapped = [_wrapped_count(block) for block in modern]
    classic = _items(DATA / "zaker-classic.rss.xml")
    trailers = [_empty_trailers_removed(item) for item in classic]
    lazy = [any("lazy" in (img.get("class") or "") for img in item.iter("img")) for item in classic]
    onclick = [any("onclick" in el.attrib for el in item.iter()) for item in classic]
    return {
        "zaker-modern.rss.xml": {
            "unwrap-proxies": {"changes": sum(wrapped), "entries": sum(1 for w in wrapped if w)},
        },
        "zaker-classic.rss.xml": {
            "drop-empty-junk": {"changes": sum(trailers), "entries": sum(1 for t in trailers if t)},
            "fix-lazy-images": {"entries": sum(lazy)},
            "sanitize": {"entries": sum(onclick)},
        },
    }


def test_expected_counts_are_not_trivial() -> None:
    """The fixture-derived counts used by the --explain tests are the ones read off the files."""
    counts = _expected_counts()
    assert counts["zaker-modern.rss.xml"]["unwrap-proxies"] == {"changes": 5, "entries": 2}
    assert counts["zaker-classic.rss.xml"]["drop-empty-junk"] == {"changes": 5, "entries": 3}


@pytest.mark.parametrize("name", ["zaker-modern.rss.xml", "zaker-classic.rss.xml"])
def test_explain_text_counts_match_the_fixture(name: str) -> None:
    """`--explain` prints `rule: N things in M entries` lines whose counts match the fixture."""
    result = run_feedfix("convert", DATA / name, "--explain")
    assert_converted(result)
    assert result.stdout == _convert(name), "--explain must not change the Atom output"
    counts = _explain_lines(result)
    for rule, expected in _expected_counts()[name].items():
        assert rule in counts, f"{rule} missing from --explain: {stderr_text(result)!r}"
        changes, touched = counts[rule]
        assert touched == expected["entries"], f"{rule}: {touched} entries != {expected}"
        if "changes" in expected:
            assert changes == expected["changes"], f"{rule}: {changes} changes != {expected}"


@pytest.mark.parametrize("name", ["zaker-modern.rss.xml", "zaker-classic.rss.xml"])
def test_explain_json_matches_the_fixture_and_the_text_form(name: str) -> None:
    """`--explain=json` is a JSON object of rule -> {changes, entries}, agreeing with the text."""
    result = run_feedfix("convert", DATA / name, "--explain=json")
    assert_converted(result)
    report = json.loads(stderr_text(result))
    assert isinstance(report, dict) and report
    for rule, value in report.items():
        assert rule in RULES, f"unknown rule {rule!r} in --explain=json"
        assert isinstance(value["changes"], int) and isinstance(value["entries"], int), value
    for rule, expected in _expected_counts()[name].items():
        for key, number in expected.items():
            assert report[rule][key] == number, f"{rule}.{key}: {report[rule]} != {expected}"
    text = _explain_lines(run_feedfix("convert", DATA / name, "--explain"))
    for rule, (changes, touched) in text.items():
        assert (report[rule]["changes"], report[rule]["entries"]) == (changes, touched), (
            f"{rule}: text {changes}/{touched} vs json {report[rule]}"
        )


# ---- --no-rule ---------------------------------------------------------------------------------


def test_no_rule_drop_empty_junk_keeps_the_trailers() -> None:
    """With `--no-rule drop-empty-junk` the empty trailer divs stay in the content."""
    result = run_feedfix("convert", DATA / "zaker-classic.rss.xml", "--no-rule", "drop-empty-junk")
    root = assert_converted(result)
    ids = [el.get("id") for f in _content_fragments(root) for el in f.iter() if el.get("id")]
    expected = sum(_empty_trailers_removed(i) for i in _items(DATA / "zaker-classic.rss.xml"))
    assert sum(ids.count(t) for t in TRAILER_IDS) == expected + 1  # + the non-empty one


def test_no_rule_is_repeatable_and_unwrap_can_be_turned_off() -> None:
    """`--no-rule unwrap-proxies --no-rule drop-empty-junk` leaves wrappers and trailers alone."""
    result = run_feedfix(
        "convert",
        DATA / "zaker-modern.rss.xml",
        "--no-rule",
        "unwrap-proxies",
        "--no-rule",
        "drop-empty-junk",
        "--explain=json",
    )
    root = assert_converted(result)
    srcs = [src for e in entries(root) for src in e.img_srcs]
    assert srcs and all("cors.zfour.workers.dev" in src for src in srcs), srcs
    ids = [el.get("id") for f in _content_fragments(root) for el in f.iter() if el.get("id")]
    assert "recommend_bottom" in ids and "article_bottom" in ids
    report = json.loads(stderr_text(result))
    for rule in ("unwrap-proxies", "drop-empty-junk"):
        assert report.get(rule, {"changes": 0})["changes"] == 0, report


def test_no_rule_with_an_unknown_name_is_a_usage_error() -> None:
    """`--no-rule no-such-rule` exits 2 and names the unknown rule, without a traceback."""
    result = run_feedfix("convert", DATA / "zaker-classic.rss.xml", "--no-rule", "no-such-rule")
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in stderr_text(result)
    assert "no-such-rule" in stderr_text(result)


def test_config_with_an_unknown_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    """`--config` with an unknown key exits 2 with one line naming the key (a public contract)."""
    config = tmp_path / "feedfix.toml"
    config.write_text('[server]\nport = 8080\nsurprise_key = "x"\n', encoding="utf-8")
    result = run_feedfix("convert", DATA / "zaker-modern.rss.xml", "--config", config)
    assert_one_line_error(result, "surprise_key")


# ---- feed metadata options -------------------------------------------------------------------


def test_title_option_does_not_override_a_feed_title() -> None:
    """`--title` only fills in a missing title: a feed's own title wins."""
    result = run_feedfix("convert", DATA / "zaker-classic.rss.xml", "--title", "Other title")
    root = assert_converted(result)
    assert feed_text(root, "title") == "ZAKER 测试频道"


# ---- posts -----------------------------------------------------------------------------------


def test_posts_folder_newest_first_and_non_post_skipped_with_warning() -> None:
    """A posts folder gives one entry per post, newest first; README.txt skipped with a warning."""
    result = run_feedfix("convert", POSTS)
    root = assert_converted(result)
    assert [e.title for e in entries(root)] == [
        "边缘节点组网的三种做法",
        "一次数据管道迁移的复盘",
        "周记：配置文件里的花括号",
    ]
    updated = [e.updated or "" for e in entries(root)]
    assert updated == sorted(updated, reverse=True)
    assert "README.txt" in stderr_text(result), "the skipped file should be named in a warning"


def test_post_with_txt_extension_is_recognised_by_content() -> None:
    """A post saved as .txt (no leading blank line) converts to one entry."""
    root = assert_converted(run_feedfix("convert", DATA / POST_FILES[2]))
    found = entries(root)
    assert [e.title for e in found] == ["周记：配置文件里的花括号"]
    assert found[0].updated == "2023-03-10T14:05:09Z"


def test_timezone_option_applies_to_dates_without_a_zone() -> None:
    """`--timezone Asia/Shanghai` shifts `YYYY-MM-DD HH:MM:SS` dates only, RFC 822 ones not."""
    root = assert_converted(run_feedfix("convert", POSTS, "--timezone", "Asia/Shanghai"))
    updated = {e.title: e.updated for e in entries(root)}
    assert updated["周记：配置文件里的花括号"] == "2023-03-10T06:05:09Z"
    assert updated["一次数据管道迁移的复盘"] == "2023-03-15T08:20:00Z"
    assert updated["边缘节点组网的三种做法"] == "2023-03-18T01:00:00Z"


def test_feed_without_any_date_uses_the_fixed_epoch() -> None:
    """A feed with no date anywhere gets 1970-01-01T00:00:00Z, never the current time."""
    root = assert_valid_atom(_convert("nodates.rss.xml"))
    assert feed_text(root, "updated") == EPOCH
    assert {e.updated for e in entries(root)} == {EPOCH}


# ---- damaged input and --strict ------------------------------------------------------------------


def test_truncated_feed_converts_what_can_be_read_with_a_warning() -> None:
    """A feed cut off in its 4th item keeps the 3 complete items, exits 0 and warns."""
    result = run_feedfix("convert", DATA / "truncated.rss.xml")
    root = assert_converted(result)
    found = entries(root)
    assert 3 <= len(found) <= 4, [e.title for e in found]
    assert [e.id for e in found[:3]] == [f"https://cut.example.org/{n}" for n in (1, 2, 3)]
    assert visible_text(found[2].content_html) == "The third item is the last one that is complete."
    assert stderr_text(result).strip(), "a damaged feed must produce a warning on stderr"


def test_truncated_feed_is_an_error_under_strict() -> None:
    """With `--strict` the same damaged feed exits 2 with one line naming it."""
    path = DATA / "truncated.rss.xml"
    result = run_feedfix("convert", path, "--strict")
    assert_one_line_error(result, str(path), path.name)


def test_strict_does_not_reject_a_healthy_feed() -> None:
    """`--strict` on an intact feed changes nothing."""
    result = run_feedfix("convert", DATA / "zaker-classic.rss.xml", "--strict")
    assert_converted(result)
    assert result.stdout == _convert("zaker-classic.rss.xml")


# ---- bad input ---------------------------------------------------------------------------------


def _bad_input(kind: str, tmp_path: Path) -> Path:
    if kind == "empty":
        path = tmp_path / "empty.xml"
        path.write_bytes(b"")
        return path
    if kind == "missing":
        return tmp_path / "no-such-feed.xml"
    return DATA / {"html": "page.html", "binary": "binary.bin", "not-a-feed": "notafeed.xml"}[kind]


@pytest.mark.parametrize("kind", ["empty", "html", "binary", "missing", "not-a-feed"])
def test_bad_input_is_one_line_exit_2(kind: str, tmp_path: Path) -> None:
    """Empty, HTML, binary, missing or non-feed input: exit 2, one stderr line naming it."""
    path = _bad_input(kind, tmp_path)
    result = run_feedfix("convert", path)
    assert_one_line_error(result, str(path), path.name)


def test_html_page_with_a_feed_extension_is_still_refused(tmp_path: Path) -> None:
    """An HTML page saved as feed.xml is recognised by content and refused."""
    path = tmp_path / "feed.xml"
    path.write_bytes((DATA / "page.html").read_bytes())
    assert_one_line_error(run_feedfix("convert", path), str(path), path.name)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_file_is_one_line_exit_2(tmp_path: Path) -> None:
    """A file without read permission: exit 2, one stderr line naming it."""
    path = tmp_path / "locked.xml"
    path.write_bytes((DATA / "nodates.rss.xml").read_bytes())
    path.chmod(0)
    try:
        assert_one_line_error(run_feedfix("convert", path), str(path), path.name)
    finally:
        path.chmod(0o644)


def test_empty_stdin_is_one_line_exit_2() -> None:
    """Empty standard input is bad input: exit 2 with one line."""
    result = run_feedfix("convert", "-", stdin=b"")
    assert_one_line_error(result)


# ---- --max-size ----------------------------------------------------------------------------------


def test_max_size_boundary_in_bytes() -> None:
    """`--max-size N` accepts a file of exactly N bytes and refuses it at N-1 (exit 2, one line)."""
    path = DATA / "zaker-classic.rss.xml"
    size = path.stat().st_size
    assert_converted(run_feedfix("convert", path, "--max-size", str(size)))
    refused = run_feedfix("convert", path, "--max-size", str(size - 1))
    assert_one_line_error(refused, str(path), path.name)


@pytest.mark.parametrize(("limit", "ok"), [("1KB", False), ("500KB", True), ("1MB", True)])
def test_max_size_units(limit: str, ok: bool) -> None:
    """`--max-size` understands KB and MB suffixes (the fixture is about 5 KB)."""
    path = DATA / "zaker-classic.rss.xml"
    assert 2048 < path.stat().st_size < 10_000
    result = run_feedfix("convert", path, "--max-size", limit)
    if ok:
        assert_converted(result)
    else:
        assert_one_line_error(result, str(path), path.name)


def test_max_size_applies_to_stdin() -> None:
    """Input on stdin over `--max-size` is refused with exit 2 and one line."""
    data = (DATA / "zaker-classic.rss.xml").read_bytes()
    result = run_feedfix("convert", "-", "--max-size", "1KB", stdin=data)
    line = assert_one_line_error(result)
    assert re.search(r"stdin|'-'|\"-\"|^-\b|<->", line, re.I), f"does not name stdin: {line!r}"


def test_default_max_size_is_50_mb(tmp_path: Path) -> None:
    """Without `--max-size`, a feed just over 50 MB (50 MiB) is refused: exit 2, one line."""
    path = tmp_path / "huge.rss.xml"
    head = (DATA / "nodates.rss.xml").read_bytes()
    with path.open("wb") as handle:
        handle.write(head)
        handle.write(b" " * (50 * 1024 * 1024 + 1 - len(head)))
    assert path.stat().st_size > 50 * 1024 * 1024
    result = run_feedfix("convert", path)
    assert_one_line_error(result, str(path), path.name)


def test_bad_max_size_value_is_a_usage_error() -> None:
    """`--max-size lots` exits 2 without a traceback."""
    result = run_feedfix("convert", DATA / "zaker-classic.rss.xml", "--max-size", "lots")
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in stderr_text(result)


# ---- hostile XML -----------------------------------------------------------------------------


MARKER = "FEEDFIX-XXE-MARKER-5c1d"


def _xxe_feed(tmp_path: Path, port: int) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{MARKER}\n", encoding="utf-8")
    template = (DATA / "xxe.rss.xml.template").read_text(encoding="utf-8")
    feed = tmp_path / "xxe.rss.xml"
    feed.write_text(
        template.replace("@SECRET_PATH@", str(secret)).replace("@PORT@", str(port)),
        encoding="utf-8",
    )
    return feed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _assert_safe_outcome(result: subprocess.CompletedProcess[bytes], path: Path) -> None:
    assert MARKER.encode() not in result.stdout + result.stderr, "external entity was resolved"
    assert result.returncode in (0, 2), describe(result)
    if result.returncode == 0:
        assert_converted(result)
    else:
        assert_one_line_error(result, str(path), path.name)


def test_external_entities_are_never_resolved(tmp_path: Path) -> None:
    """file:// and http:// (closed loopback port) entities are not resolved, and it is quick."""
    feed = _xxe_feed(tmp_path, _free_port())
    started = time.monotonic()
    result = run_feedfix("convert", feed, timeout=30)
    assert time.monotonic() - started < 10
    _assert_safe_outcome(result, feed)


def test_external_entities_make_no_network_connection(tmp_path: Path) -> None:
    """With something listening on the loopback port, feedfix never connects to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        feed = _xxe_feed(tmp_path, int(server.getsockname()[1]))
        result = run_feedfix("convert", feed, timeout=30)
        server.setblocking(False)
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            connection = None
        if connection is not None:
            connection.close()
        assert connection is None, "feedfix connected to the URL of an external entity"
    _assert_safe_outcome(result, feed)


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    two_gib = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (two_gib, two_gib))


def test_quadratic_blowup_finishes_quickly_in_bounded_memory(tmp_path: Path) -> None:
    """A flat entity bomb (one 50 kB entity used 20 000 times, 1 GB) is defused the same way."""
    path = tmp_path / "quadratic.rss.xml"
    refs = "&big;" * 20_000
    path.write_text(
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss [<!ENTITY big "{"x" * 50_000}">]>\n'
        '<rss version="2.0"><channel><title>Q</title><link>https://q.example.org/</link>'
        f"<description>d</description><item><title>q</title><link>https://q.example.org/1</link>"
        f"<description>{refs}</description></item></channel></rss>\n",
        encoding="utf-8",
    )
    _assert_bomb_defused(path)


def _assert_bomb_defused(path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "feedfix", "convert", str(path)],
        capture_output=True,
        timeout=60,
        cwd=REPO,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert time.monotonic() - started < 10, "entity bomb took too long"
    assert result.returncode in (0, 2), describe(result)
    assert "Traceback" not in stderr_text(result)
    assert "MemoryError" not in stderr_text(result)
    assert len(result.stdout) < 1_000_000, f"output of {len(result.stdout)} bytes: expanded"
    if result.returncode == 0:
        assert_converted(result)
    else:
        assert_one_line_error(result, str(path), path.name)


def test_billion_laughs_finishes_quickly_in_bounded_memory() -> None:
    """An entity bomb ends in under 10 s within 2 GiB of address space, with no traceback."""
    _assert_bomb_defused(DATA / "billion-laughs.rss.xml")


def test_config_rules_table_is_used_by_convert(tmp_path: Path) -> None:
    """convert --config honours [rules]: disable switches a rule off, options reach rules."""
    config = tmp_path / "c.toml"
    config.write_text('[rules]\ndisable = ["unwrap-proxies"]\n[rules.limit]\ncount = 1\n')
    result = run_feedfix("convert", DATA / "zaker-modern.rss.xml", "--config", config)
    root = assert_converted(result)
    assert len(entries(root)) == 1
    assert b"cors.zfour.workers.dev" in result.stdout  # left alone: the rule is off


def test_config_and_no_rule_switch_rules_off_together(tmp_path: Path) -> None:
    """The config's disable list and --no-rule add up: both rules stay off."""
    config = tmp_path / "c.toml"
    config.write_text('[rules]\ndisable = ["unwrap-proxies"]\n')
    result = run_feedfix("convert", DATA / "zaker-modern.rss.xml", "--config", config,
                         "--no-rule", "drop-empty-junk", "--explain=json")  # fmt: skip
    assert_converted(result)
    report = json.loads(stderr_text(result))
    assert "unwrap-proxies" not in report and "drop-empty-junk" not in report, report


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rules.limit]\ncont = 1\n", "rules.limit.cont: unknown option (options: count)"),
        ("[rules]\ndisable = ['sanitise']\n", "rules.disable: unknown rule 'sanitise' (rules: "
         "filter, limit, unwrap-proxies, fix-lazy-images, sanitize, remove, drop-empty-junk)"),
        ("[rules.limit]\ncount = -1\n", "rules.limit: option 'count' must not be negative"),
    ],
)  # fmt: skip
def test_a_bad_rules_table_in_convert_config_is_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    """convert --config with a bad [rules] exits 2 with one line: file, key and problem."""
    config = tmp_path / "c.toml"
    config.write_text(text)
    result = run_feedfix("convert", "--example", "--config", config)
    assert result.returncode == 2, describe(result)
    assert stderr_text(result).splitlines() == [f"feedfix: {config}: {message}"]


def test_example_config_works_with_convert() -> None:
    """The documented example config is accepted by convert as it is."""
    result = run_feedfix("convert", "--example", "--config", REPO / "config.example.toml")
    assert_converted(result)
