"""Issue 18, class 6: unsafe URLs never reach a reader.

Content URLs have had a scheme allowlist for long (``sanitize``); the URLs feedfix writes
*around* the content did not: entry and feed ``link href``, enclosures, ``media:thumbnail``
and ``media:content``, the logo, the icon, and ids that are URLs. Many readers make these
clickable or load them. Every URL feedfix writes must pass the same allowlist (``http``,
``https``, ``mailto``, ``tel``, relative resolved first); a refused one is left out and
counted in ``--explain``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree
from security_helpers import atom_root, run_feedfix

from service_helpers import Service
from upstream import Upstream, feed

ATOM_NS = "http://www.w3.org/2005/Atom"
UNSAFE = re.compile(r"^[\x00-\x20]*(?:javascript|vbscript|data|file)[\x00-\x20]*:", re.I)

UNSAFE_RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:atom="http://www.w3.org/2005/Atom"><channel>
<title>t</title><link>javascript:alert('channel')</link><description>d</description>
<atom:link rel="self" href="vbscript:msgbox('self')"/>
<image><url>data:image/svg+xml,&lt;svg onload=alert('logo')&gt;</url><title>t</title>
<link>javascript:alert('image link')</link></image>
<item><title>one</title><link>javascript:alert('link')</link>
<guid isPermaLink="true">javascript:alert('guid')</guid>
<comments>javascript:alert('comments')</comments>
<enclosure url="javascript:alert('enclosure')" type="audio/mpeg" length="1"/>
<media:thumbnail url="data:image/svg+xml,&lt;svg onload=alert('thumb')&gt;"/>
<media:content url=" JaVaScRiPt:alert('content')" medium="image" type="image/png"/>
<description>&lt;p&gt;safe text&lt;/p&gt;</description></item>
</channel></rss>
"""

UNSAFE_ATOM = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>javascript:alert('feed id')</id>
<title>t</title><updated>2026-12-01T00:00:00Z</updated>
<link href="java&#x09;script:alert('alternate')"/><icon>vbscript:msgbox('icon')</icon>
<logo>data:image/png;base64,AAAA</logo>
<entry><id>data:text/html,&lt;script&gt;alert('id')&lt;/script&gt;</id><title>e</title>
<updated>2026-12-01T00:00:00Z</updated><link href="  javascript:alert('entry')"/>
<link rel="enclosure" href="file:///etc/passwd" type="text/plain" length="1"/>
<link rel="related" href="JAVASCRIPT:alert('related')"/>
<author><name>a</name><uri>javascript:alert('author')</uri></author>
<content type="html">&lt;p&gt;safe text&lt;/p&gt;</content></entry></feed>
"""


def written_urls(atom: bytes) -> list[tuple[str, str]]:
    """Every URL a published Atom feed writes outside its content: (where, value)."""
    root = atom_root(atom)
    found: list[tuple[str, str]] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = etree.QName(el).localname
        for attr in ("href", "url", "src", "uri"):
            value = el.get(attr)
            if value is not None:
                found.append((f"{name}@{attr}", value))
        if name in ("id", "logo", "icon", "uri") and el.text:
            found.append((name, el.text))
    return found


def _unsafe(atom: bytes) -> list[tuple[str, str]]:
    return [(where, value) for where, value in written_urls(atom) if UNSAFE.match(value)]


def _explained_refusals(explain: str) -> list[str]:
    """``--explain`` lines that count refused URLs (any wording naming unsafe/refused URLs
    or schemes)."""
    return [
        line
        for line in explain.splitlines()
        if re.search(r"url", line, re.I) and re.search(r"unsafe|refused|scheme", line, re.I)
    ]


@pytest.mark.parametrize(
    ("name", "document"),
    [("unsafe.xml", UNSAFE_RSS), ("unsafe.atom", UNSAFE_ATOM)],
    ids=["rss", "atom"],
)
def test_convert_writes_no_unsafe_url(tmp_path: Path, name: str, document: bytes) -> None:
    """Attack, RSS: an RSS feed whose channel link, self link, image, item link, permalink
    guid, comments, enclosure, ``media:thumbnail`` and ``media:content`` are ``javascript:``,
    ``vbscript:`` or ``data:`` URLs (one with leading space and mixed case): all of them
    reached the published Atom (``<link href="javascript:…">``, ``<id>javascript:…</id>``).
    Attack, Atom: the same through Atom input: feed and entry ids, the alternate link (with
    a tab inside ``java\\tscript:``), icon, logo, an enclosure to ``file:``, a related link
    and an author's ``uri``.

    Must hold: none is written anywhere outside the content; the output is still a valid
    feed with its entry; ``--explain`` counts the refused URLs."""
    source = tmp_path / name
    source.write_bytes(document)
    run = run_feedfix(["convert", str(source), "--explain"], timeout=30)
    assert run.returncode == 0, run.err
    unsafe = _unsafe(run.stdout)
    assert not unsafe, f"unsafe URLs written: {unsafe}"
    assert b"safe text" in run.stdout
    assert _explained_refusals(run.err), f"--explain does not count them:\n{run.err}"


def test_the_service_publishes_no_unsafe_url(tmp_path: Path) -> None:
    """Attack: the hostile RSS above as an upstream feed of ``feedfix serve``.

    Must hold: ``/feeds/NAME.atom`` carries none of the unsafe URLs (the service's cleaning
    is the same pipeline, and the republished archive too)."""
    with Upstream() as upstream:
        upstream.script("/u.xml", feed(UNSAFE_RSS))
        with Service(tmp_path, [{"name": "u", "url": upstream.url("/u.xml")}]) as service:
            atom = service.wait_served("u").body
    unsafe = _unsafe(atom)
    assert not unsafe, f"unsafe URLs published: {unsafe}"
    root = atom_root(atom)
    assert root.find(f"{{{ATOM_NS}}}entry") is not None
