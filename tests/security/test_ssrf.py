"""Issue 18, class 1: SSRF through host names that become IP literals after normalisation.

Black-box: ``feedfix serve`` is started as a user starts it; the "internal" target is always
a service on 127.0.0.1 (an image origin or a feed), which the config does not allow, so a
request that reaches it is the SSRF. Allowed origins and configured upstreams live on
127.0.0.2, another loopback address, so that "leaving the allowed host" and "reaching an
internal address" can be told apart without ever leaving the machine. Only spellings of
127.0.0.0/8 are used: the child process has no in-process loopback guard, so nothing here
may name an address outside loopback.
"""

from __future__ import annotations

import base64
from pathlib import Path

from security_helpers import (
    ImagesService,
    LoopbackSite,
    closed_port,
    image_origin,
    proxied_urls,
    rss,
    rss_item,
)

from upstream import Upstream, feed, zaker_rss

# Spellings of 127.0.0.1 that urlsplit() leaves as Unicode (not an IP) and that yarl's
# IDNA/NFKC encoding turns into the literal 127.0.0.1.
NORMALISED_LOOPBACK = [
    "１２７.０.０.１",  # full-width digits (the campaign's spelling)
    "１27.0.0.1",  # one full-width digit
    "127。0。0。1",  # ideographic full stops
    "127．0．0．1",  # full-width full stops
    "127｡0｡0｡1",  # half-width ideographic full stops
    "𝟏𝟐𝟕.𝟎.𝟎.𝟏",  # mathematical bold digits
    "①②⑦.⓪.⓪.①",  # circled digits
]
# Spellings the system resolver (inet_aton) or /etc/hosts turns into 127.0.0.1.
RESOLVED_LOOPBACK = [
    "0x7f.1", "127.1", "2130706433", "localhost", "ｌｏｃａｌｈｏｓｔ", "127.0.0.1.",
]  # fmt: skip


def _origin_of(proxied: str) -> str:
    """The origin URL a signed ``/img/v1/…`` path stands for (its last segment)."""
    token = proxied.rsplit("/", 1)[1]
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def _published(service: ImagesService, name: str) -> bytes:
    """The feed's Atom once served (the log's tail in the failure, if it never is)."""
    try:
        return service.wait_served(name, timeout=20).body
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{service.log_text()[-1500:]}") from None


def _proxy_answers(
    tmp_path: Path, upstream: Upstream, items: list[str]
) -> dict[str, tuple[int, bytes]]:
    """Serve ``items`` as a feed through the image proxy (``allow_private`` empty), and ask
    for every image URL it published: each origin URL's status and body."""
    upstream.script("/pics.xml", feed(rss(*items)))
    service = ImagesService(
        tmp_path,
        [{"name": "pics", "url": upstream.url("/pics.xml"), "interval": 600}],
        {"proxy": "all", "allow_private": []},
    )
    answers = {}
    with service:
        for path in proxied_urls(_published(service, "pics")):
            answer = service.get(path, timeout=15)
            answers[_origin_of(path)] = (answer.status, answer.body)
    return answers


def test_image_hosts_that_normalise_to_loopback_are_never_fetched(tmp_path: Path) -> None:
    """Attack: an upstream entry holds ``<img src="http://１２７.０.０.１:PORT/x.png">`` (and
    other Unicode spellings of 127.0.0.1); feedfix signs it, and ``GET /img/…`` connects to
    127.0.0.1:PORT, because the guard judged ``urlsplit().hostname`` (Unicode, not an IP)
    while yarl's IDNA/NFKC encoding made it the literal 127.0.0.1.

    Must hold: with ``allow_private`` empty, no spelling reaches the origin on 127.0.0.1: a
    signed URL for one is refused (not 200), with the generic "internal address refused"
    text. The plain ``127.0.0.1`` spelling is the control (refused today already)."""
    with image_origin() as origin, Upstream() as upstream:
        hosts = ["127.0.0.1", *NORMALISED_LOOPBACK, *RESOLVED_LOOPBACK]
        items = [
            rss_item(f'<p>{i}</p><img src="http://{host}:{origin.port}/plain/a.png">', n=i)
            for i, host in enumerate(hosts)
        ]
        answers = _proxy_answers(tmp_path, upstream, items)
        reached = dict(origin.hits)
        leaked = {url: got for url, got in answers.items() if got[0] == 200}
        assert not leaked, f"proxied from 127.0.0.1 though not allowed: {sorted(leaked)}"
        assert reached == {}, f"the internal origin was reached: {reached}"
        for url, (status, body) in answers.items():
            assert status in (403, 502), (url, status, body)
            assert b"internal address refused" in body, (url, body)


def test_a_redirect_from_an_allowed_origin_to_a_normalised_literal_is_refused(
    tmp_path: Path,
) -> None:
    """Attack: an allowed image origin (127.0.0.2, named in ``allow_private``) answers a
    redirect to ``http://１２７.０.０.１:PORT/…``; the hop is judged by its Unicode text, and
    aiohttp connects to the literal 127.0.0.1.

    Must hold: every hop is checked as it is connected; the origin on 127.0.0.1 (not
    allowed) is never reached, whatever spelling the Location uses; the reader gets a
    refusal, not the image."""
    with image_origin() as origin, LoopbackSite("127.0.0.2") as allowed, Upstream() as upstream:
        spellings = [*NORMALISED_LOOPBACK, "127.0.0.1", "localhost", "0x7f.1"]
        items = []
        for i, host in enumerate(spellings):
            allowed.redirect(f"/r{i}.png", f"http://{host}:{origin.port}/plain/a.png")
            items.append(rss_item(f'<img src="{allowed.url(f"/r{i}.png")}">', n=i))
        upstream.script("/pics.xml", feed(rss(*items)))
        service = ImagesService(
            tmp_path,
            [{"name": "pics", "url": upstream.url("/pics.xml"), "interval": 600}],
            {"proxy": "all", "allow_private": ["127.0.0.2"]},
        )
        with service:
            proxied = proxied_urls(_published(service, "pics"))
            assert len(proxied) == len(spellings), "every allowed-origin image is proxied"
            statuses = {_origin_of(p): service.get(p, timeout=15).status for p in proxied}
            redirects = sum(allowed.hits.values())
            reached = dict(origin.hits)
        assert redirects >= 1, "the allowed origin was asked (the test reaches the redirect)"
        assert reached == {}, f"a redirect reached the internal origin: {reached}"
        assert all(status != 200 for status in statuses.values()), statuses


def test_a_feed_redirect_to_a_normalised_literal_is_refused(tmp_path: Path) -> None:
    """Attack: the configured upstream (on 127.0.0.2) answers a redirect to
    ``http://１２７.０.０.１:PORT/secret.xml``; the fetcher judged the Unicode text, found no
    IP literal, and let aiohttp connect to 127.0.0.1 unchecked.

    Must hold: a redirect that leaves the configured host for an internal address is refused
    however the host is spelt (``[poll] allow_private_redirects`` is off): the poll fails,
    nothing is sent to 127.0.0.1, and the secret feed's entries are never published."""
    spellings = [*NORMALISED_LOOPBACK, "127.0.0.1", "localhost", "0x7f.1"]
    with LoopbackSite("127.0.0.2") as configured, Upstream() as internal:
        internal.script("/secret.xml", feed(zaker_rss(range(1, 3), title="SECRET INSIDE")))
        feeds = []
        for i, host in enumerate(spellings):
            configured.redirect(f"/f{i}.xml", f"http://{host}:{internal.port}/secret.xml")
            feeds.append({"name": f"f{i}", "url": configured.url(f"/f{i}.xml"), "interval": 600})
        service = ImagesService(tmp_path, feeds, {"proxy": "off"})
        with service:
            records = [service.wait_for_poll(f"f{i}", timeout=20) for i in range(len(spellings))]
            served = {f"f{i}": service.feed(f"f{i}").status for i in range(len(spellings))}
        asked = internal.requests_for("/secret.xml")
        assert asked == [], f"the internal upstream was asked {len(asked)} times"
        assert all(r["status"] == "error" for r in records), [
            (r["feed"], r["status"]) for r in records
        ]
        assert all(status == 503 for status in served.values()), served


def test_refusals_neither_echo_the_resolution_nor_tell_ports_apart(tmp_path: Path) -> None:
    """Attack: ``/img/`` for ``http://0x7f.1:PORT/`` answers "0x7f.1 resolves to an internal
    address (127.0.0.1)", telling an attacker what internal names resolve to; and the
    answer differs between an open and a closed internal port ("origin answered 404" vs
    "cannot connect"), which is a port scan.

    Must hold: every refusal of an internal target is the same answer, whatever the
    spelling and whether the port is open or closed: one status, one body, which says
    "internal address refused" and names no resolved address."""
    shut = closed_port()
    with image_origin() as origin, Upstream() as upstream:
        targets = []
        for host in ["127.0.0.1", "0x7f.1", "localhost", "127.1", *NORMALISED_LOOPBACK[:2]]:
            for port, path in ((origin.port, "/plain/a.png"), (origin.port, "/nope.png"),
                               (shut, "/x.png")):  # fmt: skip
                targets.append(f"http://{host}:{port}{path}")
        items = [rss_item(f'<img src="{url}">', n=i) for i, url in enumerate(targets)]
        answers = _proxy_answers(tmp_path, upstream, items)
    assert answers, "the proxied URLs were published"
    distinct = set(answers.values())
    assert len(distinct) == 1, "refusals differ: " + "; ".join(
        f"{url} -> {status} {body[:80]!r}" for url, (status, body) in sorted(answers.items())
    )
    (status, body) = distinct.pop()
    assert status in (403, 502)
    assert b"internal address refused" in body
    assert b"127.0.0.1" not in body and b"resolves" not in body, body


def test_a_feed_redirect_refusal_does_not_echo_the_resolution(tmp_path: Path) -> None:
    """Attack: the poll error of a feed redirected to ``http://0x7f.1:PORT/`` or
    ``http://localhost:PORT/`` says "resolves to an internal address (127.0.0.1)" on
    ``/healthz`` (open to anyone, even with ``admin_token`` set).

    Must hold: the refusal says "internal address refused" and nothing of what the name
    resolved to."""
    with LoopbackSite("127.0.0.2") as configured, Upstream() as internal:
        internal.script("/in.xml", feed(zaker_rss(range(1, 3))))
        feeds = []
        for i, host in enumerate(["0x7f.1", "localhost"]):
            configured.redirect(f"/f{i}.xml", f"http://{host}:{internal.port}/in.xml")
            feeds.append({"name": f"f{i}", "url": configured.url(f"/f{i}.xml"), "interval": 600})
        service = ImagesService(tmp_path, feeds, {"proxy": "off"})
        with service:
            for row in feeds:
                service.wait_for_poll(str(row["name"]), timeout=20)
            errors = [str(service.health_row(str(row["name"]))["last_error"]) for row in feeds]
    assert internal.requests_for("/in.xml") == []
    for error in errors:
        assert "internal address refused" in error, error
        assert "127.0.0.1" not in error, error


def test_allow_private_with_a_port_opens_only_that_port(tmp_path: Path) -> None:
    """Attack: ``allow_private = ["127.0.0.1"]``, meant for one local image origin, opens
    every loopback service (an admin port, Redis…) to anyone who can put an image URL in an
    upstream feed.

    Must hold (needs the new syntax: an ``allow_private`` entry may name a port,
    ``"127.0.0.1:PORT"``, ``"[::1]:PORT"``, ``"host.example:PORT"``): the named origin is
    proxied; another port of the same address is refused without being reached. Today the
    config refuses ``127.0.0.1:PORT`` as not a host, an address or a network."""
    with image_origin() as origin, image_origin() as other, Upstream() as upstream:
        good = f"http://127.0.0.1:{origin.port}/plain/a.png"
        bad = f"http://127.0.0.1:{other.port}/plain/a.png"
        upstream.script("/pics.xml", feed(rss(rss_item(f'<img src="{good}">', n=1),
                                              rss_item(f'<img src="{bad}">', n=2))))  # fmt: skip
        service = ImagesService(
            tmp_path,
            [{"name": "pics", "url": upstream.url("/pics.xml"), "interval": 600}],
            {"proxy": "all", "allow_private": [f"127.0.0.1:{origin.port}"]},
        )
        with service:
            proxied = {_origin_of(p): p for p in proxied_urls(_published(service, "pics"))}
            assert set(proxied) == {good, bad}
            assert service.get(proxied[good], timeout=15).status == 200
            assert service.get(proxied[bad], timeout=15).status in (403, 502)
        assert other.total == 0, "a loopback port that allow_private does not name was reached"
        assert origin.total == 1
