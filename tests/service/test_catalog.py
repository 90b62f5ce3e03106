"""The catalog: which representation a request's headers ask for, and the identity bodies
inflated from the gzip that is all a published output holds."""

from __future__ import annotations

import asyncio

import pytest

from feedfix.service.catalog import Catalog, Status
from feedfix.service.http.connections import Limits
from feedfix.service.http.fastpath import FastPath, _Answered
from feedfix.service.served import IdentityBodies, ServedFeed, accepts_gzip, strong_etag
from feedfix.service.state import Published


@pytest.mark.parametrize(
    "header",
    [
        "gzip",
        "GZIP",  # content-codings are case-insensitive (RFC 9110 8.4.1)
        "Gzip, deflate",
        "br, GZip;q=0.5",
        "x-gzip",
        "X-GZIP",
        "*",
        "deflate, *;q=0.1",
        "gzip;Q=1",
        " gzip ; q=0.001 ",
    ],
)
def test_gzip_is_accepted(header: str) -> None:
    """gzip named (any case), or ``*``, with a q-value above zero."""
    assert accepts_gzip(header)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "identity",
        "br, deflate",
        "gzip;q=0",
        "GZIP;Q=0",
        "gzip;q=0.000",
        "*;q=0",
        "gzip;q=0, *",  # gzip refused by name: the wildcard does not bring it back
        "gzip;q=nonsense",
        "gzipx",
    ],
)
def test_gzip_is_not_accepted(header: str) -> None:
    """No gzip when it is not asked for, or refused with q=0."""
    assert not accepts_gzip(header)


# ---- the identity bodies: inflated when asked for, a bounded number kept ------------------


def _feed_bytes(n: int, size: int = 200_000) -> bytes:
    """An Atom-like body of about ``size`` bytes, different for each ``n``."""
    entry = f"<entry><title>第 {n} 条</title><content>{'字' * 40}</content></entry>".encode()
    return b"<feed>" + entry * (size // len(entry)) + b"</feed>"


def _served(name: str, body: bytes, identities: IdentityBodies) -> ServedFeed:
    return ServedFeed.of(name, Published.of(body, strong_etag(body), 1.0, 1), 60, None, identities)


def test_only_the_gzip_is_held_and_the_identity_is_its_exact_inflation() -> None:
    """A published output keeps its gzip alone; ``identity`` gives the bytes back."""
    body = _feed_bytes(1)
    published = Published.of(body, strong_etag(body), 1.0, 1)
    assert not hasattr(published, "body")
    assert len(published.gzip) < len(body) / 3
    assert published.identity() == body
    assert Published.of(body, strong_etag(body), 1.0, 1).gzip == published.gzip  # same bytes


def test_identity_replies_are_kept_within_the_budget_least_recently_used_out() -> None:
    """Each feed's identity 200 is inflated once and kept while it fits; past the budget the
    least recently asked for goes, and whoever listens is told which feed it was."""
    identities = IdentityBodies(budget=450_000)  # two 200 KB bodies fit, not three
    evicted: list[str] = []
    identities.evicted.append(evicted.append)
    feeds = {name: _served(name, _feed_bytes(n), identities) for n, name in enumerate("abc")}
    first = feeds["a"].answer(None, None, None)
    assert first.status == 200 and first.body == _feed_bytes(0)
    assert f"Content-Length: {len(first.body)}\r\n".encode() in first.head
    assert feeds["a"].answer(None, None, "identity") is first  # kept, not inflated again
    feeds["b"].answer(None, None, None)
    feeds["a"].answer(None, None, None)  # a is now the more recent
    feeds["c"].answer(None, None, None)
    assert evicted == ["b"]
    assert identities.held <= identities.budget
    assert feeds["a"].answer(None, None, None) is first


def test_a_feed_with_new_bytes_is_never_answered_with_the_old_identity() -> None:
    """A new ServedFeed for the same name (new bytes, or a stale mark) brings its own
    identity reply; the catalog drops the old one when it publishes."""
    catalog = Catalog()
    old = _served("a", _feed_bytes(1), catalog.identities)
    catalog.publish("a", old, Status("a", "u"))
    assert old.answer(None, None, None).body == _feed_bytes(1)
    held = catalog.identities.held
    new = _served("a", _feed_bytes(2), catalog.identities)
    catalog.publish("a", new, Status("a", "u"))
    assert catalog.identities.held == 0 < held
    assert new.answer(None, None, None).body == _feed_bytes(2)
    assert new.answer(None, None, "gzip").body == new.published.gzip


def test_the_fast_path_forgets_heads_answered_with_an_evicted_identity() -> None:
    """Remembered request heads would keep an evicted body alive: the front forgets them."""
    catalog = Catalog(identities=IdentityBodies(budget=250_000))
    front = FastPath(lambda: None, Limits(), catalog, lambda _status: None)
    for n, name in enumerate("ab"):
        catalog.publish(name, _served(name, _feed_bytes(n), catalog.identities), Status(name, "u"))
    head = b"GET /feeds/a.atom HTTP/1.1\r\nHost: x"
    reply = catalog.served["a"].answer(None, None, None)
    front.remember(head, _Answered("a", reply, True, True, b""))
    catalog.served["b"].answer(None, None, None)  # evicts a's identity body
    assert head not in front.known


# ---- the other formats ------------------------------------------------------------------------


class _Renders:
    """A stand-in for the cleaning worker: counts the renders asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, name: str, atom: Published, fmt: str) -> Published:
        self.calls.append((name, fmt))
        await asyncio.sleep(0.01)  # a render takes a while: others ask meanwhile
        body = atom.identity().replace(b"<feed>", f"<{fmt}>".encode())
        return Published.of(body, strong_etag(body), atom.last_modified, atom.entries)


def test_a_format_is_rendered_once_for_all_who_ask_and_kept_across_a_stale_mark() -> None:
    """Concurrent first requests share one render; its replies are kept; a stale mark (same
    Atom, new headers) keeps the bytes and adds the header; new Atom bytes render again."""
    renders = _Renders()
    catalog = Catalog(render=renders)

    async def scenario() -> None:
        served = _served("f", _feed_bytes(1), catalog.identities)
        asked = [catalog.other_format(served, "rss") for _ in range(5)]
        assert all(isinstance(a, asyncio.Future) for a in asked) and len(set(map(id, asked))) == 1
        first = asked[0]
        assert isinstance(first, asyncio.Future)
        rss = await first
        assert catalog.other_format(served, "rss") is rss and renders.calls == [("f", "rss")]
        assert rss.identity_headers["Content-Type"].startswith("application/rss+xml")
        assert rss.published.last_modified == served.published.last_modified
        stale = served.again(60, stale_since=2.0)
        again = catalog.other_format(stale, "rss")
        assert isinstance(again, ServedFeed) and again.published is rss.published
        assert "X-Feedfix-Stale" in again.identity_headers and len(renders.calls) == 1
        changed = _served("f", _feed_bytes(2), catalog.identities)
        assert isinstance(catalog.other_format(changed, "rss"), asyncio.Future)
        assert catalog.other_format(changed, "atom") is changed

    asyncio.run(scenario())


def test_a_failed_render_is_tried_again_by_the_next_request() -> None:
    """A render that raised leaves nothing behind: the next request starts a new one."""
    calls = 0

    async def failing(name: str, atom: Published, fmt: str) -> Published:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    catalog = Catalog(render=failing)

    async def scenario() -> None:
        served = _served("f", _feed_bytes(1), catalog.identities)
        for _ in range(2):
            pending = catalog.other_format(served, "json")
            assert isinstance(pending, asyncio.Future)
            with pytest.raises(RuntimeError):
                await pending

    asyncio.run(scenario())
    assert calls == 2


def test_a_feeds_identities_go_in_every_format() -> None:
    """A feed whose bytes changed drops its identity replies in every format at once."""
    identities = IdentityBodies()
    atom = _served("f", _feed_bytes(1), identities)
    rss = ServedFeed.of("f", atom.published, 60, None, identities, fmt="rss")
    identities.reply(atom)
    identities.reply(rss)
    assert identities.held == 2 * len(_feed_bytes(1))
    identities.drop("f")
    assert identities.held == 0
