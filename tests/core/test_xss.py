"""The sanitizer against a corpus of XSS vectors, checked statically and in a real browser.

``tests/data/xss/vectors.txt`` holds the vectors (its header explains the format). Each one is
put, as escaped text, into the description of the only item of its own RSS feed and converted
by ``feedfix.core.pipeline.convert`` with the default rules. Then:

(a) static: the content HTML, parsed with lxml.html, has no script/style/iframe (other than a
    sandboxed player from an allowed host)/object/embed/base/meta/link/form element (nor the
    other elements that load or run code, nor raw-text, title or svg/math elements), no
    ``on*`` attribute, no ``srcdoc``, no URL attribute whose value, entity-decoded and
    stripped of whitespace and control characters, starts with ``javascript:``/``vbscript:``/
    ``data:text``…, and no script in a style;
(b) browser: headless Chromium renders every sanitized fragment in an instrumented page
    (tests/browser.py) and must record no hit. As a control the raw vectors are rendered the
    same way, and the known-live ones must register hits, which proves the detector works.

The browser test skips when Chromium or Playwright is missing, unless
``FEEDFIX_REQUIRE_BROWSER=1`` (then it fails).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import pytest

from atomcheck import DATA, assert_valid_atom, entries
from feedfix.core.errors import FeedfixError
from feedfix.core.pipeline import convert

VECTORS_PATH = DATA / "xss" / "vectors.txt"
MIN_VECTORS = 150
ALLOWED_IFRAME_HOSTS = {
    "www.youtube.com",
    "www.youtube-nocookie.com",
    "player.vimeo.com",
    "player.bilibili.com",
    "v.qq.com",
}
FORBIDDEN_ELEMENTS = {
    "script", "style", "object", "embed", "applet", "base", "meta", "link", "form", "frame",
    "frameset", "portal", "import", "animate", "set", "animatemotion", "animatetransform",
    "handler", "listener",
    # outside sanitize's allowlist: raw text to one parser and markup to the other (mutation
    # XSS), the reader page's title, foreign content
    "plaintext", "xmp", "listing", "noscript", "noembed", "noframes", "title", "template",
    "textarea", "svg", "math",
}  # fmt: skip
URL_ATTRIBUTES = {
    "href", "src", "action", "formaction", "xlink:href", "data", "poster", "background",
    "srcdoc", "codebase", "cite", "longdesc", "lowsrc", "dynsrc", "usemap", "manifest", "icon",
    "ping", "code", "classid", "archive", "profile", "content", "values", "to", "from", "by",
    "srcset", "imagesrcset", "value",
}  # fmt: skip
BAD_SCHEMES = (
    "javascript:",
    "vbscript:",
    "livescript:",
    "mocha:",
    "data:text",
    "data:image/svg",
    "data:application",
)
BAD_CSS = (
    "expression(",
    "javascript:",
    "vbscript:",
    "-moz-binding",
    "behavior:",
    "@import",
    "data:text",
)
# Raw vectors that must fire in Chromium; if the harness misses these it cannot be trusted.
CONTROL = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<a href="javascript:alert(1)">a</a>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<div onmouseover=alert(1)>hover me</div>",
    '<form><button formaction="javascript:alert(1)">go</button></form>',
    '<meta http-equiv="refresh" content="0; url=/nav-meta">',
    '<a href="&#14;javascript:alert(1)">a</a>',
]
_TOKEN = re.compile(r"%%(TAB|LF|CR|FF|NUL|x[0-9a-fA-F]{2})%%")
_TOKENS = {"TAB": "\t", "LF": "\n", "CR": "\r", "FF": "\f", "NUL": "\x00"}
_STRIP = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]+")
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.S)
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)", re.S)
_URL_PREFIX = re.compile(r"^(?:\d*;)?(?:url=)?")  # meta refresh content: "0;url=…"


@dataclass(frozen=True)
class Vector:
    """One line of the corpus."""

    id: str  # "L<line number>"
    html: str


def load_vectors(path: Path = VECTORS_PATH) -> list[Vector]:
    """The vectors, tokens expanded, comments and blank lines skipped."""
    vectors = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text = _TOKEN.sub(lambda m: _TOKENS.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), line)
        vectors.append(Vector(f"L{number}", text))
    return vectors


def feed_for(vector: Vector) -> bytes:
    """An RSS 2.0 feed whose one item carries the vector as its escaped description.

    Characters that XML 1.0 cannot hold at all (NUL and most C0 controls) are left raw, so
    those feeds are ill-formed and take feedfix's recovery path, as such feeds do in the wild
    (a feed with a NUL is padded past the 8 KB binary sniff); a carriage return is written as
    ``&#13;`` so that the XML parser does not turn it into a newline.
    """
    text = vector.html.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\r", "&#13;")
    # feedfix refuses input with a NUL in its first 8 KB as binary data; pad such feeds so
    # that the NUL reaches the parser and the sanitizer, as it does in a large damaged feed.
    padding = f"<!--{' ' * 9000}-->\n" if "\x00" in text else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{padding}<rss version="2.0"><channel>'
        "<title>XSS corpus</title><link>https://xss.example.org/</link>"
        "<description>vectors</description><item>"
        f"<title>{vector.id}</title><link>https://xss.example.org/{vector.id}</link>"
        f"<guid>https://xss.example.org/{vector.id}</guid>"
        f"<description>{text}</description></item></channel></rss>\n"
    ).encode()


@dataclass(frozen=True)
class Converted:
    """What feedfix made of one vector: the entry's HTML, or the error that refused the feed."""

    vector: Vector
    html: str | None
    error: str | None = None


def convert_vector(vector: Vector) -> Converted:
    """Run the vector's feed through convert(); a FeedfixError counts as refused (safe)."""
    try:
        result = convert(feed_for(vector), f"{vector.id}.xml")
    except FeedfixError as exc:
        return Converted(vector, None, str(exc))
    root = assert_valid_atom(result.atom)
    parts = [p for e in entries(root) for p in (e.content_html, e.summary_html) if p]
    return Converted(vector, "\n".join(parts))


@pytest.fixture(scope="module")
def vectors() -> list[Vector]:
    """The corpus, loaded once."""
    return load_vectors()


@pytest.fixture(scope="module")
def converted(vectors: list[Vector]) -> list[Converted]:
    """Every vector through feedfix, once."""
    return [convert_vector(v) for v in vectors]


# ---- (a) static -------------------------------------------------------------------------------


def _decoded(value: str) -> str:
    """An attribute value as a browser reads a URL's scheme: entities decoded, junk removed."""
    return _STRIP.sub("", html.unescape(value)).lower()


def _css(value: str) -> str:
    def unescape(match: re.Match[str]) -> str:
        if match.group(1):
            code = int(match.group(1), 16)
            return chr(code) if 0 < code < 0x110000 else ""
        return match.group(2)

    text = _CSS_ESCAPE.sub(unescape, _CSS_COMMENT.sub("", html.unescape(value)))
    return _STRIP.sub("", text).lower()


def _allowed_iframe(el: lxml.html.HtmlElement) -> bool:
    parts = urlsplit((el.get("src") or "").strip())
    return (
        parts.scheme == "https"
        and (parts.hostname or "") in ALLOWED_IFRAME_HOSTS
        and el.get("sandbox") is not None
        and "srcdoc" not in el.attrib
    )


def static_problems(fragment: str) -> list[str]:
    """What in a sanitized fragment could still run script or load active content."""
    if not fragment.strip():
        return []
    # Parsed as a whole document, so that stray <body>/<head> tags cannot break the parse;
    # whatever the parser moves into <head> (meta, link, base…) is checked too.
    root = lxml.html.document_fromstring(f"<html><body>{fragment}</body></html>")
    problems = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower().rpartition(":")[2]
        if tag in FORBIDDEN_ELEMENTS:
            problems.append(f"<{el.tag}> element")
        if tag == "iframe" and not _allowed_iframe(el):
            problems.append(f"<iframe src={el.get('src')!r}>")
        for name, value in el.attrib.items():
            lowered = name.lower()
            if lowered.startswith("on"):
                problems.append(f"<{el.tag} {name}=…> event handler")
            elif lowered == "srcdoc":
                problems.append(f"<{el.tag} srcdoc>")
            elif lowered == "style" and any(bad in _css(value) for bad in BAD_CSS):
                problems.append(f"<{el.tag} style={value!r}>")
            elif lowered in URL_ATTRIBUTES or lowered.startswith("data-"):
                urls = value.split(",") if "srcset" in lowered else [value]
                if lowered in {"values", "content"}:
                    urls = re.split(r"[;,]", value)
                for url in urls:
                    if _URL_PREFIX.sub("", _decoded(url)).startswith(BAD_SCHEMES):
                        problems.append(f"<{el.tag} {name}={value[:80]!r}>")
                        break
    return problems


def test_corpus_is_large_and_well_formed(vectors: list[Vector]) -> None:
    """At least 150 distinct vectors, each with a payload the browser harness can see."""
    assert len(vectors) >= MIN_VECTORS, f"only {len(vectors)} vectors"
    texts = [v.html for v in vectors]
    assert len(set(texts)) == len(texts), "duplicate vectors"
    # Some encode the payload (entities, CSS escapes) or are static-only (vbscript:, IE CSS).
    payload = re.compile(r"alert|confirm|prompt|print|__xss|/nav-|evil\.example|YWxlcnQ|PHN")
    blind = [v.id for v in vectors if not payload.search(v.html)]
    assert len(blind) <= len(vectors) // 10, f"too many vectors without a visible payload: {blind}"
    assert all(t in texts for t in CONTROL), "a control vector is missing from the corpus"


def test_static_no_vector_survives(converted: list[Converted]) -> None:
    """No dangerous element, handler, URL or style is left in any sanitized vector."""
    survived = {}
    for item in converted:
        problems = static_problems(item.html or "")
        if problems:
            survived[item.vector.id] = (item.vector.html, item.html, problems)
    refused = sum(1 for item in converted if item.html is None)
    line = (
        f"static: {len(converted)} vectors, {len(survived)} survived "
        f"({refused} feeds refused as input)"
    )
    print(line)
    details = "\n".join(
        f"  {vid}: {vec!r}\n    -> {out!r}\n    {probs}"
        for vid, (vec, out, probs) in survived.items()
    )
    assert not survived, f"{line}\n{details}"


def test_static_checker_catches_raw_vectors(vectors: list[Vector]) -> None:
    """The static check itself is not blind: it flags most of the unsanitized vectors."""
    flagged = [v for v in vectors if static_problems(v.html)]
    assert len(flagged) >= 0.8 * len(vectors), f"static check flags only {len(flagged)} raw"
    for text in CONTROL:
        assert static_problems(text), f"static check misses raw control vector {text!r}"


def test_feedfix_keeps_harmless_content(converted: list[Converted]) -> None:
    """Sanitizing is not wholesale deletion: text around the vectors survives."""
    by_html = {c.vector.html: c for c in converted}
    assert "hover me" in (by_html["<div onmouseover=alert(1)>hover me</div>"].html or "")
    kept = by_html['<a href="https://ok.example.org/" href="javascript:alert(1)">dup 2</a>']
    assert "https://ok.example.org/" in (kept.html or "")
    refused = [c.vector.id for c in converted if c.html is None]
    assert len(refused) <= len(converted) // 10, f"too many feeds refused: {refused}"


# ---- (b) real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium through Playwright, or a skip (a failure under REQUIRE_BROWSER)."""
    from browser import XssBrowser, find_chromium  # noqa: PLC0415

    executable = find_chromium()
    required = os.environ.get("FEEDFIX_REQUIRE_BROWSER") == "1"
    if executable is None:
        reason = (
            "Chromium or the playwright package is missing "
            "(apt-get install chromium; pip install playwright)"
        )
        if required:
            pytest.fail(f"FEEDFIX_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    try:
        harness = XssBrowser(executable)
    except Exception as exc:
        if required:
            raise
        pytest.skip(f"Chromium did not start: {exc}")
    yield harness
    harness.close()


def _describe_hits(hits: dict[str, list[str]], by_id: dict[str, str], limit: int = 40) -> str:
    lines = []
    for vid, found in list(hits.items())[:limit]:
        lines.append(f"  {vid}: {by_id.get(vid, '?')!r}: {found[:3]}")
    return "\n".join(lines)


def test_browser_control_detects_raw_vectors(browser: object, vectors: list[Vector]) -> None:
    """Unsanitized, the vectors do run in Chromium, and the harness sees it (control)."""
    by_id = {v.id: v.html for v in vectors}
    hits = browser.render(by_id)  # type: ignore[attr-defined]
    fired = {vid: found for vid, found in hits.items() if found}
    print(f"browser control: {len(fired)} of {len(vectors)} raw vectors fired in Chromium")
    control_ids = {v.id: v.html for v in vectors if v.html in CONTROL}
    missed = [html_ for vid, html_ in control_ids.items() if not hits.get(vid)]
    assert not missed, f"the harness did not detect these raw vectors: {missed}"
    assert len(fired) >= len(vectors) // 3, f"only {len(fired)} raw vectors fired"


def test_browser_no_vector_survives(browser: object, converted: list[Converted]) -> None:
    """Sanitized, no vector calls a payload, navigates, embeds a document or phones home."""
    fragments = {c.vector.id: c.html for c in converted if c.html is not None}
    hits = browser.render(fragments)  # type: ignore[attr-defined]
    survived = {vid: found for vid, found in hits.items() if found}
    line = f"browser: {len(fragments)} vectors, {len(survived)} survived"
    print(line)
    by_id = {c.vector.id: c.vector.html for c in converted}
    assert not survived, f"{line}\n{_describe_hits(survived, by_id)}"
