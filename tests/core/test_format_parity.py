"""Atom, RSS 2.0 and JSON Feed of one feed say the same, as independent readers read them.

For every fixture, the shared corpus and the peer corpus (feedparser's, podcastparser's and
reader's own test feeds: ``peers.py``), the cleaned feed is rendered in the three formats;
feedparser reads the Atom and the RSS, and feedsmith (an independent TypeScript parser from
npm, ``formats.read_json_feeds``) the JSON Feed. Every entry must have the same id, title,
link, date, enclosures and content text in all three. Each output is also valid: Atom by RFC
4287's schema, RSS by the profile's checks, JSON Feed by its JSON Schema.

Where a format cannot say what another says, the comparison says so: RSS has one
``enclosure`` per item (the others are written as ``media:content``, so RSS's enclosures
and Media RSS contents together are the Atom's, as a multiset), and JSON Feed has no Media
RSS (its attachments are the Atom's enclosures). feedsmith refuses a JSON Feed with no
title and no items (there is nothing to compare: the schema still checks it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from atomcheck import DATA
from feedfix.core.errors import FeedfixError
from feedfix.core.pipeline import ConvertOptions, convert, convert_feed
from feedfix.core.render import FORMATS
from feedfix.files.sources import FolderOptions, read_posts_folder
from formats import (
    Said,
    assert_valid,
    read_json_feeds,
    said_by_feedparser,
    said_by_feedsmith,
)
from peers import FEEDPARSER_SDIST, OTHER_SDISTS, feed_files, sdist_tests_dir

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FIELDS = ("id", "title", "link", "date", "text")


@dataclass(frozen=True)
class Rendered:
    """One input's cleaned feed in the three formats."""

    name: str
    out: dict[str, bytes]


def rendered(paths: Iterable[Path]) -> Iterator[Rendered]:
    """Each input that converts, in the three formats (a folder is read as its posts)."""
    for path in paths:
        try:
            if path.is_dir():
                feed = read_posts_folder(str(path), FolderOptions(), lambda _w: None)
                cleaned = convert_feed(feed, ConvertOptions(title=path.name)).feed
            else:
                cleaned = convert(path.read_bytes(), path.name).feed
        except FeedfixError:
            continue  # refused: the peer corpus holds broken feeds on purpose
        yield Rendered(str(path), {name: fmt.render(cleaned) for name, fmt in FORMATS.items()})


def differences(atom: list[Said], rss: list[Said], jsonfeed: list[Said]) -> list[str]:
    """What the three readings disagree on, entry by entry."""
    counts = (len(atom), len(rss), len(jsonfeed))
    if len(set(counts)) > 1:
        return [f"entries: atom {counts[0]}, rss {counts[1]}, json {counts[2]}"]
    found = []
    for index, (a, r, j) in enumerate(zip(atom, rss, jsonfeed, strict=True)):
        for field in FIELDS:
            values = (getattr(a, field), getattr(r, field), getattr(j, field))
            if len(set(values)) > 1:
                found.append(f"entry {index} {field}: {values!r:.300}")
        if a.enclosures != j.enclosures:
            found.append(f"entry {index} attachments: {a.enclosures} != {j.enclosures}")
        if Counter(a.enclosures + a.media) != Counter(r.enclosures + r.media):
            found.append(f"entry {index} enclosures: {a.enclosures} != {r.enclosures}")
    return found


def check(inputs: list[Path], tmp_path: Path, least: int) -> None:
    """Every input's three formats valid and equal in what they say."""
    done = list(rendered(inputs))
    assert len(done) >= least, f"only {len(done)} of {len(inputs)} inputs converted"
    files = []
    for index, one in enumerate(done):
        for name, body in one.out.items():
            assert_valid(name, body, urls_absolute=False)  # the peer corpus's may be relative
        files.append(tmp_path / f"{index}.json")
        files[-1].write_bytes(one.out["json"])
    problems = []
    for one, parsed in zip(done, read_json_feeds(files), strict=True):
        document = json.loads(one.out["json"])
        if "error" in parsed:
            if document["title"] or document["items"]:
                problems.append(f"{one.name}: feedsmith refused it: {parsed['error']}")
            continue
        atom, rss = said_by_feedparser(one.out["atom"]), said_by_feedparser(one.out["rss"])
        problems += [f"{one.name}: {d}" for d in differences(atom, rss, said_by_feedsmith(parsed))]
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:20])


def test_fixtures_say_the_same_in_every_format(tmp_path: Path) -> None:
    """Every feed fixture (every encoding, RSS 0.91 to Atom 1.0, the ZAKER ones) and the posts
    folder."""
    inputs = sorted(p for p in DATA.iterdir() if p.suffix in {".xml", ".rdf"})
    check([*inputs, DATA / "posts"], tmp_path, least=20)


@pytest.mark.corpus
def test_shared_corpus_says_the_same_in_every_format(tmp_path: Path) -> None:
    """The shared corpus's ZAKER feeds and its folder of posts."""
    corpus = SHARED / "corpus"
    if not corpus.is_dir():
        pytest.skip(f"{corpus} is not present")
    check([*sorted((corpus / "feeds").glob("*.xml")), corpus / "posts"], tmp_path, least=3)


@pytest.mark.parametrize("spec", [FEEDPARSER_SDIST, *OTHER_SDISTS])
def test_peer_corpus_says_the_same_in_every_format(spec: str, tmp_path: Path) -> None:
    """Other parsers' test feeds: thousands of odd shapes, each the same in the three formats."""
    files = feed_files(sdist_tests_dir(spec))
    check(files, tmp_path, least=len(files) // 2)
