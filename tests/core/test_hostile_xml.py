"""Hostile XML through the real command line: nothing leaks, nothing hangs, nothing blows up.

Every case is a feed file written to a temporary folder and converted by ``python -m feedfix
convert`` in a subprocess with a wall-clock timeout. The child is reaped with ``os.wait4`` so
its own peak resident memory is known exactly (not the largest of every child pytest ever
started). Each case must end in one of the two documented ways — exit 0 with valid Atom, or
exit 2 with a single stderr line naming the input — in under ``TIME_LIMIT`` seconds and
``MEMORY_LIMIT_MB`` of resident memory, with no traceback.

The cases: external entities (``file://`` to a file holding a secret marker; ``http://`` to a
loopback port where a listening socket records every connection; parameter entities, external
DTDs and XInclude, also in a feed ill-formed enough to take the recovery and feedparser paths),
entity-expansion bombs (billion laughs; one 100 KB entity referenced 10,000 times), 100,000
nested elements (as escaped HTML in a description, in CDATA, as XML elements, as Atom XHTML),
10 MB attributes, invalid UTF-8 in a UTF-8 feed and NUL bytes. ``test_summary`` runs whatever
the parametrized test did not and prints the count.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from atomcheck import (
    REPO,
    assert_converted,
    assert_one_line_error,
    assert_valid_atom,
    entries,
    visible_text,
)

TIME_LIMIT = 10.0  # seconds of wall-clock time per conversion
MEMORY_LIMIT_MB = 300  # peak resident memory of the feedfix process
ADDRESS_SPACE_GUARD = 3 * 1024**3  # RLIMIT_AS in the child, so a runaway cannot take the machine
MARKER = "FEEDFIX-HOSTILE-SECRET-7f3a9c"


# ---- the loopback listener that must never be called ------------------------------------------


class Listener:
    """A TCP socket on 127.0.0.1 that accepts and records every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    request = conn.recv(4096)
                    body = f"<!ENTITY leak '{MARKER}'>{MARKER}".encode()
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
                except OSError:
                    request = b"?"
                self.connections.append(request or b"(connected, sent nothing)")

    def close(self) -> None:
        """Stop accepting and close the socket."""
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    """One recording listener for the whole module."""
    server = Listener()
    yield server
    server.close()


# ---- the cases --------------------------------------------------------------------------------

Builder = Callable[[Path, int], bytes]  # (temp folder, listener port) -> feed bytes


def _rss(item_body: str, *, doctype: str = "", channel_extra: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{doctype}"
        '<rss version="2.0"><channel><title>Hostile</title>'
        "<link>https://hostile.example.org/</link><description>d</description>"
        f"{channel_extra}<item><title>item</title><link>https://hostile.example.org/1</link>"
        f"<guid>https://hostile.example.org/1</guid>{item_body}</item></channel></rss>\n"
    )


def _secret(folder: Path) -> Path:
    path = folder / "secret.txt"
    path.write_text(f"{MARKER}\n", encoding="utf-8")
    return path


def xxe_file(folder: Path, port: int) -> bytes:
    """A general entity pointing at a local file, used in a title and a description."""
    doctype = f'<!DOCTYPE rss [<!ENTITY secret SYSTEM "file://{_secret(folder)}">]>\n'
    return (
        _rss("<description>before &secret; after</description>", doctype=doctype)
        .replace("<title>item</title>", "<title>t &secret;</title>")
        .encode()
    )


def xxe_file_relative(folder: Path, port: int) -> bytes:
    """A general entity with a bare relative path (resolved against the feed's own folder)."""
    _secret(folder)
    doctype = '<!DOCTYPE rss [<!ENTITY secret SYSTEM "secret.txt">]>\n'
    return _rss("<description>&secret;</description>", doctype=doctype).encode()


def xxe_http(folder: Path, port: int) -> bytes:
    """A general entity pointing at the recording loopback port."""
    doctype = f'<!DOCTYPE rss [<!ENTITY remote SYSTEM "http://127.0.0.1:{port}/xxe">]>\n'
    return _rss("<description>x &remote; y</description>", doctype=doctype).encode()


def xxe_parameter_entity(folder: Path, port: int) -> bytes:
    """A parameter entity that would fetch a DTD from the loopback port and then a file."""
    doctype = (
        "<!DOCTYPE rss [\n"
        f'  <!ENTITY % file SYSTEM "file://{_secret(folder)}">\n'
        f'  <!ENTITY % dtd SYSTEM "http://127.0.0.1:{port}/evil.dtd">\n'
        "  %dtd;\n]>\n"
    )
    return _rss("<description>&leak;</description>", doctype=doctype).encode()


def xxe_external_dtd(folder: Path, port: int) -> bytes:
    """An external DTD subset on the loopback port (DOCTYPE SYSTEM), which must not be loaded."""
    doctype = f'<!DOCTYPE rss SYSTEM "http://127.0.0.1:{port}/rss.dtd">\n'
    return _rss("<description>&leak;</description>", doctype=doctype).encode()


def xxe_public_dtd(folder: Path, port: int) -> bytes:
    """A PUBLIC id with a system URL on the loopback port (the RSS 0.91 Netscape DTD trick)."""
    doctype = (
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        f'"http://127.0.0.1:{port}/rss-0.91.dtd">\n'
    )
    return _rss("<description>d &leak;</description>", doctype=doctype).encode()


def xinclude(folder: Path, port: int) -> bytes:
    """XInclude of a local file and of the loopback URL, as text."""
    secret = _secret(folder)
    body = (
        '<description xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<xi:include href="file://{secret}" parse="text"/>'
        f'<xi:include href="http://127.0.0.1:{port}/inc" parse="text"/></description>'
    )
    return _rss(body).encode()


def xxe_illformed(folder: Path, port: int) -> bytes:
    """File and http entities in a feed too broken for the strict parser (recovery paths)."""
    doctype = (
        "<!DOCTYPE rss [\n"
        f'  <!ENTITY secret SYSTEM "file://{_secret(folder)}">\n'
        f'  <!ENTITY remote SYSTEM "http://127.0.0.1:{port}/ill">\n]>\n'
    )
    body = "<description>a &secret; b &remote; c & d <b>unclosed</description><p>"
    return _rss(body, doctype=doctype).encode()


def xxe_broken_root(folder: Path, port: int) -> bytes:
    """Entities in a document whose channel never closes (recovery and feedparser both tried)."""
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
        f'  <!ENTITY secret SYSTEM "file://{_secret(folder)}">\n'
        f'  <!ENTITY remote SYSTEM "http://127.0.0.1:{port}/broken">\n]>\n'
        "<rss version='2.0'><channel><title>&secret;</title><item><title>&remote;"
        "<description>&secret; &remote; <<<</description"
    ).encode()


def xxe_utf16(folder: Path, port: int) -> bytes:
    """The file and http entities in a UTF-16 document (the re-decoding path)."""
    doctype = (
        "<!DOCTYPE rss [\n"
        f'  <!ENTITY secret SYSTEM "file://{_secret(folder)}">\n'
        f'  <!ENTITY remote SYSTEM "http://127.0.0.1:{port}/utf16">\n]>\n'
    )
    text = _rss("<description>&secret; &remote;</description>", doctype=doctype)
    return text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


def xxe_gbk(folder: Path, port: int) -> bytes:
    """The entities in a GBK-declared feed (decoded and re-parsed as UTF-8)."""
    doctype = (
        "<!DOCTYPE rss [\n"
        f'  <!ENTITY secret SYSTEM "file://{_secret(folder)}">\n'
        f'  <!ENTITY remote SYSTEM "http://127.0.0.1:{port}/gbk">\n]>\n'
    )
    text = _rss("<description>中文 &secret; &remote; &nbsp;</description>", doctype=doctype)
    return text.replace('encoding="UTF-8"', 'encoding="GBK"').encode("gbk")


def _laughs(levels: int = 10, fan: int = 10) -> str:
    lines = ['  <!ENTITY lol0 "lol">']
    for level in range(1, levels):
        lines.append(f'  <!ENTITY lol{level} "{f"&lol{level - 1};" * fan}">')
    return "<!DOCTYPE rss [\n" + "\n".join(lines) + "\n]>\n"


def billion_laughs(folder: Path, port: int) -> bytes:
    """10 levels of 10 references: 10^9 'lol's if expanded, in title and description."""
    top = "&lol9;"
    return (
        _rss(f"<description>{top}</description>", doctype=_laughs())
        .replace("<title>Hostile</title>", f"<title>{top}</title>")
        .encode()
    )


def billion_laughs_illformed(folder: Path, port: int) -> bytes:
    """The same bomb in a feed that the strict parser rejects (recovery, then feedparser)."""
    return _rss(
        "<description>&lol9; & <unclosed></description><title>&lol9;", doctype=_laughs()
    ).encode()


def billion_laughs_attribute(folder: Path, port: int) -> bytes:
    """The bomb in attribute values (enclosure url, atom:link href)."""
    body = (
        '<enclosure url="https://e.example.org/&lol9;" type="audio/mpeg" length="1"/>'
        '<atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="related" href="&lol9;"/>'
    )
    return _rss(body, doctype=_laughs()).encode()


def _quadratic_doctype(size: int = 100_000) -> str:
    return f'<!DOCTYPE rss [<!ENTITY big "{"x" * size}">]>\n'


def quadratic_blowup(folder: Path, port: int) -> bytes:
    """One 100 KB entity referenced 10,000 times (1 GB if expanded)."""
    return _rss(f"<description>{'&big;' * 10_000}</description>",
                doctype=_quadratic_doctype()).encode()  # fmt: skip


def quadratic_blowup_spread(folder: Path, port: int) -> bytes:
    """The 100 KB entity 12,000 times across 60 items' titles and descriptions."""
    item = "<item><guid>g{}</guid><title>&big;</title><description>{}</description></item>"
    items = "".join(item.format(i, "&big;" * 199) for i in range(60))
    return _rss("", doctype=_quadratic_doctype(), channel_extra=items).encode()


def quadratic_blowup_illformed(folder: Path, port: int) -> bytes:
    """The quadratic bomb in an ill-formed feed (feedparser keeps such "safe" entities)."""
    body = f"<description>{'&big;' * 10_000}</description><title>& broken <b>"
    return _rss(body, doctype=_quadratic_doctype()).encode()


def quadratic_blowup_no_channel_end(folder: Path, port: int) -> bytes:
    """The quadratic bomb where recovery finds no item, so feedparser gets the whole document."""
    return (
        '<?xml version="1.0"?>\n' + _quadratic_doctype() + "<rss version='2.0'><channel>"
        "<title>&big;</title><item><description>" + "&big;" * 10_000 + "</description"
    ).encode()


DEPTH = 100_000


def deep_html_escaped(folder: Path, port: int) -> bytes:
    """100,000 nested divs as escaped HTML in a description."""
    markup = "&lt;div&gt;" * DEPTH + "deep" + "&lt;/div&gt;" * DEPTH
    return _rss(f"<description>{markup}</description>").encode()


def deep_html_unclosed(folder: Path, port: int) -> bytes:
    """100,000 nested unclosed inline tags in CDATA (the HTML parser's tag stack)."""
    markup = "<b><i><span>" * (DEPTH // 3) + "deep"
    return _rss(f"<description><![CDATA[{markup}]]></description>").encode()


def deep_html_cdata_mixed(folder: Path, port: int) -> bytes:
    """100,000 nested list/table elements in CDATA, which the HTML parser nests and closes."""
    markup = "<ul><li>" * (DEPTH // 2) + "deep" + "</li></ul>" * (DEPTH // 2)
    return _rss(f"<description><![CDATA[{markup}]]></description>").encode()


def deep_xml_elements(folder: Path, port: int) -> bytes:
    """100,000 nested XML elements inside an item's description."""
    markup = "<x>" * DEPTH + "deep" + "</x>" * DEPTH
    return _rss(f"<description>{markup}</description>").encode()


def deep_xml_item(folder: Path, port: int) -> bytes:
    """100,000 nested unknown XML elements directly inside an item."""
    markup = "<n:x xmlns:n='urn:n'>" + "<n:x>" * DEPTH + "</n:x>" * DEPTH + "</n:x>"
    return _rss(f"<description>d</description>{markup}").encode()


def deep_atom_xhtml(folder: Path, port: int) -> bytes:
    """100,000 nested XHTML divs in an Atom entry's type="xhtml" content."""
    markup = "<div>" * DEPTH + "deep" + "</div>" * DEPTH
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Deep</title><id>urn:x:deep</id><updated>2024-01-01T00:00:00Z</updated>"
        "<author><name>a</name></author><entry><title>e</title><id>urn:x:e</id>"
        "<updated>2024-01-01T00:00:00Z</updated><content type='xhtml'>"
        f"<div xmlns='http://www.w3.org/1999/xhtml'>{markup}</div></content></entry></feed>\n"
    ).encode()


def deep_xml_unclosed(folder: Path, port: int) -> bytes:
    """100,000 nested XML elements never closed (recovery and feedparser on a deep tree)."""
    return _rss("<description>d</description>" + "<x>" * DEPTH).encode()


HUGE = 10 * 1024 * 1024


def huge_attribute_item(folder: Path, port: int) -> bytes:
    """A 10 MB attribute on the item element."""
    return (
        _rss("<description>d</description>")
        .replace("<item>", f'<item junk="{"a" * HUGE}">')
        .encode()
    )


def huge_attribute_enclosure(folder: Path, port: int) -> bytes:
    """A 10 MB enclosure URL."""
    body = f'<description>d</description><enclosure url="https://e.example.org/{"a" * HUGE}"/>'
    return _rss(body).encode()


def huge_attribute_html(folder: Path, port: int) -> bytes:
    """A 10 MB img alt and a 10 MB onclick in the description's HTML."""
    half = "b" * (HUGE // 2)
    markup = f'<img src="https://i.example.org/a.jpg" alt="{half}" onclick="{half}">'
    return _rss(f"<description><![CDATA[{markup}]]></description>").encode()


def many_attributes(folder: Path, port: int) -> bytes:
    """100,000 distinct attributes on one element."""
    attrs = " ".join(f'a{i}="{i}"' for i in range(100_000))
    return _rss("<description>d</description>").replace("<item>", f"<item {attrs}>").encode()


def invalid_utf8_text(folder: Path, port: int) -> bytes:
    """Invalid UTF-8 in a UTF-8 feed: stray continuation, overlong, surrogate, 0xFF."""
    text = _rss("<description>ok @ end</description>").replace("<title>item", "<title>@item")
    bad = b"\x80\xbf|\xc0\xaf|\xed\xa0\x80|\xff\xfe|\xf8\x88\x80\x80\x80|\xe4\xb8"
    return text.encode().replace(b"@", bad)


def invalid_utf8_markup(folder: Path, port: int) -> bytes:
    """Invalid UTF-8 inside tag names and attribute values."""
    text = _rss('<description>d</description><enclosure url="https://e.example.org/@"/>')
    return text.encode().replace(b"@", b"\xff\xfe\xc3").replace(b"<guid>", b"<gu\xffid>")


def invalid_utf8_everywhere(folder: Path, port: int) -> bytes:
    """Every 7th byte of the body replaced with 0xFF."""
    data = bytearray(_rss("<description>" + "text " * 2000 + "</description>").encode())
    for index in range(60, len(data), 7):
        data[index] = 0xFF
    return bytes(data)


def nul_in_text(folder: Path, port: int) -> bytes:
    """NUL bytes inside a title and a description."""
    return (
        _rss("<description>a\x00b\x00\x00c</description>")
        .replace("<title>item", "<title>it\x00em")
        .encode()
    )


def nul_in_markup(folder: Path, port: int) -> bytes:
    """NUL bytes inside tag names, attribute values and between elements."""
    text = _rss('<description>d</description><enclosure url="https://e.\x00x/"/>\x00')
    return text.replace("<guid>", "<gu\x00id>").encode()


def nul_after_head(folder: Path, port: int) -> bytes:
    """NUL bytes only after the first 64 KB (past the binary-data sniffing)."""
    padding = "<!-- " + "p" * 70_000 + " -->"
    return _rss(f"<description>{padding}a\x00\x00\x00b</description>").encode()


def nul_flood(folder: Path, port: int) -> bytes:
    """A feed followed by a megabyte of NUL bytes."""
    return _rss("<description>d</description>").encode() + b"\x00" * 1_000_000


def utf16_with_nul_text(folder: Path, port: int) -> bytes:
    """UTF-16 (whose every other byte is NUL) with a real U+0000 in a description."""
    return _rss("<description>a\x00b</description>").replace("UTF-8", "UTF-16").encode("utf-16")


def feedparser_image_height(folder: Path, port: int) -> bytes:
    """A mismatched ``<image><heighz>…</height>`` in a channel with no items.

    Recovery finds no entries, so feedparser gets the document; its ``_end_height`` calls
    ``int(None)``, whose TypeError used to escape as an internal error (found by
    benchmarks/fuzz_atheris.py).
    """
    return (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<image><heighz>31</height></image></channel></rss>"
    )


def feedparser_image_width(folder: Path, port: int) -> bytes:
    """The same with ``<widtx>…</width>`` and no title."""
    return b'<rss version="2.0"><channel><image><widtx>1</width></image></channel></rss>'


def feedparser_icon_attributes(folder: Path, port: int) -> bytes:
    """Garbage that only feedparser reads, into a feed whose ``icon`` is a dict of attributes.

    The renderer then gets a dict where it expects a string: TypeError, an internal error
    (found by benchmarks/fuzz_atheris.py after the fixes above; minimized by hand).
    """
    return b'<r xmlns:atom="http://www.w3.org/2005/Atom"<atom:icon h<entry>'


def post_control_character(folder: Path, port: int) -> bytes:
    """A post whose body has a control character next to a wrapped URL written as text.

    The HTML parser kept U+001C and unwrap-proxies then set the rewritten text on the lxml
    node, which refused it with ValueError: an internal error (found by fuzz_atheris.py).
    """
    return (
        b"---\ntitle: control\ndate: 2024-01-01 10:00:00\n---\n"
        b"<p>cloth\x1ccord, see https://cors.zfour.workers.dev/?http://x.example.com/a.jpg</p>\n"
    )


@dataclass(frozen=True)
class Case:
    """One hostile input: how to build it and what must not happen."""

    name: str
    build: Builder
    leak_check: bool = False  # assert the secret marker is absent and the listener uncalled


CASES = [
    Case("xxe-file", xxe_file, leak_check=True),
    Case("xxe-file-relative", xxe_file_relative, leak_check=True),
    Case("xxe-http", xxe_http, leak_check=True),
    Case("xxe-parameter-entity", xxe_parameter_entity, leak_check=True),
    Case("xxe-external-dtd", xxe_external_dtd, leak_check=True),
    Case("xxe-public-dtd", xxe_public_dtd, leak_check=True),
    Case("xinclude", xinclude, leak_check=True),
    Case("xxe-illformed", xxe_illformed, leak_check=True),
    Case("xxe-broken-root", xxe_broken_root, leak_check=True),
    Case("xxe-utf16", xxe_utf16, leak_check=True),
    Case("xxe-gbk", xxe_gbk, leak_check=True),
    Case("billion-laughs", billion_laughs),
    Case("billion-laughs-illformed", billion_laughs_illformed),
    Case("billion-laughs-attribute", billion_laughs_attribute),
    Case("quadratic-blowup", quadratic_blowup),
    Case("quadratic-blowup-spread", quadratic_blowup_spread),
    Case("quadratic-blowup-illformed", quadratic_blowup_illformed),
    Case("quadratic-blowup-no-channel-end", quadratic_blowup_no_channel_end),
    Case("deep-html-escaped", deep_html_escaped),
    Case("deep-html-unclosed", deep_html_unclosed),
    Case("deep-html-lists", deep_html_cdata_mixed),
    Case("deep-xml-elements", deep_xml_elements),
    Case("deep-xml-item", deep_xml_item),
    Case("deep-atom-xhtml", deep_atom_xhtml),
    Case("deep-xml-unclosed", deep_xml_unclosed),
    Case("huge-attribute-item", huge_attribute_item),
    Case("huge-attribute-enclosure", huge_attribute_enclosure),
    Case("huge-attribute-html", huge_attribute_html),
    Case("many-attributes", many_attributes),
    Case("invalid-utf8-text", invalid_utf8_text),
    Case("invalid-utf8-markup", invalid_utf8_markup),
    Case("invalid-utf8-everywhere", invalid_utf8_everywhere),
    Case("nul-in-text", nul_in_text),
    Case("nul-in-markup", nul_in_markup),
    Case("nul-after-head", nul_after_head),
    Case("nul-flood", nul_flood),
    Case("utf16-with-nul", utf16_with_nul_text),
    Case("feedparser-image-height", feedparser_image_height),
    Case("feedparser-image-width", feedparser_image_width),
    Case("post-control-character", post_control_character),
    Case("feedparser-icon-attributes", feedparser_icon_attributes),
]


# ---- running one case -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one conversion did."""

    case: str
    returncode: int | None  # None: killed at the time limit
    seconds: float
    peak_mb: float
    stdout: bytes = b""
    stderr: bytes = b""
    connections: list[bytes] = field(default_factory=list)

    @property
    def hung(self) -> bool:
        """Killed for running past the time limit."""
        return self.returncode is None

    @property
    def traceback(self) -> bool:
        """A Python traceback (or an internal-error exit) instead of a clean outcome."""
        err = self.stderr.decode("utf-8", "replace")
        return "Traceback" in err or "internal error" in err or self.returncode == 1


def _guard_memory() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_GUARD, ADDRESS_SPACE_GUARD))


def run_convert(path: Path, timeout: float = TIME_LIMIT) -> Outcome:
    """``python -m feedfix convert PATH``, reaped with wait4 for its own peak memory."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedfix", "convert", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=REPO,
            preexec_fn=_guard_memory,  # noqa: PLW1509 - setrlimit only, no threads started yet
        )
        status = None
        usage = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                proc.send_signal(signal.SIGKILL)
                _, _, usage = os.wait4(proc.pid, 0)
                status = None
                break
            time.sleep(0.01)
        proc.returncode = 0  # reaped by hand: stop Popen from waiting again
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status) if status is not None else None
        return Outcome(
            case=path.name,
            returncode=code,
            seconds=seconds,
            peak_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
            stdout=out.read(),
            stderr=err.read(),
        )


RESULTS: dict[str, Outcome] = {}


def run_case(case: Case, listener: Listener) -> Outcome:
    """Build the case's feed in a fresh folder, convert it, record the outcome."""
    with tempfile.TemporaryDirectory(prefix="feedfix-hostile-") as tmp:
        folder = Path(tmp)
        path = folder / f"{case.name}.xml"
        path.write_bytes(case.build(folder, listener.port))
        before = len(listener.connections)
        outcome = run_convert(path)
        time.sleep(0.05 if case.leak_check else 0)  # let a late connection be recorded
        outcome.connections = listener.connections[before:]
    RESULTS[case.name] = outcome
    return outcome


def check(case: Case, outcome: Outcome) -> None:
    """Every rule a hostile input is held to."""
    where = f"{case.name}: exit {outcome.returncode}, {outcome.seconds:.1f}s, "
    where += f"{outcome.peak_mb:.0f} MB; stderr {outcome.stderr[-800:]!r}"
    assert not outcome.hung, f"{where}: still running after {TIME_LIMIT:.0f}s (hang)"
    assert not outcome.traceback, f"{where}: traceback / internal error"
    assert outcome.seconds < TIME_LIMIT, where
    assert outcome.peak_mb < MEMORY_LIMIT_MB, f"{where}: peak memory over {MEMORY_LIMIT_MB} MB"
    assert outcome.returncode in (0, 2), where
    result = subprocess.CompletedProcess(
        args=[], returncode=outcome.returncode, stdout=outcome.stdout, stderr=outcome.stderr
    )
    if outcome.returncode == 0:
        assert_converted(result)
    else:
        assert_one_line_error(result, f"{case.name}.xml")
    # Expanded entities would show up as output far larger than the input's visible text.
    assert len(outcome.stdout) < 25 * 1024 * 1024, f"{where}: {len(outcome.stdout):,} bytes out"
    assert b"lollollollollollollollol" not in outcome.stdout, f"{where}: laughs expanded"
    assert b"x" * 200_001 not in outcome.stdout, f"{where}: quadratic entity expanded"
    if case.leak_check:
        assert MARKER.encode() not in outcome.stdout + outcome.stderr, f"{where}: secret leaked"
        assert not outcome.connections, f"{where}: connected to the listener: {outcome.connections}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, listener: Listener) -> None:
    """Exit 0 with valid Atom or exit 2 with one line; bounded time and memory; nothing leaks."""
    check(case, run_case(case, listener))


def test_summary(listener: Listener) -> None:
    """Every case ran (those not run above run here) with 0 tracebacks and 0 hangs."""
    for case in CASES:
        if case.name not in RESULTS:
            run_case(case, listener)
    outcomes = [RESULTS[c.name] for c in CASES]
    tracebacks = [o.case for o in outcomes if o.traceback]
    hangs = [o.case for o in outcomes if o.hung]
    slowest = max(outcomes, key=lambda o: o.seconds)
    biggest = max(outcomes, key=lambda o: o.peak_mb)
    line = (
        f"{len(outcomes)} hostile XML inputs, {len(tracebacks)} tracebacks, {len(hangs)} hangs "
        f"(slowest {slowest.case} {slowest.seconds:.1f}s, "
        f"largest {biggest.case} {biggest.peak_mb:.0f} MB)"
    )
    print(line)
    assert len(outcomes) == len(CASES) >= 30, line
    assert not tracebacks, f"{line}: {tracebacks}"
    assert not hangs, f"{line}: {hangs}"


# ---- damage must not garble what can still be read --------------------------------------------

ESCAPED_HTML = "&lt;p&gt;Hello &amp;amp; &lt;b&gt;friends&lt;/b&gt;&lt;/p&gt;"
DAMAGE = {
    # A bare ampersand in the channel title: the commonest breakage of real feeds.
    "bare-ampersand": ("<title>Tom & Jerry</title>", ""),
    # One control character that XML 1.0 forbids (a NUL past the 8 KB binary sniff).
    "nul": ("<title>Tom\x00Jerry</title>", f"<!--{' ' * 9000}-->"),
    "vertical-tab": ("<title>Tom\x0bJerry</title>", ""),
    "form-feed": ("<title>Tom\x0cJerry</title>", ""),
    "backspace": ("<title>Tom\x08Jerry</title>", ""),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damage_does_not_garble_escaped_html(damage: str) -> None:
    """One bad character in the channel title must not strip the markup of every entry.

    libxml2's recover mode drops every entity reference after such an error, so escaped HTML
    (``&lt;p&gt;…``) comes out as the text ``pHello amp; bfriends/b/p``. The bytes are
    converted in-process; the entry must keep its ``<b>`` and its text.
    """
    from feedfix.core.pipeline import convert  # noqa: PLC0415

    title, prolog = DAMAGE[damage]
    data = (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<rss version="2.0"><channel>{title}'
        "<link>https://d.example.org/</link><item><title>A &amp; B</title>"
        f"<guid>https://d.example.org/1</guid><description>{ESCAPED_HTML}</description>"
        "</item></channel></rss>"
    ).encode()
    result = convert(data, f"{damage}.xml")
    (entry,) = entries(assert_valid_atom(result.atom))
    assert entry.title == "A & B", f"title garbled: {entry.title!r}"
    assert "<b>friends</b>" in entry.content_html, f"markup lost: {entry.content_html!r}"
    assert visible_text(entry.content_html) == "Hello & friends", entry.content_html
