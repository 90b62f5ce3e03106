"""`feedfix serve` end to end: a real subprocess polling a scripted upstream over real HTTP.

The service is started exactly as a user starts it (`python -m feedfix serve --config FILE`),
with a temp config, a free port and a SQLite file, and stopped with SIGTERM (exit 0 asserted).
The upstream is tests/upstream.py, an aiohttp server in a thread whose answers change between
polls. Expectations come from the generated ZAKER fixture (titles, links, origin image URLs),
never from feedfix's own output. Intervals are 1 s with no jitter, so waits are short and
bounded: every wait polls a condition against a deadline.

Most tests share one service (module scope) with a feed per scenario; the ones that restart,
reload or kill the process start their own.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from prometheus_client.parser import text_string_to_metric_families

import upstream as up
from atomcheck import (
    REPO,
    WRAPPER_RE,
    assert_feedfix_conventions,
    assert_valid_atom,
    entries,
    img_srcs,
    served_titles,
)
from formats import CONTENT_TYPES, FORMATS, shown
from service_helpers import TEST_POLL, Response, Service, run_cli, wait_for
from upstream import titles

USER_AGENT = "feedfix-test/1.0 (+https://feedfix.invalid/tests)"
EXTRA_HEADERS = {"Referer": "https://www.myzaker.com/", "X-Feedfix-Test": "yes"}
NEVER_AGENT = "never-agent/2.0"
FAIL_TIMEOUT = 1.0
MAX_SIZE = "64KB"
ROTATE_KEEP = 6

# Each failure kind has its own feed in the shared service, served from /fail/{kind}.
FAILURES: dict[str, Callable[[], up.Reply]] = {
    "http-500": lambda: up.error(500),
    "http-502": lambda: up.error(502),
    "http-503": lambda: up.error(503),
    "http-504": lambda: up.error(504),
    "html-page-200": up.html_error_page,
    "truncated-xml": lambda: up.truncated(up.zaker_rss(range(1, 9))),
    "oversize-declared": lambda: up.oversize(300_000),
    "oversize-streamed": lambda: up.oversize(300_000, chunked=True),
    "hang-after-headers": lambda: up.hang(30),
    "slow-headers": lambda: up.slow(up.feed(up.zaker_rss(range(1, 9))), 5),
}
FAIL_START = range(1, 5)  # the window each failure feed serves before its failure
FAIL_RECOVER = range(1, 6)  # ... and after it recovers: one new item


# ---- helpers --------------------------------------------------------------------------------


def assert_clean_feed(body: bytes, numbers: Iterable[int], fmt: str = "atom") -> None:
    """Valid in its format with exactly the items ``numbers`` (newest first), origin images,
    no junk."""
    text = body.decode("utf-8")
    wrapped = WRAPPER_RE.search(text)
    assert wrapped is None, f"a wrapper host survived: ...{text[wrapped.start() - 80 :][:200]}"
    if fmt == "atom":
        assert_feedfix_conventions(assert_valid_atom(body))
    got = shown(fmt, body)
    items = up.zaker_items(numbers)
    assert [e.title for e in got] == [i.title for i in items]
    for entry, item in zip(got, items, strict=True):
        assert entry.link == item.link
        assert img_srcs(entry.html) == list(item.images), f"images of {item.title}"
        for junk in ("onclick", "opacity_0", "recommend_bottom", "article_bottom"):
            assert junk not in entry.html, f"{junk!r} left in {item.title}"


def http_date_of(value: str | None) -> float:
    """Epoch seconds of an HTTP date header (asserting it is one)."""
    assert value, "expected an HTTP date header"
    return parsedate_to_datetime(value).timestamp()


@pytest.fixture
def upstream() -> Iterator[up.Upstream]:
    """A fresh scripted upstream for one test."""
    with up.Upstream() as server:
        yield server


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    """Where a test's own service keeps its config, database and logs."""
    return tmp_path / "service"


# ---- the shared service ---------------------------------------------------------------------


@dataclass
class Shared:
    """The module's service and the upstream all its feeds poll."""

    svc: Service
    upstream: up.Upstream


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One service with a feed per scenario, all polled every second."""
    with up.Upstream() as server:
        zaker = up.zaker_rss(range(1, 9))
        server.script("/zaker", up.feed(zaker))
        server.script("/never", up.error(500))
        server.script("/moved", up.redirect("/moved-here"))
        server.script("/moved-here", up.feed(up.zaker_rss(range(20, 24))))
        server.script("/gz", up.gzipped(up.zaker_rss(range(30, 36))))
        server.script("/slow-ok", up.slow(up.feed(up.zaker_rss(range(40, 43))), 0.5))
        server.script("/limited", up.feed(up.zaker_rss(range(50, 53))))
        server.script("/rotate", up.feed(up.zaker_rss(range(1, 5))))
        server.script("/limit3", up.feed(up.zaker_rss(range(1, 6))))
        feeds: list[dict[str, Any]] = [
            {"name": "zaker", "url": server.url("/zaker"), "interval": 1,
             "headers": EXTRA_HEADERS},
            {"name": "never", "url": server.url("/never"), "interval": 1,
             "user_agent": NEVER_AGENT},
            {"name": "moved", "url": server.url("/moved"), "interval": 1},
            {"name": "gz", "url": server.url("/gz"), "interval": 1},
            {"name": "slow-ok", "url": server.url("/slow-ok"), "interval": 1},
            {"name": "limited", "url": server.url("/limited"), "interval": 1},
            {"name": "rotate", "url": server.url("/rotate"), "interval": 1,
             "keep_entries": ROTATE_KEEP},
            {"name": "limit3", "url": server.url("/limit3"), "interval": 1,
             "rules": {"limit": {"count": 3}}},
        ]  # fmt: skip
        for kind in FAILURES:
            for fmt in FORMATS:  # a feed each: a failure's test starts from a feed it has not seen
                server.script(f"/fail/{kind}/{fmt}", up.feed(up.zaker_rss(FAIL_START)))
                feeds.append(
                    {"name": f"fail-{kind}-{fmt}", "url": server.url(f"/fail/{kind}/{fmt}"),
                     "interval": 1, "timeout": FAIL_TIMEOUT, "max_size": MAX_SIZE}
                )  # fmt: skip
        # max_backoff 4 s: short, yet longer than the 3 s Retry-After the 429 test sends.
        poll = {**TEST_POLL, "user_agent": USER_AGENT, "max_backoff": "4s"}
        svc = Service(tmp_path_factory.mktemp("shared"), feeds, poll=poll)
        try:
            svc.start()
            for row in feeds:
                if row["name"] != "never":
                    svc.wait_served(row["name"])
            yield Shared(svc, server)
            svc.stop()
        finally:
            svc.close()


# ---- serving the feed: validity, validators, conditional requests, gzip, HEAD ----------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_served_feed_is_valid_and_clean_with_every_entry(shared: Shared, fmt: str) -> None:
    """The published feed is valid (Atom, RSS 2.0, JSON Feed), has every upstream item with its
    origin images, and no wrapper host, lazy-load junk or empty trailer is left."""
    answer = shared.svc.feed("zaker", fmt=fmt)
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").startswith(CONTENT_TYPES[fmt])
    assert_clean_feed(answer.body, range(1, 9), fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_feed_response_has_validators_and_cache_control(shared: Shared, fmt: str) -> None:
    """A strong ETag, a Last-Modified date in the past, and Cache-Control with max-age."""
    answer = shared.svc.feed("zaker", fmt=fmt)
    etag = answer.header("ETag") or ""
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2, f"ETag {etag!r}"
    assert http_date_of(answer.header("Last-Modified")) <= time.time() + 1
    cache = answer.header("Cache-Control") or ""
    assert "max-age=" in cache, f"Cache-Control {cache!r}"
    assert int(cache.split("max-age=")[1].split(",")[0]) >= 0
    assert answer.header("X-Feedfix-Stale") is None, "a healthy feed must not be marked stale"


@pytest.mark.parametrize("fmt", FORMATS)
def test_if_none_match_gets_304_without_body(shared: Shared, fmt: str) -> None:
    """A matching If-None-Match is answered 304 with no body and the same ETag; another ETag
    gets the full feed."""
    first = shared.svc.feed("zaker", fmt=fmt)
    etag = first.header("ETag") or ""
    again = shared.svc.feed("zaker", {"If-None-Match": etag}, fmt)
    assert again.status == 304
    assert again.body == b""
    assert again.header("ETag") == etag
    listed = shared.svc.feed("zaker", {"If-None-Match": f'"other", {etag}'}, fmt)
    assert listed.status == 304
    other = shared.svc.feed("zaker", {"If-None-Match": '"not-the-etag"'}, fmt)
    assert other.status == 200
    assert other.body == first.body


@pytest.mark.parametrize("fmt", FORMATS)
def test_if_modified_since_gets_304(shared: Shared, fmt: str) -> None:
    """If-Modified-Since at or after Last-Modified gives 304; an earlier date the feed; and it
    is ignored when an If-None-Match does not match (RFC 9110 13.1.3)."""
    first = shared.svc.feed("zaker", fmt=fmt)
    modified = first.header("Last-Modified") or ""
    same = shared.svc.feed("zaker", {"If-Modified-Since": modified}, fmt)
    assert same.status == 304
    assert same.body == b""
    later = formatdate(http_date_of(modified) + 3600, usegmt=True)
    assert shared.svc.feed("zaker", {"If-Modified-Since": later}, fmt).status == 304
    earlier = formatdate(http_date_of(modified) - 3600, usegmt=True)
    old = shared.svc.feed("zaker", {"If-Modified-Since": earlier}, fmt)
    assert old.status == 200
    assert old.body == first.body
    mixed = shared.svc.feed("zaker", {"If-Modified-Since": modified, "If-None-Match": '"x"'}, fmt)
    assert mixed.status == 200


@pytest.mark.parametrize("fmt", FORMATS)
def test_gzip_when_asked(shared: Shared, fmt: str) -> None:
    """Accept-Encoding: gzip gets a gzip body that decompresses to the identity bytes, with
    Vary and an ETag of its own that also answers 304."""
    plain = shared.svc.feed("zaker", fmt=fmt)
    packed = shared.svc.feed("zaker", {"Accept-Encoding": "gzip, deflate"}, fmt)
    assert packed.status == 200
    assert packed.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in (packed.header("Vary") or "")
    assert packed.body != plain.body
    assert gzip.decompress(packed.body) == plain.body
    assert packed.header("ETag") != plain.header("ETag"), "one strong ETag per representation"
    cached = shared.svc.feed(
        "zaker", {"Accept-Encoding": "gzip", "If-None-Match": packed.header("ETag") or ""}, fmt
    )
    assert cached.status == 304
    assert plain.header("Content-Encoding") is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_gzip_refused_with_q_zero_gets_identity(shared: Shared, fmt: str) -> None:
    """`gzip;q=0` means gzip is not acceptable (RFC 9110 12.5.3): the body is sent as is."""
    plain = shared.svc.feed("zaker", fmt=fmt)
    for accept in ("gzip;q=0", "identity, gzip;q=0", "gzip; q=0.0"):
        answer = shared.svc.feed("zaker", {"Accept-Encoding": accept}, fmt)
        assert answer.status == 200
        assert answer.header("Content-Encoding") is None, f"gzip sent for {accept!r}"
        assert answer.body == plain.body


@pytest.mark.parametrize("fmt", FORMATS)
def test_head_has_headers_and_no_body(shared: Shared, fmt: str) -> None:
    """HEAD answers like GET without the body."""
    got = shared.svc.feed("zaker", fmt=fmt)
    head = shared.svc.get(f"/feeds/zaker.{fmt}", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    for name in ("ETag", "Last-Modified", "Cache-Control", "Content-Type"):
        assert head.header(name) == got.header(name), name
    length = head.header("Content-Length")
    assert length is None or int(length) == len(got.body)


def test_unknown_feed_is_404(shared: Shared) -> None:
    """A name that is not configured is a 404, whatever the extension, and so is an extension
    that is no format (``/feeds/zaker`` itself is the feed's HTML page: test_web.py)."""
    paths = ("/feeds/nope.atom", "/feeds/nope.rss", "/feeds/nope.json", "/feeds/zaker.xml",
             "/feeds/nope", "/feeds/.atom", "/feeds/.rss")  # fmt: skip
    for path in paths:
        assert shared.svc.get(path).status == 404, path


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/../etc/passwd",
        "/feeds/../../../../etc/passwd",
        "/feeds/..%2f..%2f..%2fetc%2fpasswd",
        "/feeds/..%2f..%2f..%2fetc%2fpasswd.atom",
        "/feeds/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/feeds/%2e%2e%2f%2e%2e%2fetc%2fpasswd.atom",
        "/feeds/..%252f..%252fetc%252fpasswd.atom",
        "/feeds/..%5c..%5cetc%5cpasswd.atom",
        "/feeds/....//....//etc/passwd",
        "/feeds/zaker.atom/../../../etc/passwd",
        "/feeds/%2fetc%2fpasswd.atom",
        "/feeds//etc/passwd",
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/feeds/zaker.atom%00.txt",
    ],
)
def test_path_traversal_is_404(shared: Shared, path: str) -> None:
    """Traversal attempts, plain or encoded, are 404: never a 200, never a file's contents."""
    answer = shared.svc.get(path)
    assert answer.status == 404, f"{path} answered {answer.status}"
    assert b"root:" not in answer.body


def test_feed_that_never_worked_is_503(shared: Shared) -> None:
    """An upstream that has never worked gives 503 (with Retry-After), and /healthz says why."""
    shared.svc.wait_for_poll("never", status="error")
    answer = shared.svc.feed("never")
    assert answer.status == 503
    assert answer.header("Retry-After")
    row = shared.svc.health_row("never")
    assert row["ok"] is False
    assert row["stale"] is False
    assert row["last_success"] is None
    assert "500" in (row["last_error"] or "")


# ---- the poller as an HTTP client -----------------------------------------------------------


def test_second_poll_is_conditional_and_304_changes_nothing(shared: Shared) -> None:
    """Once the upstream has sent an ETag and Last-Modified, the next polls send them back; a
    304 leaves the served bytes and ETag as they were and is logged as not_modified."""
    requests = shared.upstream.wait_for_requests("/zaker", 2)
    first, second = requests[0], requests[1]
    assert first.header("If-None-Match") is None
    assert first.header("If-Modified-Since") is None
    assert first.status == 200
    assert second.header("If-None-Match") == up.strong_etag(up.zaker_rss(range(1, 9)))
    assert second.header("If-Modified-Since") == up.UPSTREAM_LAST_MODIFIED
    assert second.status == 304
    before = shared.svc.feed("zaker")
    seen = len(shared.svc.polls("zaker"))
    record = shared.svc.wait_for_poll("zaker", after=seen)
    assert record["status"] == "not_modified"
    assert record["http"] == 304
    assert record["changed"] is False
    after = shared.svc.feed("zaker")
    assert after.header("ETag") == before.header("ETag")
    assert after.body == before.body
    assert after.header("Last-Modified") == before.header("Last-Modified")


def test_user_agent_and_extra_headers_reach_upstream(shared: Shared) -> None:
    """[poll] user_agent and a feed's headers are sent on every poll; a feed's own user_agent
    overrides the default."""
    for request in shared.upstream.wait_for_requests("/zaker", 2):
        assert request.header("User-Agent") == USER_AGENT
        for name, value in EXTRA_HEADERS.items():
            assert request.header(name) == value, name
        assert "gzip" in (request.header("Accept-Encoding") or "")
    for request in shared.upstream.wait_for_requests("/never", 1, answered=False):
        assert request.header("User-Agent") == NEVER_AGENT
        assert request.header("Referer") is None


def test_gzip_encoded_upstream_is_read(shared: Shared) -> None:
    """A gzip-encoded upstream body is decompressed and published whole."""
    assert_clean_feed(shared.svc.feed("gz").body, range(30, 36))
    assert shared.upstream.requests_for("/gz")[0].status == 200


def test_redirected_upstream_is_followed_and_reported(shared: Shared) -> None:
    """A 301 is followed; the feed is published and the index reports the permanent move."""
    assert_clean_feed(shared.svc.feed("moved").body, range(20, 24))
    assert shared.upstream.requests_for("/moved-here"), "the redirect target was never asked"
    rows = {r["name"]: r for r in shared.svc.get("/?format=json").json()["feeds"]}
    assert rows["moved"]["permanent_redirect"] == shared.upstream.url("/moved-here")


def test_slow_upstream_within_timeout_is_fine(shared: Shared) -> None:
    """An upstream that takes 0.5 s before its headers (timeout 2 s) is published normally."""
    assert_clean_feed(shared.svc.feed("slow-ok").body, range(40, 43))
    assert shared.svc.health_row("slow-ok")["ok"] is True


# ---- failures never replace the last good output ---------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", list(FAILURES))
def test_failure_keeps_last_good_copy_then_recovers(shared: Shared, kind: str, fmt: str) -> None:
    """A failed poll (5xx, an HTML page with 200, truncated XML, an oversize body, a hang or
    slow headers past the timeout) leaves the served bytes identical, adds X-Feedfix-Stale and
    makes /healthz say ok=false, stale=true with the error; once the upstream recovers the feed
    updates within about one interval and the stale marker goes away. In every format: each
    keeps its bytes and ETag while stale, and renders the recovered feed anew."""
    svc, name, path = shared.svc, f"fail-{kind}-{fmt}", f"/fail/{kind}/{fmt}"
    good = svc.feed(name, fmt=fmt)
    assert good.status == 200
    assert_clean_feed(good.body, FAIL_START, fmt)
    seen = len(svc.polls(name))
    broke_at = time.time()
    shared.upstream.script(path, FAILURES[kind]())
    try:
        record = svc.wait_for_poll(name, after=seen, status="error", timeout=FAIL_TIMEOUT + 5)
        assert record["error"], record
        stale = svc.feed(name, fmt=fmt)
        assert stale.status == 200
        assert stale.body == good.body, "a failed poll changed the served bytes"
        assert stale.header("ETag") == good.header("ETag")
        since = http_date_of(stale.header("X-Feedfix-Stale"))
        assert broke_at - 2 <= since <= time.time() + 1
        row = svc.health_row(name)
        assert (row["ok"], row["stale"]) == (False, True), row
        assert row["last_error"], row
    finally:
        fixed_at = time.monotonic()
        shared.upstream.script(path, up.feed(up.zaker_rss(FAIL_RECOVER)))

    def updated() -> Response | None:
        answer = svc.feed(name, fmt=fmt)
        return answer if answer.body != good.body else None

    fresh = wait_for(updated, 6, f"{name} to update after the upstream recovered")
    assert time.monotonic() - fixed_at < 6
    assert fresh.status == 200
    assert_clean_feed(fresh.body, FAIL_RECOVER, fmt)
    assert fresh.header("X-Feedfix-Stale") is None
    row = svc.health_row(name)
    assert (row["ok"], row["stale"]) == (True, False), row


def test_retry_after_is_honoured(shared: Shared) -> None:
    """After a 429 with Retry-After: 3 the next request comes no sooner than 3 s later (the
    interval is 1 s, so without the header it would come after about 1 s); meanwhile the last
    good copy is served, marked stale."""
    svc, path = shared.svc, "/limited"
    good = svc.feed("limited")
    seen = len(svc.polls("limited"))
    shared.upstream.script(path, up.too_many_requests("3"))
    limited = shared.upstream.wait_for_requests(
        path, 1, timeout=5, where=lambda r: r.status == 429
    )[0]
    record = svc.wait_for_poll("limited", after=seen, status="error")
    assert record["http"] == 429, record
    stale = svc.feed("limited")
    assert stale.body == good.body
    assert stale.header("X-Feedfix-Stale")
    shared.upstream.script(path, up.feed(up.zaker_rss(range(50, 54))))
    index = shared.upstream.requests_for(path).index(limited)
    following = shared.upstream.wait_for_requests(path, index + 2, timeout=8, answered=False)
    gap = following[index + 1].at - limited.at
    assert gap >= 2.95, f"the next request came {gap:.2f} s after a 429 with Retry-After: 3"
    wait_for(
        lambda: served_titles(svc.feed("limited").body) == titles(range(50, 54)),
        5,
        "the feed to update after the 429",
    )


# ---- the archive: entries that leave the upstream's window stay ------------------------------


def test_rotation_keeps_archived_entries_up_to_keep_entries(shared: Shared) -> None:
    """When the upstream's window moves, items that drop out stay in the published feed (up to
    keep_entries) next to the new ones; a poll with one new item cleans just that one."""
    svc, path = shared.svc, "/rotate"
    assert served_titles(svc.feed("rotate").body) == titles(range(1, 5))

    def rotate_to(window: range) -> dict[str, Any]:
        seen = len(svc.polls("rotate"))
        shared.upstream.script(path, up.feed(up.zaker_rss(window)))
        return svc.wait_for_poll("rotate", after=seen, where=lambda r: r["changed"])

    record = rotate_to(range(3, 7))
    assert (record["window"], record["cleaned"]) == (4, 2), record
    assert_clean_feed(svc.feed("rotate").body, range(1, 7))

    record = rotate_to(range(7, 11))
    assert (record["window"], record["cleaned"]) == (4, 4), record
    assert_clean_feed(svc.feed("rotate").body, range(11 - ROTATE_KEEP, 11))

    record = rotate_to(range(8, 12))
    assert (record["window"], record["cleaned"]) == (4, 1), record
    assert record["entries"] == ROTATE_KEEP
    assert_clean_feed(svc.feed("rotate").body, range(12 - ROTATE_KEEP, 12))


def test_limit_rule_caps_the_published_feed_across_polls(shared: Shared) -> None:
    """A feed with `[feeds.rules.limit] count = 3` publishes the newest 3 entries, also after
    the upstream's window moves (the archive must not add back what the limit cut)."""
    svc = shared.svc
    assert served_titles(svc.feed("limit3").body) == titles(range(3, 6))
    seen = len(svc.polls("limit3"))
    shared.upstream.script("/limit3", up.feed(up.zaker_rss(range(1, 8))))
    record = svc.wait_for_poll("limit3", after=seen, where=lambda r: r["changed"])
    published = served_titles(svc.feed("limit3").body)
    assert published == titles(range(5, 8)), f"{len(published)} entries published: {record}"


# ---- index, health, metrics -----------------------------------------------------------------


def test_index_html_lists_every_feed(shared: Shared) -> None:
    """GET / is an HTML page with a link to each configured feed."""
    answer = shared.svc.get("/")
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").startswith("text/html")
    page = lxml.html.fromstring(answer.body)
    hrefs = {a.get("href", "") for a in page.iter("a")}
    for row in shared.svc.feeds:
        wanted = f"/feeds/{row['name']}.atom"
        assert any(h.endswith(wanted) for h in hrefs), f"no link to {wanted}"


def test_index_json_has_a_row_per_feed(shared: Shared) -> None:
    """/?format=json has name, upstream, last_success, entries and next_poll for each feed."""
    data = shared.svc.get("/?format=json").json()
    rows = {row["name"]: row for row in data["feeds"]}
    assert set(rows) == {row["name"] for row in shared.svc.feeds}
    for feed in shared.svc.feeds:
        row = rows[feed["name"]]
        assert row["upstream"] == feed["url"]
        for key in ("last_success", "entries", "next_poll"):
            assert key in row, f"{feed['name']}: no {key}"
    assert rows["zaker"]["entries"] == 8
    assert rows["zaker"]["last_success"]
    assert rows["zaker"]["next_poll"]
    assert rows["never"]["last_success"] is None


def test_healthz_has_a_row_per_feed(shared: Shared) -> None:
    """/healthz is 200 with status ok and name/ok/stale/last_success/last_error per feed."""
    data = shared.svc.health()
    assert data["status"] == "ok"
    rows = {row["name"]: row for row in data["feeds"]}
    assert set(rows) == {row["name"] for row in shared.svc.feeds}
    for row in rows.values():
        assert {"name", "ok", "stale", "last_success", "last_error"} <= set(row)
    assert rows["zaker"]["ok"] is True
    assert rows["zaker"]["stale"] is False


def test_metrics_count_polls_and_requests(shared: Shared) -> None:
    """/metrics is Prometheus text with feedfix_polls_total by outcome and
    feedfix_http_requests_total; every metric name starts with feedfix_."""
    shared.svc.wait_for_poll("zaker", status="not_modified")
    shared.svc.feed("zaker")
    answer = shared.svc.get("/metrics")
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").startswith("text/plain")
    families = list(text_string_to_metric_families(answer.body.decode("utf-8")))
    samples = [s for family in families for s in family.samples]
    assert all(family.name.startswith("feedfix_") for family in families)
    polls = {
        (s.labels["feed"], s.labels["outcome"]): s.value
        for s in samples
        if s.name == "feedfix_polls_total"
    }
    assert polls.get(("zaker", "ok"), 0) >= 1
    assert polls.get(("zaker", "not_modified"), 0) >= 1
    assert polls.get(("never", "error"), 0) >= 1
    served = [
        s
        for s in samples
        if s.name == "feedfix_http_requests_total"
        and s.labels.get("route") == "feed"
        and s.labels.get("status") == "200"
    ]
    assert served and served[0].value >= 1


# ---- restart, reload, config ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_restart_after_kill_serves_stored_copy_at_once(
    upstream: up.Upstream, service_dir: Path, fmt: str
) -> None:
    """After kill -9, a restart with the upstream down (connection refused) serves the same
    bytes and ETag from storage as soon as it listens, before any poll could succeed (RSS and
    JSON Feed rendered again from the stored Atom: the same bytes)."""
    upstream.script("/r", up.feed(up.zaker_rss(range(1, 7))))
    svc = Service(service_dir, [{"name": "r", "url": upstream.url("/r"), "interval": 1}])
    try:
        svc.start()
        svc.wait_served("r")
        first = svc.feed("r", fmt=fmt)
        svc.wait_for_poll("r", status="not_modified")
        svc.kill()
        upstream.stop()
        svc.start()
        again = svc.feed("r", fmt=fmt)
        assert not [p for p in svc.polls("r") if p["status"] != "error"]
        assert again.status == 200
        assert again.body == first.body
        assert again.header("ETag") == first.header("ETag")
        assert again.header("Last-Modified") == first.header("Last-Modified")
        record = svc.wait_for_poll("r", status="error")
        assert "connect" in record["error"], record
        stale = svc.feed("r", fmt=fmt)
        assert stale.body == first.body
        assert stale.header("X-Feedfix-Stale")
        svc.stop()
    finally:
        svc.close()


def test_sighup_adds_a_feed_and_refuses_a_broken_config(
    upstream: up.Upstream, service_dir: Path
) -> None:
    """SIGHUP after adding a feed serves the new feed without the old one going away; a broken
    config on SIGHUP is refused and the running config keeps serving."""
    upstream.script("/a", up.feed(up.zaker_rss(range(1, 4))))
    upstream.script("/b", up.feed(up.zaker_rss(range(10, 13))))
    svc = Service(service_dir, [{"name": "a", "url": upstream.url("/a"), "interval": 1}])
    try:
        svc.start()
        a_body = svc.wait_served("a").body
        assert svc.feed("b").status == 404
        svc.feeds.append({"name": "b", "url": upstream.url("/b"), "interval": 1})
        svc.write_config()
        svc.reload()

        def b_served() -> Response | None:
            a = svc.feed("a")
            assert a.status == 200, "the old feed went away during the reload"
            assert a.body == a_body
            b = svc.feed("b")
            return b if b.status == 200 else None

        assert_clean_feed(wait_for(b_served, 10, "the added feed to be served").body, range(10, 13))
        assert svc.events("reloaded")

        broken = svc.config_text().replace("[poll]", "[poll]\nintervall = 5", 1)
        broken = broken.split("[[feeds]]")[0]  # and no feeds: applying it would drop both
        svc.write_config(broken)
        svc.reload()
        refused = wait_for(
            lambda: svc.events("reload refused; keeping the running config"), 10, "the refusal"
        )
        assert "intervall" in refused[0]["error"]
        assert svc.running
        assert svc.feed("a").status == 200
        assert svc.feed("b").status == 200
        assert {row["name"] for row in svc.health()["feeds"]} == {"a", "b"}
        svc.stop()
    finally:
        svc.close()


def test_rule_change_applies_even_when_upstream_answers_304(
    upstream: up.Upstream, service_dir: Path
) -> None:
    """A SIGHUP that changes a feed's rules re-cleans it within a few intervals, even though
    the upstream keeps answering 304 to the stored ETag (the README: changed feeds restart;
    republish.rules_fingerprint: a reload re-cleans everything)."""
    upstream.script("/c", up.feed(up.zaker_rss(range(1, 4))))
    svc = Service(service_dir, [{"name": "c", "url": upstream.url("/c"), "interval": 1}])
    try:
        svc.start()
        before = svc.wait_served("c")
        assert all(e.img_srcs for e in entries(assert_valid_atom(before.body)))
        svc.feeds[0]["rules"] = {"remove": {"selectors": [".img_box"]}}
        svc.write_config()
        svc.reload()
        wait_for(lambda: svc.events("reloaded"), 10, "the reload")
        seen = len(svc.polls("c"))
        svc.wait_for_poll("c", after=seen + 1)  # two polls under the new rules

        def images_gone() -> bool:
            return not any(e.img_srcs for e in entries(assert_valid_atom(svc.feed("c").body)))

        statuses = [p["status"] for p in svc.polls("c")[seen:]]
        assert images_gone(), (
            "after a reload that removes .img_box the feed still has images; polls since: "
            f"{statuses} (a 304 never applies the new rules)"
        )
        svc.stop()
    finally:
        svc.close()


def test_filter_added_on_reload_drops_the_entry(upstream: up.Upstream, service_dir: Path) -> None:
    """An entry dropped by a filter added on SIGHUP leaves the published feed (the archive must
    not bring back what the rules now drop)."""
    body = up.zaker_rss(range(1, 5))
    upstream.script("/f", up.feed(body, etag=False, last_modified=None))  # always a 200
    svc = Service(service_dir, [{"name": "f", "url": upstream.url("/f"), "interval": 1}])
    try:
        svc.start()
        assert served_titles(svc.wait_served("f").body) == titles(range(1, 5))
        svc.feeds[0]["rules"] = {"filter": {"drop": "第 3 条"}}
        svc.write_config()
        svc.reload()
        wait_for(lambda: svc.events("reloaded"), 10, "the reload")
        seen = len(svc.polls("f"))
        record = svc.wait_for_poll("f", after=seen + 1)
        assert record["window"] == 3, record
        assert served_titles(svc.feed("f").body) == titles([1, 2, 4]), (
            "the filtered entry is still published (kept from the archive)"
        )
        svc.stop()
    finally:
        svc.close()


def test_config_from_environment(upstream: up.Upstream, service_dir: Path) -> None:
    """FEEDFIX_CONFIG names the file when --config is absent, and FEEDFIX_SERVER__PORT overrides
    [server] port."""
    upstream.script("/e", up.feed(up.zaker_rss(range(1, 3))))
    svc = Service(service_dir, [{"name": "e", "url": upstream.url("/e"), "interval": 1}])
    real_port = svc.port
    svc.server["port"] = 1  # wrong on purpose: the environment must win
    svc.env = {
        "FEEDFIX_CONFIG": str(svc.config_path),
        "FEEDFIX_SERVER__PORT": str(real_port),
    }
    svc.command = ["serve"]
    try:
        svc.start()
        assert svc.port == real_port
        assert_clean_feed(svc.wait_served("e").body, range(1, 3))
        svc.stop()
    finally:
        svc.close()


def write(path: Path, text: str) -> Path:
    """Write a file and return its path."""
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[poll]\nintervall = "5m"\n', "intervall"),
        ('[server]\nport = 8080\nhots = "0.0.0.0"\n', "hots"),
        ('[[feeds]]\nname = "a"\nurl = "http://127.0.0.1:9/"\nrefresh = 5\n', "refresh"),
    ],
)
def test_check_config_names_an_unknown_key(tmp_path: Path, text: str, key: str) -> None:
    """check-config on a config with an unknown key exits 2 with one stderr line naming it."""
    result = run_cli("check-config", str(write(tmp_path / "bad.toml", text)))
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0]
    assert "bad.toml" in lines[0]
    assert result.stdout == ""


def test_check_config_prints_every_section_of_the_example() -> None:
    """check-config on config.example.toml exits 0 and prints JSON with every section."""
    result = run_cli("check-config", str(REPO / "config.example.toml"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"server", "storage", "poll", "rules", "feeds"} <= set(data)
    assert data["server"]["port"] == 8080
    assert data["storage"]["path"] == str(REPO / "feedfix.db")  # beside the config file
    assert data["poll"]["interval"] == 600
    assert [f["name"] for f in data["feeds"]] == ["zaker-example"]
    assert Path(data["feeds"][0]["path"]).is_file()  # the bundled example, found in the package
    assert "unwrap-proxies" in data["rules"]


def test_example_config_documents_every_key() -> None:
    """Every setting check-config reports appears as a key line in config.example.toml."""
    data = json.loads(run_cli("check-config", str(REPO / "config.example.toml")).stdout)
    text = (REPO / "config.example.toml").read_text("utf-8")
    keys = {k for section in ("server", "storage", "poll") for k in data[section]}
    keys |= {k for k in data["feeds"][0] if k != "rules"}
    missing = sorted(k for k in keys if f"\n{k} =" not in text and f"\n# {k} =" not in text)
    assert not missing, f"config.example.toml does not document {missing}"


def test_sigterm_stops_within_seconds_even_with_a_hanging_poll(
    upstream: up.Upstream, service_dir: Path
) -> None:
    """SIGTERM while a poll hangs on its upstream still exits 0 within a few seconds."""
    upstream.script("/h", up.hang(60))
    feeds = [{"name": "h", "url": upstream.url("/h"), "interval": 1, "timeout": 30}]
    svc = Service(service_dir, feeds)
    try:
        svc.start()
        upstream.wait_for_requests("/h", 1, answered=False)
        started = time.monotonic()
        svc.stop(timeout=10)
        assert time.monotonic() - started < 5
    finally:
        svc.close()
