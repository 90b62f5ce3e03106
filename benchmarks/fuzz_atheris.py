"""Coverage-guided fuzzing of parse-and-clean (``feedfix.core.pipeline.convert``) with atheris.

A finding is any exception that is not a ``FeedfixError`` (feedfix's documented way of
refusing input), an input slower than ``-timeout`` seconds, an output that is not well-formed
XML, or a ``<script`` element / ``on*=`` handler surviving into the Atom content.

    pip install atheris
    python benchmarks/fuzz_atheris.py -max_total_time=300
    python benchmarks/fuzz_atheris.py --keep-going -max_total_time=300

Every libFuzzer flag is accepted. The corpus starts from the fixture feeds and posts under
``tests/data`` and the bundled example, and grows in ``~/.cache/feedfix-fuzz/corpus`` (or
``$FEEDFIX_FUZZ_DIR/corpus``); findings are written to ``.../findings/`` and replayed with
``python benchmarks/fuzz_atheris.py FILE``. libFuzzer stops at the first finding;
``--keep-going`` (this script's own flag) instead saves each distinct finding (exception type
and raising line) as ``finding-*`` with its traceback and carries on (libFuzzer's ``-fork``
mode does not work under atheris). A dictionary of feed, HTML and wrapper tokens is
written next to them. The first input byte picks how the rest is used: as a whole document,
or wrapped as the HTML of an RSS description, of an Atom ``content``, or of a post body, so
the HTML rules are reached as often as the parsers.
"""

from __future__ import annotations

import hashlib
import os
import sys
import traceback
from pathlib import Path
from xml.sax.saxutils import escape

import atheris

with atheris.instrument_imports(include=["feedfix"]):
    from feedfix.core.errors import FeedfixError
    from feedfix.core.parse.feedparser_adapter import parse_with_feedparser  # noqa: F401 - instrument
    from feedfix.core.pipeline import convert

from lxml import etree

REPO = Path(__file__).resolve().parents[1]
SEED_SOURCES = [REPO / "tests" / "data", REPO / "feedfix" / "examples"]
SEED_SUFFIXES = {".xml", ".rdf", ".md", ".atom", ".rss", ".html", ".bin"}
DICTIONARY = [
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>", "encoding=\"gbk\"", "<!DOCTYPE", "<!ENTITY",
    "<rss version=\"2.0\">", "<channel>", "<item>", "</item>", "<title>", "<link>", "<guid>",
    "<description>", "</description>", "<pubDate>", "<enclosure url=", "<![CDATA[", "]]>",
    "<content:encoded>", "xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"",
    "<feed xmlns=\"http://www.w3.org/2005/Atom\">", "<entry>", "<content type=\"html\">",
    "<content type=\"xhtml\">", "<div xmlns=\"http://www.w3.org/1999/xhtml\">", "xml:base=",
    "xml:lang=", "<media:content url=", "xmlns:media=\"http://search.yahoo.com/mrss/\"",
    "<rdf:RDF", "&amp;", "&lt;", "&nbsp;", "&#x", "---\n", "title: ", "date: ", "headimg: ",
    "<img src=", "data-original=", "srcset=", "onerror=", "onclick=", "javascript:", "<script>",
    "<svg", "<iframe", "style=", "expression(", "https://cors.zfour.workers.dev/?",
    "https://images.weserv.nl/?url=", "https://i0.wp.com/", "//wsrv.nl/?url=",
    "id=\"recommend_bottom\"", "class=\"lazy opacity_0\"",
]  # fmt: skip
_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_HTML = etree.HTMLParser(no_network=True)
_CONTENT = "{http://www.w3.org/2005/Atom}content"
BASE = Path(os.environ.get("FEEDFIX_FUZZ_DIR") or Path.home() / ".cache" / "feedfix-fuzz")
FINDINGS = BASE / "findings"
KEEP_GOING = False  # --keep-going: record each distinct finding and carry on
SEEN: set[str] = set()


def _rss(html: str) -> bytes:
    return (
        '<rss version="2.0"><channel><title>f</title><link>https://f.example.org/</link>'
        f"<item><title>i</title><guid>https://f.example.org/1</guid>"
        f"<description>{escape(html)}</description></item></channel></rss>"
    ).encode()


def _atom(html: str) -> bytes:
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>f</title><id>urn:f</id>'
        "<updated>2024-01-01T00:00:00Z</updated><entry><title>e</title><id>urn:e</id>"
        "<updated>2024-01-01T00:00:00Z</updated>"
        f'<content type="html">{escape(html)}</content></entry></feed>'
    ).encode()


def _post(html: str) -> bytes:
    return f"---\ntitle: fuzz\ndate: 2024-01-01 00:00:00\n---\n{html}\n".encode()


def make_input(data: bytes) -> bytes:
    """The fuzzer's bytes as one of four kinds of document (chosen by the first byte)."""
    if not data:
        return data
    mode, rest = data[0] % 4, data[1:]
    if mode == 0:
        return rest
    html = rest.decode("utf-8", "replace")
    return (_rss, _atom, _post)[mode - 1](html)


def TestOneInput(data: bytes) -> None:
    """One input through convert(); raise on anything that is a finding."""
    if KEEP_GOING:
        try:
            check_one(data)
        except Exception as exc:  # a finding: record it once per place, then go on
            record(data, exc)
        return
    check_one(data)


def check_one(data: bytes) -> None:
    """Convert; raise on anything that is not a FeedfixError or on a bad output."""
    document = make_input(data)
    try:
        result = convert(document, "fuzz")
    except FeedfixError:
        return
    root = etree.fromstring(result.atom, _XML)  # raises XMLSyntaxError: not well-formed output
    for content in root.iter(_CONTENT):
        if not content.text or not content.text.strip():
            continue
        tree = etree.fromstring(f"<html><body>{content.text}</body></html>", _HTML)
        for el in tree.iter(etree.Element):
            tag = str(el.tag).lower()
            handlers = [name for name in el.attrib if name.lower().startswith("on")]
            if tag.rpartition(":")[2] == "script" or handlers:
                raise AssertionError(f"<{tag}> {handlers} survived in {content.text[:2000]!r}")


def record(data: bytes, exc: BaseException) -> None:
    """Save a finding's input and traceback, once per (exception type, raising line)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    signature = f"{type(exc).__name__} at {where}"
    if signature in SEEN:
        return
    SEEN.add(signature)
    digest = hashlib.sha1(data).hexdigest()[:16]  # noqa: S324 - a file name, not security
    FINDINGS.mkdir(parents=True, exist_ok=True)
    (FINDINGS / f"finding-{digest}").write_bytes(data)
    text = "".join(traceback.format_exception(exc))
    (FINDINGS / f"finding-{digest}.txt").write_text(f"{signature}\n\n{text}")
    print(f"\nFINDING {len(SEEN)}: {signature}: {exc!s:.200} -> finding-{digest}", file=sys.stderr)


def _dict_escape(token: str) -> str:
    """A token in libFuzzer's dictionary syntax: printable ASCII, the rest as \\xNN."""
    out = []
    for byte in token.encode("utf-8"):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\x{byte:02x}")
    return "".join(out)


def prepare(base: Path) -> tuple[Path, Path, Path]:
    """The corpus folder (seeded once), the findings folder and the dictionary file."""
    corpus, findings = base / "corpus", base / "findings"
    corpus.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    for source in SEED_SOURCES:
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.suffix.lower() in SEED_SUFFIXES:
                target = corpus / f"seed-{path.parent.name}-{path.name}"
                if not target.exists():
                    # mode byte 0: the seed is used as the whole document
                    target.write_bytes(b"\x00" + path.read_bytes())
    dictionary = base / "feed.dict"
    dictionary.write_text("".join(f'"{_dict_escape(token)}"\n' for token in DICTIONARY))
    return corpus, findings, dictionary


def main() -> None:
    """Seed, add sensible default flags unless given, and fuzz."""
    global KEEP_GOING  # noqa: PLW0603 - set once, before fuzzing starts
    args = sys.argv[1:]
    KEEP_GOING = "--keep-going" in args
    args = [a for a in args if a != "--keep-going"]
    replay = [a for a in args if not a.startswith("-") and Path(a).is_file()]
    argv = [sys.argv[0]]
    if not replay:
        corpus, findings, dictionary = prepare(BASE)
        defaults = {
            "-artifact_prefix": f"{findings}/",
            "-dict": str(dictionary),
            "-timeout": "10",
            "-rss_limit_mb": "2048",
            "-max_len": "65536",
            "-print_final_stats": "1",
        }
        given = {a.split("=", 1)[0] for a in args if a.startswith("-")}
        argv += [f"{k}={v}" for k, v in defaults.items() if k not in given]
        if not any(not a.startswith("-") for a in args):
            argv.append(str(corpus))
    argv += args
    print(f"feedfix fuzz: {' '.join(argv[1:])}", file=sys.stderr)
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
