"""What the pages say (feedfix/service/web/views.py): a feed's state and advice, why the next
poll comes when it does, the chart's bars."""

from __future__ import annotations

from feedfix.config import FeedConfig, PollConfig
from feedfix.service.catalog import Status
from feedfix.service.state import FeedState, PollRecord
from feedfix.service.web import views

FEED = FeedConfig(name="f", url="https://h/f", interval=600.0)
POLL = PollConfig(jitter=0.1, max_backoff=3600.0)


def _status(**state: float | str | None) -> Status:
    """A status row of feed ``f`` whose poll state has ``state``."""
    return Status("f", "u", FeedState(**state))  # type: ignore[arg-type]


def test_state_words_and_advice() -> None:
    """ok, waiting, failing (never served) and stale, each with what to do."""
    assert views.state_of(_status(last_success=10.0)).key == "ok"
    assert views.state_of(_status()).key == "waiting"
    failing = views.state_of(_status(last_error="https://h/f: HTTP 404", last_error_at=5))
    assert failing.key == "failing" and "check the feed's url" in failing.advice
    stale = views.state_of(_status(last_success=1.0, last_error="x: HTTP 503",
                                  last_error_at=2.0, stale_since=2.0))  # fmt: skip
    assert stale.key == "stale" and "stale since" in stale.words and "backoff" in stale.advice
    assert "rate-limiting" in views.advice_for("h: HTTP 429")
    assert "timeout" in views.advice_for("h: no complete answer within 30 s")


def test_next_poll_reason() -> None:
    """The interval, the upstream asking for longer, backoff, Retry-After."""
    last = PollRecord(started=1000.0, status="ok", duration=0.0)
    plain = _status(next_poll=1600.0)
    assert "interval (10 min" in views.next_poll_reason(plain, FEED, POLL, last)
    longer = _status(next_poll=1000.0 + 3600)
    assert "asked for longer" in views.next_poll_reason(longer, FEED, POLL, last)
    backoff = _status(next_poll=1000.0 + 1200, failures=2)
    assert "backoff after 2 failed polls" in views.next_poll_reason(backoff, FEED, POLL, last)
    retry = _status(next_poll=1000.0 + 3000, failures=1)
    assert "Retry-After" in views.next_poll_reason(retry, FEED, POLL, last)
    assert "first poll" in views.next_poll_reason(_status(), FEED, POLL, None)


def test_chart_bars_oldest_first_errors_full_height() -> None:
    """Newest-first records become left-to-right bars; an error is a full-height bar."""
    records = [
        PollRecord(started=3.0, status="error", duration=0.1, error="x"),
        PollRecord(started=2.0, status="not_modified", duration=0.5),
        PollRecord(started=1.0, status="ok", duration=1.0),
    ]
    bars = views.chart(records)
    assert [b.outcome for b in bars] == ["ok", "not_modified", "error"]
    assert bars[0].x < bars[1].x < bars[2].x
    assert bars[2].height == bars[0].height > bars[1].height
    assert "error" in bars[2].label


def test_counts_agree_with_their_nouns() -> None:
    """The pages say "1 url", "2 urls", "1 element or attribute", "1 entry dropped" (they
    said "1 urls", "1 images", "1 elements"), sizes in B/kB/MB (156 bytes were "0.0 MB")."""
    assert views.counted(1, "urls") == "1 url" and views.counted(2, "urls") == "2 urls"
    assert views.counted(0, "images") == "0 images" and views.counted(1, "images") == "1 image"
    assert views.unit("sanitize", 1) == "element or attribute"
    assert (
        views.unit("drop-empty-junk", 1) == "element" and views.unit("limit", 1) == "entry dropped"
    )
    assert views.unit("unwrap-proxies", 3) == "urls" and views.unit("no-such-rule", 1) == "change"
    assert views.counted(1234, "requests") == "1,234 requests"
    cache = views.ImageCache(entries=1, bytes=156, hits=1, requests=2)
    assert cache.summary() == "Image cache: 1 image, 156 B; hit rate 50% of 2 requests."
    assert views.ImageCache(0, 0, 0, 0).summary() == (
        "Image cache: 0 images, 0 B; hit rate — of 0 requests."
    )


def test_explain_on_the_pages_agrees_too() -> None:
    """The playground's ``--explain`` block: "1 url in 1 entry"."""
    from feedfix.core.pipeline import Report  # noqa: PLC0415

    report = Report()
    report.add("unwrap-proxies", 1)
    report.entries = 1
    assert views.explain(report).splitlines()[0] == "unwrap-proxies: 1 url in 1 entry"


def test_advice_shows_names_as_code_and_escapes_the_rest() -> None:
    """Advice with Markdown backticks is shown with <code>, never as raw backticks; anything
    else in it is escaped."""
    shown = views.with_code("change `url` of feed 'a<b>' in the config")
    assert str(shown) == "change <code>url</code> of feed &#39;a&lt;b&gt;&#39; in the config"
    assert str(views.with_code("`<script>`")) == "<code>&lt;script&gt;</code>"


def test_a_bundled_example_is_shown_by_its_package_name() -> None:
    """The index's "Upstream" of ``path = "feedfix:examples/…"`` is that name, not the long
    site-packages path it resolves to."""
    from feedfix.config import parse_config  # noqa: PLC0415

    text = '[[feeds]]\nname = "x"\npath = "feedfix:examples/zaker-channel.rss.xml"\n'
    (feed,) = parse_config(text).feeds
    assert feed.path is not None and feed.path.endswith("/feedfix/examples/zaker-channel.rss.xml")
    assert feed.shown_source == "feedfix:examples/zaker-channel.rss.xml"
    (other,) = parse_config('[[feeds]]\nname = "y"\npath = "/srv/feed.xml"\n').feeds
    assert other.shown_source == "/srv/feed.xml"
