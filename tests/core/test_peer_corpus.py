"""feedfix over other parsers' own test feeds: thousands of odd, old and broken real shapes.

feedparser's source distribution ships its test suite: about 2,242 small feeds under
``tests/`` (wellformed, illformed, encoding, entities, http…); podcastparser's (70 podcast
feeds) and lemon24/reader's (6) ship theirs too. Each sdist is fetched once with
``pip download --no-binary :all: --no-deps`` into ``~/.cache/feedfix-tests/`` (or
``$FEEDFIX_TEST_CACHE``) and unpacked there. Every feed-looking file goes through
``convert()`` in a pool of two worker processes with a per-file time limit; anything raised
that is not a ``FeedfixError`` is a traceback, anything slower than the limit is a hang. Every
output must be schema-valid Atom whose ids are all IRIs (RFC 3987, checked with the rfc3987
package) with no entry id twice, and an input that lxml parses without error must never be
reported as "not well-formed". A spread-out sample also goes through the real command line.
The test skips when PyPI cannot be reached, unless ``FEEDFIX_REQUIRE_NETWORK=1``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest
import rfc3987  # type: ignore[import-untyped]
from lxml import etree

from atomcheck import NS, assert_valid_atom, run_feedfix, stderr_text
from peers import OTHER_SDISTS, feed_files, feedparser_tests_dir, sdist_tests_dir

PER_FILE_SECONDS = 10
TOTAL_SECONDS = 600
WORKERS = 2
CLI_SAMPLE = 100
MIN_CONVERTED_SHARE = 0.95


# ---- in-process, in worker processes ----------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    """What convert() did with one file."""

    path: str
    status: str  # "ok", "error" (a FeedfixError), "traceback", "hang", or a failed check:
    # "invalid" (bad Atom), "bad-id" (not an IRI), "duplicate-id", "false-damage"
    detail: str
    seconds: float
    feed_id: str = ""  # of a converted file, to find different feeds that share a made-up id
    output: str = ""  # a digest of the output without its feed id


FAILED_CHECKS = ("invalid", "bad-id", "duplicate-id", "false-damage")
_STRICT_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def lxml_reads(data: bytes) -> bool:
    """True when lxml parses the bytes as they are, without recovering from any error."""
    try:
        etree.fromstring(data, _STRICT_XML)
    except etree.XMLSyntaxError:
        return False
    return True


def output_problem(data: bytes, atom: bytes, warnings: tuple[str, ...]) -> tuple[str, str]:
    """The first check an output fails, as ``(status, detail)``; ``("ok", "")`` if none."""
    try:
        root = assert_valid_atom(atom)
    except AssertionError as exc:
        return "invalid", str(exc)[:500]
    ids = [(el.text or "").strip() for el in root.iterfind("a:id", NS)]
    entry_ids = [(el.text or "").strip() for el in root.iterfind("a:entry/a:id", NS)]
    bad = [i for i in ids + entry_ids if rfc3987.match(i, rule="IRI") is None]
    if bad:
        return "bad-id", repr(bad[:3])
    repeated = sorted({i for i in entry_ids if entry_ids.count(i) > 1})
    if repeated:
        return "duplicate-id", repr(repeated[:3])
    damage = [w for w in warnings if "not well-formed" in w]
    if damage and lxml_reads(data):
        return "false-damage", damage[0][:300]
    return "ok", ""


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


def convert_one(path: str) -> FileResult:
    """Convert one file in this (worker) process; never raises."""
    from feedfix.core.errors import FeedfixError  # noqa: PLC0415 - imported in the worker
    from feedfix.core.pipeline import convert  # noqa: PLC0415

    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, PER_FILE_SECONDS)
    started = time.monotonic()
    feed_id = output = ""
    try:
        data = Path(path).read_bytes()
        result = convert(data, path)
        feed_id = result.feed.id or ""
        output = hashlib.sha256(result.atom.replace(feed_id.encode(), b"")).hexdigest()
        status, detail = output_problem(data, result.atom, result.warnings)
    except _Timeout:
        status, detail = "hang", f"over {PER_FILE_SECONDS}s"
    except FeedfixError as exc:
        status, detail = "error", str(exc)[:200]
    except BaseException as exc:
        status, detail = "traceback", f"{type(exc).__name__}: {exc}"[:500]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.monotonic() - started
    if seconds > PER_FILE_SECONDS and status != "hang":
        status, detail = "hang", f"took {seconds:.1f}s"
    return FileResult(path, status, detail, seconds, feed_id, output)


def convert_all(paths: list[Path]) -> list[FileResult]:
    """Every file through convert() in a pool; files left when time runs out count as hangs."""
    context = multiprocessing.get_context("spawn")  # no fork of a threaded pytest process
    results: dict[str, FileResult] = {}
    deadline = time.monotonic() + TOTAL_SECONDS
    with context.Pool(WORKERS, maxtasksperchild=500) as pool:
        # chunksize 1, so that the iterator has next(timeout)
        pending = pool.imap_unordered(convert_one, [str(p) for p in paths])
        try:
            while len(results) < len(paths):
                item = pending.next(timeout=max(1.0, deadline - time.monotonic()))
                results[item.path] = item
        except multiprocessing.TimeoutError:
            pool.terminate()
    for path in map(str, paths):
        results.setdefault(path, FileResult(path, "hang", "not done in time", TOTAL_SECONDS))
    return [results[str(p)] for p in paths]


# ---- the test ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> tuple[Path, list[Path]]:
    """The feedparser tests folder and its feed files."""
    root = feedparser_tests_dir()
    files = feed_files(root)
    assert len(files) > 2000, f"only {len(files)} feed files under {root}"
    return root, files


def summarise(name: str, results: list[FileResult], elapsed: float) -> tuple[Counter[str], str]:
    """The counts by status and the line the test prints (and fails with)."""
    counts = Counter(r.status for r in results)
    made_up: dict[str, set[str]] = {}
    for r in results:
        if r.feed_id.startswith("urn:feedfix:feed:"):
            made_up.setdefault(r.feed_id, set()).add(r.output)
    # one made-up id for two files is right only when they are the same feed (same output)
    clashes = [outputs for outputs in made_up.values() if len(outputs) > 1]
    counts["shared-feed-id"] = sum(map(len, clashes))
    converted = sum(counts[s] for s in ("ok", *FAILED_CHECKS))
    checks = ", ".join(f"{counts[s]} {s}" for s in FAILED_CHECKS)
    line = (
        f"{name}: {len(results)} files, converted {converted}, {counts['traceback']} "
        f"tracebacks, {counts['hang']} hangs, {checks}, {counts['error']} refused, "
        f"{counts['shared-feed-id']} different feeds sharing {len(clashes)} of "
        f"{len(made_up)} made-up feed ids "
        f"({elapsed:.0f}s)"
    )
    return counts, line


def _in_illformed(root: Path, path: Path | str) -> bool:
    return "illformed" in Path(path).relative_to(root).parts


def test_feedparser_corpus_in_process(corpus: tuple[Path, list[Path]]) -> None:
    """Every file: no traceback, no hang, valid Atom; 95% outside illformed/ convert."""
    root, files = corpus
    started = time.monotonic()
    results = convert_all(files)
    counts, line = summarise("feedparser corpus", results, time.monotonic() - started)
    outside = [r for r in results if not _in_illformed(root, r.path)]
    converted_outside = sum(1 for r in outside if r.status in {"ok", *FAILED_CHECKS})
    share = converted_outside / len(outside)
    line += f"; {share:.1%} converted outside illformed/"
    print(line)
    for result in results:
        if result.status in {"traceback", "hang", *FAILED_CHECKS}:
            print(f"  {result.status}: {Path(result.path).relative_to(root)}: {result.detail}")
    for status in ("traceback", "hang", *FAILED_CHECKS, "shared-feed-id"):
        assert counts[status] == 0, line
    assert share >= MIN_CONVERTED_SHARE, line


@pytest.mark.parametrize("spec", OTHER_SDISTS)
def test_other_parsers_test_feeds_in_process(spec: str) -> None:
    """podcastparser's and reader's test feeds: the same checks, and every file converts
    (none of them is meant to be broken)."""
    root = sdist_tests_dir(spec)
    files = feed_files(root)
    assert files, f"no feed files under {root}"
    started = time.monotonic()
    results = convert_all(files)
    counts, line = summarise(spec, results, time.monotonic() - started)
    print(line)
    for result in results:
        if result.status != "ok":
            print(f"  {result.status}: {Path(result.path).relative_to(root)}: {result.detail}")
    assert counts["ok"] == len(files), line
    assert counts["shared-feed-id"] == 0, line


def test_feedparser_corpus_through_the_cli(corpus: tuple[Path, list[Path]]) -> None:
    """A spread-out sample through ``python -m feedfix convert``: exit 0/2, never a traceback."""
    root, files = corpus
    step = max(1, len(files) // CLI_SAMPLE)
    sample = files[::step][:CLI_SAMPLE]

    def run(path: Path) -> tuple[Path, subprocess.CompletedProcess[bytes]]:
        return path, run_feedfix("convert", path, timeout=60)

    problems = []
    with ThreadPoolExecutor(WORKERS) as workers:
        outcomes = list(workers.map(run, sample))
    codes = Counter(result.returncode for _, result in outcomes)
    for path, result in outcomes:
        name = str(path.relative_to(root))
        err = stderr_text(result)
        if result.returncode not in (0, 2) or "Traceback" in err:
            problems.append(f"{name}: exit {result.returncode}: {err[-300:]!r}")
        elif result.returncode == 2 and len(err.splitlines()) != 1:
            problems.append(f"{name}: exit 2 with {len(err.splitlines())} stderr lines")
        elif result.returncode == 0:
            try:
                assert_valid_atom(result.stdout)
            except AssertionError as exc:
                problems.append(f"{name}: invalid Atom: {str(exc)[:200]}")
    print(f"feedparser corpus via CLI: {len(sample)} files, exit codes {dict(codes)}")
    assert not problems, "\n".join(problems)


# ---- offline regressions for what the corpus found --------------------------------------------


@pytest.mark.parametrize("lang", ["en_US", "English (US)", "zh_CN"])
def test_unusual_language_tag_still_gives_valid_atom(lang: str) -> None:
    """An RSS <language> that is not an RFC 3066 tag (feedparser's lang/*underscore*.xml).

    Atom's grammar only allows ``[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*`` in ``xml:lang``; copying
    ``en_US`` verbatim makes the whole feed invalid.
    """
    from feedfix.core.pipeline import convert  # noqa: PLC0415

    rss = (
        '<rss version="2.0"><channel><title>t</title><link>https://l.example.org/</link>'
        f"<language>{lang}</language><item><title>i</title><guid>https://l.example.org/1</guid>"
        "<description>d</description></item></channel></rss>"
    )
    assert_valid_atom(convert(rss.encode()).atom)
    atom03 = f'<feed version="0.3" xmlns="http://purl.org/atom/ns#" xml:lang="{lang}"></feed>'
    assert_valid_atom(convert(atom03.encode()).atom)
