"""Run feedfix over the real material in ../shared (corpus posts and feeds, and the seed post).

Skipped when ../shared/corpus is not there. Every expectation comes from reading the source files
with lxml and the tests' own unwrap oracle: schema-valid Atom, no wrapper host anywhere, every img
pointing at its origin host, no trailer divs, no on* attributes, and all of the article text kept.
"""

from __future__ import annotations

import email.utils
import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
import yaml
from lxml import etree

from atomcheck import (
    WRAPPER_RE,
    Entry,
    assert_converted,
    assert_feedfix_conventions,
    assert_valid_atom,
    entries,
    host_of,
    html_fragment,
    is_wrapped,
    normalise_space,
    run_feedfix,
    unwrap,
    visible_text,
)

pytestmark = pytest.mark.corpus

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
ORIGIN_HOSTS = {
    "zkres1.myzaker.com",
    "zkres2.myzaker.com",
    "dockone.io",
    "image.woshipm.com",
    "static.cnbetacdn.com",
}
TRAILER_IDS = ("recommend_bottom", "article_bottom")
# Elements whose text is not article text: what sanitize may remove, and form-control labels
# (woshipm's "赞赏" tip button), which no reader shows as part of the article.
REMOVABLE = (
    "script",
    "style",
    "form",
    "object",
    "embed",
    "iframe",
    "noscript",
    "template",
)
MISSING = f"{CORPUS} is not present (the shared corpus lives next to the repository)"


def _params(paths: list[Path]) -> list[object]:
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="no-corpus")]
    return [pytest.param(p, id=p.name) for p in paths]


def _post_files() -> list[Path]:
    return sorted((CORPUS / "posts").rglob("*.md")) if CORPUS.is_dir() else []


def _seed_files() -> list[Path]:
    return sorted((SHARED / "seed").glob("*.txt")) if CORPUS.is_dir() else []


def _feed_files() -> list[Path]:
    return sorted((CORPUS / "feeds").glob("*.xml")) if CORPUS.is_dir() else []


@dataclass
class Source:
    """One article as the source file holds it."""

    title: str
    body: str
    date: str | None = None
    guid: str | None = None
    categories: list[str] = field(default_factory=list)
    enclosures: list[str] = field(default_factory=list)
    front_urls: list[str] = field(default_factory=list)


def _utc(value: object) -> str | None:
    """A front-matter or RSS date as RFC 3339 UTC (naive dates are UTC, feedfix's default)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            moment = email.utils.parsedate_to_datetime(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_post(path: Path) -> Source:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"\s*---\s*\n(.*?)\n---\s*\n(.*)", text, flags=re.S)
    assert match, f"{path} has no front matter"
    front = yaml.safe_load(match.group(1))
    urls = [str(front[k]) for k in ("headimg", "thumbnail", "cover") if front.get(k)]
    return Source(
        title=str(front["title"]),
        body=match.group(2),
        date=_utc(front.get("date")),
        categories=[str(c) for c in front.get("categories") or []],
        front_urls=urls,
    )


def _read_feed(path: Path) -> list[Source]:
    tree = etree.parse(str(path))
    return [
        Source(
            title=item.findtext("title") or "",
            body=item.findtext("description") or "",
            date=_utc(item.findtext("pubDate")),
            guid=item.findtext("guid"),
            enclosures=[e.get("url", "") for e in item.findall("enclosure")],
        )
        for item in tree.iter("item")
    ]


@functools.cache
def _convert(path: Path) -> bytes:
    result = run_feedfix("convert", path)
    assert_converted(result)
    return result.stdout


def _expected_img_srcs(body: str) -> list[str]:
    """Where each source img should point after cleaning: its real, unwrapped origin."""
    expected = []
    for img in html_fragment(body).iter("img"):
        src = img.get("src") or ""
        real = img.get("data-original") or img.get("data-src")
        if real and (not src or src.startswith(("data:", "about:")) or is_wrapped(src)):
            expected.append(unwrap(real))
        else:
            expected.append(unwrap(src))
    return expected


def _text_segments(body: str) -> list[str]:
    """Every non-empty text node of the source body, whitespace normalised."""
    root = html_fragment(body)
    for element in root.xpath("|".join(f"//{tag}" for tag in REMOVABLE)):
        element.drop_tree()
    segments = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for text in (element.text, element.tail):
            if text and normalise_space(text):
                segments.append(normalise_space(text))
    return segments


def _remaining_trailers(body: str) -> int:
    """How many trailer divs should survive drop-empty-junk (those with text or media)."""
    fragment = html_fragment(body)
    while True:
        empty = [
            div
            for div in fragment.iter("div")
            if div.get("id") in TRAILER_IDS
            and not div.text_content().strip()
            and not div.xpath(".//img|.//video|.//audio|.//picture|.//iframe")
        ]
        if not empty:
            break
        for div in empty:
            div.drop_tree()
    return sum(1 for div in fragment.iter("div") if div.get("id") in TRAILER_IDS)


def _check_entry(entry: Entry, source: Source, label: str) -> None:
    assert entry.title == normalise_space(source.title), f"{label}: title {entry.title!r}"
    if source.date:
        assert source.date in (entry.updated, entry.published), (
            f"{label}: date {source.date} is neither updated {entry.updated} "
            f"nor published {entry.published}"
        )
    for category in source.categories:
        assert category in entry.categories, f"{label}: category {category!r} lost"
    srcs = entry.img_srcs
    assert srcs == _expected_img_srcs(source.body), f"{label}: img srcs {srcs}"
    for src in srcs:
        assert host_of(src) in ORIGIN_HOSTS, f"{label}: img src {src} is not on an origin host"
    fragment = html_fragment(entry.content_html)
    sources = list(html_fragment(source.body).iter("img"))
    for source_img, img in zip(sources, fragment.iter("img"), strict=False):
        classes = (img.get("class") or "").split()
        assert "lazy" not in classes and "opacity_0" not in classes, f"{label}: class {classes}"
        for size in ("width", "height"):
            if source_img.get(f"data-{size}"):
                assert img.get(size) == source_img.get(f"data-{size}"), (
                    f"{label}: img {size} {img.get(size)!r} != data-{size} of the source"
                )
    for element in fragment.iter():
        if not isinstance(element.tag, str):
            continue
        handlers = [name for name in element.attrib if name.lower().startswith("on")]
        assert not handlers, f"{label}: <{element.tag}> keeps {handlers}"
    trailers = [d for d in fragment.iter("div") if d.get("id") in TRAILER_IDS]
    assert len(trailers) == _remaining_trailers(source.body) == 0, (
        f"{label}: trailer divs left: {[lxml.html.tostring(d)[:80] for d in trailers]}"
    )
    shown = visible_text(entry.content_html)
    missing = [s for s in _text_segments(source.body) if s not in shown]
    assert not missing, f"{label}: {len(missing)} source text segments lost, first: {missing[:3]}"
    if source.guid:
        assert entry.id == source.guid.strip(), f"{label}: id {entry.id!r} != guid"
    if source.enclosures:
        hrefs = [link.href for link in entry.links_by_rel("enclosure")]
        for url in source.enclosures:
            assert unwrap(url) in hrefs, f"{label}: enclosure {unwrap(url)} not in {hrefs}"


def _check_document(data: bytes, sources: list[Source], label: str) -> list[Entry]:
    found = WRAPPER_RE.search(data.decode("utf-8"))
    assert found is None, f"{label}: wrapper host {found.group(0) if found else ''} in output"
    root = assert_converted_bytes(data)
    produced = entries(root)
    by_title = {e.title: e for e in produced}
    assert len(produced) == len(sources), (
        f"{label}: {len(produced)} entries for {len(sources)} source articles"
    )
    for source in sources:
        entry = by_title.get(normalise_space(source.title))
        assert entry is not None, f"{label}: no entry titled {source.title!r}"
        _check_entry(entry, source, f"{label} / {source.title}")
        for url in source.front_urls:
            assert unwrap(url).encode() in data, f"{label}: front-matter URL {unwrap(url)} lost"
    return produced


def assert_converted_bytes(data: bytes) -> etree._Element:
    """Validate already-converted bytes the same way assert_converted validates a run."""
    root = assert_valid_atom(data)
    assert_feedfix_conventions(root)
    return root


@pytest.mark.parametrize("path", _params(_post_files()))
def test_each_corpus_post_converts_clean_and_complete(path: Path | None) -> None:
    """Each corpus post becomes one valid, unwrapped, junk-free entry with all its text."""
    assert path is not None
    _check_document(_convert(path), [_read_post(path)], path.name)


@pytest.mark.parametrize("path", _params(_seed_files()))
def test_seed_post_converts_clean_and_complete(path: Path | None) -> None:
    """The seed post (a .txt file) converts like a post, clean and complete."""
    assert path is not None
    _check_document(_convert(path), [_read_post(path)], path.name)


@pytest.mark.parametrize("path", _params(_feed_files()))
def test_corpus_feed_converts_clean_and_complete(path: Path | None) -> None:
    """Both ZAKER feeds convert item for item: ids, origin images, enclosures, all text."""
    assert path is not None
    sources = _read_feed(path)
    assert sources, f"{path} has no items"
    produced = _check_document(_convert(path), sources, path.name)
    assert [e.id for e in produced] == [(s.guid or "").strip() for s in sources]


@pytest.mark.parametrize("path", _params([CORPUS / "posts"]))
def test_corpus_posts_folder_converts_as_one_feed(path: Path | None) -> None:
    """The whole posts folder becomes one feed: an entry per post, newest first."""
    assert path is not None
    posts = _post_files()
    sources = [_read_post(p) for p in posts]
    result = run_feedfix("convert", path)
    assert_converted(result)
    produced = _check_document(result.stdout, sources, "posts/")
    updated = [e.updated or "" for e in produced]
    assert updated == sorted(updated, reverse=True), "entries are not newest first"
