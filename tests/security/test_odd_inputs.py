"""Issue 18, class 7: odd files and malformed values fail cleanly.

A FIFO (or anything else that is not a regular file or a folder) where a feed is expected,
URLs no parser accepts, a ``Range`` header of thousands of digits, the inspector with the
image proxy on, and ``fix-posts --write`` over symlinks that leave the given trees. Each
must end in one line or a plain HTTP answer: never a hang, a traceback or a dropped
connection, and never a write outside what the user named.

``fix-posts --follow-symlinks`` is a proposed flag (the issue's name for it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from security_helpers import (
    ImagesService,
    connect,
    image_origin,
    log_tracebacks,
    one_entry,
    proxied_urls,
    read_response,
    rss,
    rss_item,
    run_feedfix,
)

from service_helpers import Service
from upstream import Upstream, feed

WRAP = "https://cors.zfour.workers.dev/?"
POST = '---\ntitle: t\n---\n<img src="' + WRAP + 'http://e.com/{name}.png">\n'


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _one_clean_line(stderr: str, names: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert names in lines[0], lines[0]


# ---- FIFOs -------------------------------------------------------------------------------------


def test_convert_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    """Attack: ``feedfix convert FIFO`` opened the FIFO and waited for a writer forever.

    Must hold: anything that is not a regular file (or a folder) is refused at once: exit 2
    and one line on stderr naming the input."""
    fifo = _fifo(tmp_path / "feed.xml")
    run = run_feedfix(["convert", str(fifo)], timeout=10)
    assert not run.timed_out, "convert hung on a FIFO"
    assert run.wall < 5
    assert run.returncode == 2, run.err
    _one_clean_line(run.err, str(fifo))


def test_convert_skips_a_fifo_in_a_posts_folder(tmp_path: Path) -> None:
    """Attack: a folder of posts with a FIFO named like a post (``evil.md``) among them.

    Must hold: the folder converts (exit 0) without waiting on the FIFO; the real post is
    in the output."""
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / "real.md").write_text(POST.format(name="real"), "utf-8")
    _fifo(folder / "evil.md")
    run = run_feedfix(["convert", str(folder), "--title", "t", "--link", "http://e.com/"],
                      timeout=10)  # fmt: skip
    assert not run.timed_out, "convert hung on a FIFO in a folder"
    assert run.returncode == 0, run.err
    assert b"http://e.com/real.png" in run.stdout


@pytest.mark.parametrize("write", [False, True], ids=["dry-run", "write"])
def test_fix_posts_refuses_a_fifo(tmp_path: Path, write: bool) -> None:
    """Attack: ``feedfix fix-posts FIFO`` (given by name, or found in a folder) hung.

    Must hold: a FIFO named on the command line is reported in one line (exit 2); one found
    in a folder is skipped like any non-post; the real posts are still mended."""
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / "real.md").write_text(POST.format(name="real"), "utf-8")
    _fifo(folder / "evil.md")
    named = _fifo(tmp_path / "named.md")
    args = ["fix-posts", str(folder), str(named)] + (["--write"] if write else [])
    run = run_feedfix(args, timeout=15)
    assert not run.timed_out, "fix-posts hung on a FIFO"
    assert run.returncode == 2, run.err
    assert "Traceback" not in run.err
    assert [line for line in run.err.splitlines() if str(named) in line], run.err
    if write:
        assert 'http://e.com/real.png"' in (folder / "real.md").read_text("utf-8")
    else:
        assert "http://e.com/real.png" in run.out


def test_a_fifo_feed_path_fails_the_feed_not_the_service(tmp_path: Path) -> None:
    """Attack: a feed's ``path`` is a FIFO: the poll waited forever on it (the feed never
    published or failed), and SIGTERM could not stop the process.

    Must hold: the poll fails at once with a one-line reason (on ``/healthz``) naming the
    problem, the other feed is served, and SIGTERM stops the service within 10 s."""
    fifo = _fifo(tmp_path / "pipe.xml")
    good = tmp_path / "good.xml"
    good.write_bytes(rss(rss_item()))
    feeds = [{"name": "pipe", "path": str(fifo)}, {"name": "good", "path": str(good)}]
    service = Service(tmp_path / "run", feeds)
    with service:
        service.wait_served("good")
        record = service.wait_for_poll("pipe", timeout=10)
        error = str(service.health_row("pipe")["last_error"])
        service.stop(timeout=10)
    assert record["status"] == "error", record
    assert "\n" not in error and error, error


# ---- malformed URLs ------------------------------------------------------------------------------

MALFORMED = [
    "http://[::1/x.png",  # the campaign's: an unclosed bracket
    "http://[::ｆｆｆｆ:127.0.0.1]/x.png",  # full-width hex in a bracketed host
    "http://[127.0.0.1]/x.png",  # an IPv4 address in brackets
    "http://e.com:99999/x.png",  # a port out of range
    "http://e.com:-1/x.png",
    "http://[v1.x]/x.png",  # an IPvFuture literal
    "http://xn--/x.png",  # an empty punycode label
    "http://" + "a" * 300 + ".com/x.png",  # a label past 63 characters
]


def _malformed_entry() -> bytes:
    images = "".join(f'<img src="{url}">' for url in MALFORMED)
    return rss(rss_item(images, n=1), rss_item('<img src="http://e.com/fine.png">', n=2))


@pytest.mark.parametrize("proxy", ["off", "http"])
def test_convert_leaves_malformed_urls_alone(tmp_path: Path, proxy: str) -> None:
    """Attack: ``<img src="http://[::1/x.png">`` and other URLs that ``urlsplit`` or IDNA
    refuse, in an entry converted with the image proxy on or off.

    Must hold: exit 0, both entries published, the malformed URLs left as they are or
    dropped (counted), no traceback."""
    source = tmp_path / "in.xml"
    source.write_bytes(_malformed_entry())
    args = ["convert", str(source), "--explain"]
    if proxy != "off":
        config = tmp_path / "c.toml"
        config.write_text(
            '[server]\nbase_url = "https://feeds.example"\n'
            f'[images]\nproxy = "{proxy}"\nkey = "{"k" * 40}"\n',
            "utf-8",
        )
        args += ["--config", str(config), "--image-proxy", "https://feeds.example"]
    run = run_feedfix(args, timeout=30)
    assert run.returncode == 0, run.err[-2000:]
    assert "Traceback" not in run.err
    assert run.stdout.count(b"<entry>") == 2


def test_a_malformed_image_url_does_not_crash_the_poll(tmp_path: Path) -> None:
    """Attack: the same entry in an upstream feed with ``[images] proxy = "http"``: "poll
    crashed" with a traceback at every poll, and the feed never published.

    Must hold: the feed is published with both entries; no "poll crashed", no traceback."""
    with Upstream() as upstream:
        upstream.script("/m.xml", feed(_malformed_entry()))
        service = ImagesService(tmp_path, [{"name": "m", "url": upstream.url("/m.xml")}],
                                {"proxy": "http"})  # fmt: skip
        with service:
            try:
                atom = service.wait_served("m", timeout=15).body
            finally:
                crashes = service.events("poll crashed")
                tracebacks = log_tracebacks(service)
    assert not crashes, crashes[0].get("error")
    assert not tracebacks, tracebacks[:1]
    assert atom.count(b"<entry>") == 2


# ---- Range, and the inspector with the proxy on ------------------------------------------------


def test_a_range_of_thousands_of_digits_is_a_plain_answer(tmp_path: Path) -> None:
    """Attack: ``Range: bytes=<5,000 digits>-`` on a cached image: ``int()`` refuses a
    number of more than 4,300 digits, so the fast path logged a traceback and dropped the
    connection, and aiohttp's path answered 500.

    Must hold: 416 (or 200, ignoring the header) on both paths, the connection kept alive
    (a second request on it is answered), and no traceback or error in the log."""
    digits = "9" * 5000
    ranges = [f"bytes={digits}-", f"bytes=-{digits}", f"bytes=0-{digits}", f"bytes={digits}-1"]
    with image_origin() as origin, Upstream() as upstream:
        upstream.script("/p.xml", feed(one_entry(f'<img src="{origin.url("/plain/a.png")}">')))
        service = ImagesService(tmp_path, [{"name": "p", "url": upstream.url("/p.xml")}],
                                {"proxy": "all", "allow_private": ["127.0.0.1"]})  # fmt: skip
        with service:
            (path,) = proxied_urls(service.wait_served("p").body)
            assert service.get(path, timeout=15).status == 200  # fetched and cached
            time.sleep(0.3)
            answers = []
            for value in ranges:
                # the fast path (a plain head), then aiohttp's (a repeated field sends it there)
                for extra in ("", "X-A: 1\r\nX-A: 2\r\n"):
                    sock = connect(service.port, timeout=10)
                    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: {value}\r\n{extra}\r\n"
                    try:
                        sock.sendall(head.encode())
                        first = read_response(sock)[0]
                        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                        got: object = (first, read_response(sock)[0])
                    except (ConnectionError, TimeoutError) as exc:
                        got = repr(exc)
                    finally:
                        sock.close()
                    answers.append((value[:12] + "…", "aiohttp" if extra else "fast path", got))
            tracebacks = log_tracebacks(service)
    wrong = [a for a in answers if a[2] not in ((416, 200), (200, 200))]
    assert not wrong, f"(range, path, answers): {wrong}"
    assert not tracebacks, tracebacks[:1]


def test_the_inspector_works_with_the_image_proxy_on(tmp_path: Path) -> None:
    """Attack (a plain bug any reader of the pages hits): ``/inspect/NAME`` answered 500
    (``KeyError: 'proxy-images'``) whenever ``[images] proxy`` was on.

    Must hold: 200, with the entries shown, for each proxy mode."""
    with Upstream() as upstream:
        upstream.script("/p.xml", feed(one_entry('<img src="http://e.com/a.png">')))
        for mode in ("http", "all"):
            service = ImagesService(tmp_path / mode, [{"name": "p", "url": upstream.url("/p.xml")}],
                                    {"proxy": mode})  # fmt: skip
            with service:
                service.wait_served("p")
                answer = service.get("/inspect/p")
                tracebacks = log_tracebacks(service)
            assert answer.status == 200, (mode, answer.body[-300:])
            assert not tracebacks, tracebacks[:1]


# ---- fix-posts and symlinks ----------------------------------------------------------------------


def _symlinked_trees(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A tree to mend, with a link to a file outside it, a link to a folder outside it and a
    link to a file inside it; returns the tree and the files by role."""
    tree, outside = tmp_path / "site", tmp_path / "elsewhere"
    (tree / "sub").mkdir(parents=True)
    (outside / "dir").mkdir(parents=True)
    files = {
        "own": tree / "own.md",
        "inside target": tree / "sub" / "target.md",
        "outside file": outside / "secret.md",
        "outside dir file": outside / "dir" / "other.md",
    }
    for role, path in files.items():
        path.write_text(POST.format(name=role.replace(" ", "-")), "utf-8")
    (tree / "inside-link.md").symlink_to(files["inside target"])
    (tree / "outside-link.md").symlink_to(files["outside file"])
    (tree / "outside-dir").symlink_to(outside / "dir", target_is_directory=True)
    return tree, files


def test_fix_posts_does_not_write_through_links_that_leave_the_tree(tmp_path: Path) -> None:
    """Attack: ``fix-posts --write site/`` where ``site/`` holds a symlink to a file and one
    to a folder outside it (a shared checkout, a hostile archive): both outside files were
    rewritten.

    Must hold: links inside the given trees are still followed (their target is mended);
    a link that leaves them is reported (its name on stderr) and left alone, unless the
    proposed ``--follow-symlinks`` is given, which mends them too."""
    tree, files = _symlinked_trees(tmp_path)
    before = {role: path.read_bytes() for role, path in files.items()}
    run = run_feedfix(["fix-posts", "--write", str(tree)], timeout=30)
    assert "Traceback" not in run.err
    changed = {role for role, path in files.items() if path.read_bytes() != before[role]}
    assert changed == {"own", "inside target"}, f"rewritten: {sorted(changed)}"
    assert "outside-link.md" in run.err and "outside-dir" in run.err, run.err
    followed = run_feedfix(["fix-posts", "--write", "--follow-symlinks", str(tree)], timeout=30)
    assert followed.returncode == 0, followed.err
    changed = {role for role, path in files.items() if path.read_bytes() != before[role]}
    assert changed == set(files), f"with --follow-symlinks, rewritten: {sorted(changed)}"
