"""Validate feedfix's Atom output and pull entries out of it, for the CLI, golden and corpus tests.

`assert_valid_atom` checks a document against RFC 4287's RELAX NG grammar (tests/schemas/atom.rng)
and, in code, the two Schematron rules that lxml's RelaxNG ignores. The small helpers below read the
parts of an entry the tests compare (id, title, links by rel, authors, categories, dates, content
HTML and the img srcs in it) without depending on anything in the feedfix package.

`unwrap` is the tests' own oracle for the known image-proxy wrappers, written from the wrapper
families the README lists, so the corpus test can compute the origin URL of every wrapped image
in the source.
"""

from __future__ import annotations

import functools
import html
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import lxml.html
from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
NS = {"a": ATOM_NS}
SCHEMA_PATH = Path(__file__).with_name("schemas") / "atom.rng"
EPOCH = "1970-01-01T00:00:00Z"

# Hosts of the wrapper families the README lists; none of them may survive in feedfix's output.
WRAPPER_HOSTS = (
    "cors.zfour.workers.dev",
    "images.weserv.nl",
    "wsrv.nl",
    "i0.wp.com",
    "i1.wp.com",
    "i2.wp.com",
    "i3.wp.com",
)
WRAPPER_RE = re.compile("|".join(re.escape(h) for h in WRAPPER_HOSTS))
UTC_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _tag(name: str) -> str:
    return f"{{{ATOM_NS}}}{name}"


@functools.cache
def atom_schema() -> etree.RelaxNG:
    """The RFC 4287 grammar, parsed once per test session."""
    return etree.RelaxNG(etree.parse(str(SCHEMA_PATH)))


def parse_xml(data: bytes) -> etree._Element:
    """Parse bytes as XML with entities, DTD loading and network access all off."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    return etree.fromstring(data, parser)


def assert_valid_atom(data: bytes) -> etree._Element:
    """Assert `data` is an Atom 1.0 feed valid by RFC 4287 (grammar and Schematron); return root."""
    assert data.strip(), "output is empty, expected an Atom feed"
    try:
        root = parse_xml(data)
    except etree.XMLSyntaxError as exc:
        raise AssertionError(f"output is not well-formed XML: {exc}\n{data[:300]!r}") from exc
    assert root.tag == _tag("feed"), f"root element is {root.tag!r}, expected atom:feed"
    schema = atom_schema()
    if not schema.validate(root):
        errors = "\n".join(f"  line {e.line}: {e.message}" for e in list(schema.error_log)[:10])
        raise AssertionError(f"output does not validate against RFC 4287 RELAX NG:\n{errors}")
    feed_has_author = root.find("a:author", NS) is not None
    for index, entry in enumerate(root.findall("a:entry", NS)):
        label = f"entry #{index} ({entry.findtext('a:id', namespaces=NS)!r})"
        has_author = (
            entry.find("a:author", NS) is not None
            or entry.find("a:source/a:author", NS) is not None
        )
        assert has_author or feed_has_author, (
            f"{label} has no atom:author and neither has the feed (RFC 4287 4.1.2 Schematron)"
        )
        if entry.find("a:content", NS) is None:
            alternates = [
                link
                for link in entry.findall("a:link", NS)
                if link.get("rel") in (None, "alternate")
            ]
            assert alternates, (
                f"{label} has no atom:content and no rel='alternate' link "
                "(RFC 4287 4.1.2 Schematron)"
            )
    return root


def assert_feedfix_conventions(root: etree._Element) -> None:
    """Assert the feedfix output contract beyond Atom: html content, UTC dates, non-empty ids."""
    for element in root.iter(_tag("updated"), _tag("published")):
        text = (element.text or "").strip()
        assert UTC_DATE_RE.match(text), f"date {text!r} in <{element.tag!r}> is not in UTC (…Z)"
    for content in root.iter(_tag("content")):
        assert content.get("type") == "html", (
            f"content type is {content.get('type')!r}, expected 'html'"
        )
    ids = [(e.findtext("a:id", namespaces=NS) or "").strip() for e in root.findall("a:entry", NS)]
    assert all(ids), f"an entry has an empty atom:id: {ids}"
    assert len(set(ids)) == len(ids), f"entry ids are not unique: {ids}"


@dataclass
class Link:
    """One atom:link, with the attributes the tests compare."""

    href: str
    rel: str
    type: str | None = None
    length: str | None = None


@dataclass
class Entry:
    """The parts of an atom:entry the tests look at."""

    id: str
    title: str
    links: list[Link] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: str | None = None
    updated: str | None = None
    content_html: str = ""
    summary_html: str = ""
    lang: str | None = None
    element: etree._Element | None = None

    def links_by_rel(self, rel: str) -> list[Link]:
        """Links with this rel; a link without rel counts as 'alternate' (RFC 4287 4.2.7.2)."""
        return [link for link in self.links if link.rel == rel]

    @property
    def alternate(self) -> str | None:
        """The href of the first alternate link, if any."""
        alternates = self.links_by_rel("alternate")
        return alternates[0].href if alternates else None

    @property
    def img_srcs(self) -> list[str]:
        """The src of every img in the content, in document order."""
        return img_srcs(self.content_html)


def _links(parent: etree._Element) -> list[Link]:
    return [
        Link(
            href=link.get("href", ""),
            rel=link.get("rel") or "alternate",
            type=link.get("type"),
            length=link.get("length"),
        )
        for link in parent.findall("a:link", NS)
    ]


def atom_text(element: etree._Element) -> str:
    """The plain text of an Atom text construct, whatever its type (text, html or xhtml)."""
    if element.get("type") == "html":
        return normalise_space(html_fragment(element.text or "").text_content())
    return normalise_space("".join(element.itertext()))


def _text(parent: etree._Element, path: str) -> str | None:
    element = parent.find(path, NS)
    if element is None:
        return None
    return atom_text(element)


def _html_of(element: etree._Element | None) -> str:
    """Content or summary as an HTML string, whatever its Atom type."""
    if element is None:
        return ""
    kind = element.get("type", "text")
    if kind == "xhtml":
        return "".join(etree.tostring(child, encoding="unicode") for child in element)
    if kind == "html":
        return element.text or ""
    return html.escape(element.text or "", quote=False)


def effective_lang(element: etree._Element) -> str | None:
    """The xml:lang in force at an element (its own or its nearest ancestor's)."""
    values = element.xpath("ancestor-or-self::*[@xml:lang][1]/@xml:lang")
    return str(values[0]) if values else None


def entries(root: etree._Element) -> list[Entry]:
    """Every atom:entry of a feed, in document order."""
    result = []
    for element in root.findall("a:entry", NS):
        content = element.find("a:content", NS)
        result.append(
            Entry(
                id=_text(element, "a:id") or "",
                title=_text(element, "a:title") or "",
                links=_links(element),
                authors=[
                    (a.findtext("a:name", namespaces=NS) or "").strip()
                    for a in element.findall("a:author", NS)
                ],
                categories=[c.get("term", "") for c in element.findall("a:category", NS)],
                published=_text(element, "a:published"),
                updated=_text(element, "a:updated"),
                content_html=_html_of(content),
                summary_html=_html_of(element.find("a:summary", NS)),
                lang=effective_lang(content if content is not None else element),
                element=element,
            )
        )
    return result


def feed_links(root: etree._Element) -> list[Link]:
    """The feed-level atom:link elements."""
    return _links(root)


def feed_text(root: etree._Element, name: str) -> str | None:
    """The text of a feed-level child element such as title, subtitle, logo, icon, updated."""
    return _text(root, f"a:{name}")


def html_fragment(html: str) -> lxml.html.HtmlElement:
    """Parse a content HTML fragment into one wrapping <div>, as a reader would render it."""
    return lxml.html.fragment_fromstring(html or "", create_parent="div")


def img_srcs(html: str) -> list[str]:
    """The src attribute of every img in an HTML fragment, in document order."""
    return [img.get("src", "") for img in html_fragment(html).iter("img")]


def normalise_space(text: str) -> str:
    """Collapse every run of Unicode whitespace (incl. nbsp and ideographic space) to one space."""
    return " ".join(text.split())


def visible_text(html: str) -> str:
    """The text a reader would show for an HTML fragment, whitespace normalised."""
    root = html_fragment(html)
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    return normalise_space(root.text_content())


# ---- the tests' own reference unwrapper ---------------------------------------------------------

_WP_HOST_RE = re.compile(r"^i[0-3]\.wp\.com$")


def unwrap(url: str) -> str:
    """Take the known proxy wrappers off a URL, repeatedly (the tests' oracle, not feedfix's)."""
    url = url.strip().replace("&amp;", "&")
    for _ in range(10):
        absolute = "https:" + url if url.startswith("//") else url
        parts = urlsplit(absolute)
        host = (parts.hostname or "").lower()
        if host == "cors.zfour.workers.dev":
            inner = absolute.split("?", 1)[1] if "?" in absolute else ""
        elif host in ("images.weserv.nl", "wsrv.nl"):
            values = parse_qs(parts.query, keep_blank_values=True).get("url", [""])
            inner = values[0]  # parse_qs decodes the percent-encoding exactly once
            if inner.startswith("//"):
                inner = "https:" + inner
            elif not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", inner):
                inner = "http://" + inner
        elif _WP_HOST_RE.match(host):
            scheme = "https" if "ssl=1" in parts.query else "http"
            inner = f"{scheme}://{parts.path.lstrip('/')}"
        else:
            return url
        if not inner:
            return url
        url = inner
    return url


def is_wrapped(url: str) -> bool:
    """True when a URL still goes through one of the known wrappers."""
    return unwrap(url) != url.strip().replace("&amp;", "&")


def host_of(url: str) -> str:
    """The lower-case host of a URL (protocol-relative URLs included)."""
    if url.startswith("//"):
        url = "https:" + url
    return (urlsplit(url).hostname or "").lower()


# ---- running the CLI as a user does -----------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def run_feedfix(
    *args: str | Path,
    stdin: bytes | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    executable: list[str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m feedfix ARGS` (or `executable ARGS`) in a subprocess; capture the output."""
    command = [*(executable or [sys.executable, "-m", "feedfix"]), *map(str, args)]
    return subprocess.run(
        command,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )


def stderr_text(result: subprocess.CompletedProcess[bytes]) -> str:
    """The captured stderr, decoded leniently."""
    return result.stderr.decode("utf-8", "replace")


def describe(result: subprocess.CompletedProcess[bytes]) -> str:
    """A short account of a run for assertion messages."""
    return (
        f"exit {result.returncode}; stderr: {stderr_text(result)[-1500:]!r}; "
        f"stdout starts: {result.stdout[:200]!r}"
    )


def assert_converted(result: subprocess.CompletedProcess[bytes]) -> etree._Element:
    """Assert exit 0, no traceback and valid Atom on stdout; return the parsed root."""
    assert result.returncode == 0, f"expected exit 0, got {describe(result)}"
    assert "Traceback" not in stderr_text(result), describe(result)
    root = assert_valid_atom(result.stdout)
    assert_feedfix_conventions(root)
    return root


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], *names: str) -> str:
    """Assert exit 2 with exactly one stderr line that names the input, no traceback, no stdout."""
    err = stderr_text(result)
    assert result.returncode == 2, f"expected exit 2, got {describe(result)}"
    assert "Traceback" not in err, f"traceback on stderr: {err}"
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}: {err!r}"
    if names:
        assert any(name in lines[0] for name in names), (
            f"stderr line does not name the input ({' or '.join(names)}): {lines[0]!r}"
        )
    assert result.stdout == b"", f"stdout should be empty on error: {result.stdout[:200]!r}"
    return lines[0]


def served_titles(body: bytes) -> list[str]:
    """The titles of a served feed, in order (asserting it is valid Atom first)."""
    return [entry.title for entry in entries(assert_valid_atom(body))]
