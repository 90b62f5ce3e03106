"""How each stage's cost grows with a pathological input, and peak memory per input byte.

Usage::

    .venv/bin/python benchmarks/bench_scaling.py [--quick] [--json] [--timeout 60]
        [--only SUBSTRING] [--no-service] [--no-memory]

For every stage (parse, each rule, render, mend, the playground, the inspector, the front's
head parsing) it builds the input that attacks that stage (issue 18's campaign and
``tests/security/test_linear_time.py``), at size n and 8n, and prints the cost of each and
the ratio: a linear stage shows ~8, a quadratic one ~64, an exponential one runs out of
time (``>``). ``convert`` and ``fix-posts`` run as children and their cost is the CPU time
the kernel counts (``os.wait4``), less the cost of a trivial input; the service stages run
against one ``feedfix serve`` child on 127.0.0.1 and are timed by the wall clock of their
HTTP answer, less a trivial request's.

Memory: ``feedfix convert`` over one huge entry and over many small entries of the same
total size; the child's peak RSS less its peak on a trivial input, per byte of input (the
issue asks for at most 15x in both cases).

Everything listens on and talks to 127.0.0.1 only. Exit status 0 unless a child failed in
an unexpected way; the ratios are reported, not enforced (the tests enforce them).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import escape

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "security")]
# The children are run as the security tests run them (CPU time and peak RSS from wait4).
from security_helpers import run_feedfix  # noqa: E402

WRAP = "https://cors.zfour.workers.dev/?"
FLOOR = 0.05  # seconds: a cheaper run counts as this much in the ratio


# ---- documents ------------------------------------------------------------------------------


def item(html: str = "<p>x</p>", n: int = 1, title: str | None = None, extra: str = "") -> str:
    link = f"http://example.com/a/{n}"
    return (
        f"<item><title>{escape(title if title is not None else f'item {n}')}</title>"
        f"<link>{link}</link><guid>{link}</guid><pubDate>Tue, 01 Dec 2026 00:00:00 GMT</pubDate>"
        f"<description>{escape(html)}</description>{extra}</item>"
    )


def rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>t</title>'
        "<link>http://example.com/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>\n"
    ).encode()


def entry(html: str) -> bytes:
    return rss(item(html))


def cdata_entry(body: str, n: int = 1) -> str:
    return item("", n).replace("<description></description>",
                               f"<description><![CDATA[{body}]]></description>")  # fmt: skip


def attrs(k: int, quote: str = "") -> str:
    return " ".join(f"a{i}={quote}x{quote}" for i in range(k))


KEY_CONFIG = (
    '[server]\nbase_url = "https://feeds.example"\n[images]\nproxy = "all"\nkey = "'
    + "k" * 40
    + '"\n'
)

# (stage, n, document builder, config text, extra arguments, expected exit)
STAGES: list[tuple[str, int, Callable[[int], bytes], str, tuple[str, ...], int]] = [
    ("parse: comments before the root", 12, lambda k: b"<!---->" * k + rss(item()), "", (), 0),
    ("parse: an HTML page's <link> run", 2000, lambda k: b"<html><head>" + b"<link " * k,
     "", (), 2),
    ("parse: XML attributes on one item", 4000,
     lambda k: rss(item().replace("<item>", f"<item {attrs(k, chr(34))}>")), "", (), 0),
    ("html: attributes on one <img>", 2000, lambda k: entry(f'<img src="a.png" {attrs(k)}>'),
     "", (), 0),
    ("html: a <head> run in content", 2000, lambda k: entry("<title>t</title>" + "<head>" * k),
     "", (), 0),
    ("html: nesting", 4000, lambda k: entry("<div>" * k + "x" + "</div>" * k), "", (), 0),
    ("rule filter: a user's pattern (a+)+$", 16, lambda k: rss(item(title="a" * k + "!")),
     '[rules.filter]\ndrop = "(a+)+$"\n', (), 0),
    ("rule limit: many entries", 2000, lambda k: rss(*(item(n=i) for i in range(k))),
     "[rules.limit]\ncount = 3\n", (), 0),
    ("rule unwrap-proxies: nested wrappers", 2000,
     lambda k: entry(f'<img src="{WRAP * k}http://e.com/x.png">'), "", (), 0),
    ("rule fix-lazy-images: many lazy images", 2000,
     lambda k: entry("".join(f'<img class="lazy" src="data:," data-original="http://e.com/'
                             f'{i}.png">' for i in range(k))), "", (), 0),
    ("rule sanitize: <plaintext> and spaces", 200,
     lambda k: entry("<plaintext>a" + " " * k + "b"), "", (), 0),
    ("rule sanitize: style comments", 4000, lambda k: entry('<p style="' + "/*" * k + '">x</p>'),
     "", (), 0),
    ("rule remove: descendant selector", 2000,
     lambda k: entry("<div>" * k + "x" + "</div>" * k),
     '[rules.remove]\nselectors = ["div div div"]\n', (), 0),
    ("rule drop-empty-junk: nested junk", 2000,
     lambda k: entry('<div id="recommend_bottom">' * k + "</div>" * k), "", (), 0),
    ("rule proxy-images: many images", 2000,
     lambda k: entry("".join(f'<img src="http://e.com/{i}.png">' for i in range(k))),
     KEY_CONFIG, ("--image-proxy", "https://feeds.example"), 0),
    ("render: categories and enclosures", 2000,
     lambda k: rss(item(extra="".join(f'<category>c{i}</category><enclosure url="http://e.com/'
                                      f'{i}.mp3" type="audio/mpeg" length="1"/>'
                                      for i in range(k)))), "", (), 0),
]  # fmt: skip


# ---- children ---------------------------------------------------------------------------------


@dataclass
class Row:
    stage: str
    n: int
    small: float | None
    large: float | None
    timed_out: bool
    unit: str = "s"

    @property
    def ratio(self) -> float | None:
        if self.small is None or self.large is None:
            return None
        return self.large / max(self.small, FLOOR)


def scale(stage: str, n: int, cost: Callable[[int], tuple[float, bool]]) -> Row:
    base = min(cost(1)[0], cost(1)[0])
    small, out = cost(n)
    if out:
        return Row(stage, n, small - base, None, True)
    large, out = cost(8 * n)
    return Row(stage, n, max(small - base, 0.0), max(large - base, 0.0), out)


def convert_stages(scratch: Path, timeout: float, only: str) -> list[Row]:
    rows = []
    for name, n, document, config, extra, exit_status in STAGES:
        if only not in name:
            continue
        args = list(extra)
        if config:
            path = scratch / "stage.toml"
            path.write_text(config, "utf-8")
            args = ["--config", str(path), *args]

        def cost(
            k: int,
            document: Callable[[int], bytes] = document,
            args: list[str] = args,
            want: int = exit_status,
            name: str = name,
        ) -> tuple[float, bool]:
            source = scratch / "input.xml"
            source.write_bytes(document(k))
            child = run_feedfix(["convert", str(source), "-o", os.devnull, *args], timeout=timeout)
            if child.returncode is not None and child.returncode != want:
                raise RuntimeError(f"{name}: exit {child.returncode}: {child.err[-300:]}")
            return child.cpu, child.returncode is None

        rows.append(report(scale(name, n, cost)))
    if only in "mend: unclosed tags":

        def mend(k: int) -> tuple[float, bool]:
            folder = Path(tempfile.mkdtemp(dir=scratch))
            (folder / "p.md").write_text(
                f'---\ntitle: t\n---\n<img src="{WRAP}http://e.com/a.png">\n' + "<a " * k + "\n",
                "utf-8",
            )
            child = run_feedfix(["fix-posts", str(folder)], timeout=timeout)
            return child.cpu, child.returncode is None

        rows.append(report(scale("mend: unclosed tags", 2500, mend)))
    return rows


# ---- the service ------------------------------------------------------------------------------


class Serve:
    """One ``feedfix serve`` child on 127.0.0.1 with local-file feeds (no upstream needed)."""

    def __init__(self, scratch: Path, feeds: dict[str, bytes]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        lines = [
            f'[server]\nhost = "127.0.0.1"\nport = {self.port}\n',
            f'[storage]\npath = "{scratch / "bench.db"}"\n',
            "[poll]\njitter = 0\n",
        ]
        for name, data in feeds.items():
            path = scratch / f"{name}.xml"
            path.write_bytes(data)
            lines.append(f'[[feeds]]\nname = "{name}"\npath = "{path}"\ninterval = "1h"\n')
        config = scratch / "bench.toml"
        config.write_text("\n".join(lines), "utf-8")
        self.log = (scratch / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "feedfix", "serve", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if all(self.get(f"/feeds/{name}.atom")[0] == 200 for name in feeds):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("feedfix serve did not serve its feeds within 60 s")

    def get(self, path: str, timeout: float = 120) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            return answer.status, answer.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def post(self, path: str, fields: dict[str, str], timeout: float = 120) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(
                "POST",
                path,
                body=urllib.parse.urlencode(fields),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Origin": f"http://127.0.0.1:{self.port}",
                    "Sec-Fetch-Site": "same-origin",
                },
            )
            answer = conn.getresponse()
            answer.read()
            return answer.status
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def anchors(k: int) -> bytes:
    return entry("<p>x</p>" + "<a " * k)


def timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def service_stages(scratch: Path, only: str) -> list[Row]:
    n = 1500
    serve = Serve(scratch, {f"a{k}": anchors(k) for k in (1, n, 8 * n)})
    rows = []
    try:
        if only in "playground: <a runs":
            page = serve.get("/inspect")[1]
            token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]

            def playground(k: int) -> tuple[float, bool]:
                seconds = timed(
                    lambda: serve.post("/inspect", {"csrf": token, "text": anchors(k).decode()})
                )
                return seconds, False

            rows.append(report(scale("playground: <a runs", n, playground)))
        if only in "inspector: <a runs":

            def inspector(k: int) -> tuple[float, bool]:
                return timed(lambda: serve.get(f"/inspect/a{k}")), False

            rows.append(report(scale("inspector: <a runs", n, inspector)))
        if only in "head parsing: many fields":

            def head(k: int) -> tuple[float, bool]:
                fields = b"".join(b"X-%05d: %s\r\n" % (i, b"v" * 100) for i in range(k))
                data = b"GET /feeds/a1.atom HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"
                best = float("inf")
                for _ in range(5):
                    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        started = time.monotonic()
                        for at in range(0, len(data), 16):
                            sock.sendall(data[at : at + 16])
                        sock.recv(64)
                        best = min(best, time.monotonic() - started)
                return best, False

            rows.append(report(scale("head parsing: many fields", 6, head)))
    finally:
        serve.stop()
    return rows


# ---- memory ----------------------------------------------------------------------------------


@dataclass
class MemoryRow:
    case: str
    input_bytes: int
    peak_bytes: int
    baseline_bytes: int

    @property
    def per_input_byte(self) -> float:
        return (self.peak_bytes - self.baseline_bytes) / self.input_bytes


def memory(scratch: Path, size: int, timeout: float) -> list[MemoryRow]:
    def peak(data: bytes) -> int:
        source = scratch / "memory.xml"
        source.write_bytes(data)
        child = run_feedfix(["convert", str(source), "-o", os.devnull], timeout=timeout)
        if child.returncode != 0:
            raise RuntimeError(f"memory: exit {child.returncode}: {child.err[-300:]}")
        return child.peak_rss

    base = peak(rss(item()))
    one = rss(cdata_entry("<p>x</p>" * (size // 8)))
    many = rss(*(cdata_entry("<p>x</p>" * 250, i) for i in range(size // 2100)))
    rows = [
        MemoryRow("one huge entry", len(one), peak(one), base),
        MemoryRow("many small entries", len(many), peak(many), base),
    ]
    for row in rows:
        print(
            f"memory: {row.case}: {row.input_bytes / 1e6:.1f} MB in, peak "
            f"{row.peak_bytes / 1e6:.0f} MB (baseline {row.baseline_bytes / 1e6:.0f} MB): "
            f"{row.per_input_byte:.1f}x the input",
            file=sys.stderr,
            flush=True,
        )
    return rows


# ---- output ----------------------------------------------------------------------------------


def report(row: Row) -> Row:
    print(
        f"{row.stage}: n={row.n} {fmt(row.small)}, 8n {fmt(row.large, row.timed_out)}, "
        f"ratio {fmt_ratio(row)}",
        file=sys.stderr,
        flush=True,
    )
    return row


def fmt(value: float | None, out: bool = False) -> str:
    return "timed out" if out or value is None else f"{value:.3f} s"


def fmt_ratio(row: Row) -> str:
    if row.timed_out:
        return "timed out"
    ratio = row.ratio
    return "-" if ratio is None else f"{ratio:.1f}"


def table(rows: list[Row], memory_rows: list[MemoryRow]) -> str:
    lines = [
        "| stage | n | cost at n | cost at 8n | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.stage} | {row.n} | {fmt(row.small)} | "
            f"{fmt(row.large, row.timed_out)} | {fmt_ratio(row)} |"
        )
    if memory_rows:
        lines += [
            "",
            "| memory | input | peak RSS | baseline | per input byte |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {m.case} | {m.input_bytes / 1e6:.1f} MB | {m.peak_bytes / 1e6:.0f} MB | "
            f"{m.baseline_bytes / 1e6:.0f} MB | {m.per_input_byte:.1f}x |"
            for m in memory_rows
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="per child (s)")
    parser.add_argument("--only", default="", help="stages whose name contains this")
    parser.add_argument("--no-service", action="store_true", help="skip the service stages")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory cases")
    parser.add_argument("--memory-size", type=int, default=4_000_000, help="bytes of input")
    parser.add_argument("--quick", action="store_true", help="20 s per child, 1 MB of memory")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    args = parser.parse_args()
    timeout = 20.0 if args.quick else args.timeout
    size = 1_000_000 if args.quick else args.memory_size
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as folder:
        scratch = Path(folder)
        rows = convert_stages(scratch, timeout, args.only)
        if not args.no_service:
            rows += service_stages(scratch, args.only)
        memory_rows = [] if args.no_memory or args.only else memory(scratch, size, timeout * 5)
    if args.json:
        print(
            json.dumps(
                {
                    "stages": [asdict(r) | {"ratio": r.ratio} for r in rows],
                    "memory": [
                        asdict(m) | {"per_input_byte": m.per_input_byte} for m in memory_rows
                    ],
                },
                indent=2,
            )
        )
    else:
        print(table(rows, memory_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
