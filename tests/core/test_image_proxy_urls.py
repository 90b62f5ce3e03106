"""Signed image-proxy URLs and the proxy-images step: pure, so every case is exact."""

from __future__ import annotations

from dataclasses import replace

import pytest

from feedfix.core import imagesign
from feedfix.core.html import parse_fragment, serialize_fragment
from feedfix.core.imagesign import (
    NO_REFERER,
    BadSignature,
    ImageURLError,
    Referer,
    parse_referer,
    proxied,
    verify,
)
from feedfix.core.model import Entry, Feed, Link, Media
from feedfix.core.rules.proxy_images import (
    DEFAULT_HOST_RULES,
    HostRule,
    ImageProxySettings,
    ProxyImages,
    host_rules,
)

KEY = b"k" * 32
OLD = b"o" * 32
BASE = "https://feeds.example.com"
ZAKER = "http://zkres1.myzaker.com/202611/a.jpg?x=1&y=2"


def _path(url: str) -> str:
    assert url.startswith(BASE)
    return url[len(BASE) :]


def test_a_signed_url_verifies_to_its_origin_and_referer() -> None:
    """Round trip: the path names the exact URL (query included) and the Referer policy."""
    weibo = Referer("fixed", "https://weibo.com/")
    for referer in (NO_REFERER, Referer("origin"), weibo):
        got = verify(_path(proxied(BASE, KEY, ZAKER, referer)), [KEY])
        assert (got.url, got.referer) == (ZAKER, referer)


def test_signing_is_deterministic_and_key_dependent() -> None:
    """Same key, same URL (stable ETags across restarts); another key, another URL."""
    assert proxied(BASE, KEY, ZAKER) == proxied(BASE, KEY, ZAKER)
    assert proxied(BASE, KEY, ZAKER) != proxied(BASE, OLD, ZAKER)


def test_old_keys_still_verify_and_unknown_keys_do_not() -> None:
    """Rotation: a link signed with an old key passes while that key is listed."""
    path = _path(proxied(BASE, OLD, ZAKER))
    assert verify(path, [KEY, OLD]).url == ZAKER
    with pytest.raises(BadSignature):
        verify(path, [KEY])


@pytest.mark.parametrize("part", ["signature", "policy", "url"])
def test_any_tampered_part_is_a_bad_signature(part: str) -> None:
    """Changing the signature, the Referer policy or the URL each fails the HMAC: 403."""
    _, _, version, sig, policy, encoded = _path(proxied(BASE, KEY, ZAKER)).split("/")
    if part == "signature":
        sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    elif part == "policy":
        policy = Referer("fixed", "https://evil.example/").token()
    else:
        encoded = imagesign.b64encode(ZAKER.replace("a.jpg", "b.jpg"))
    with pytest.raises(BadSignature) as caught:
        verify(f"/img/{version}/{sig}/{policy}/{encoded}", [KEY])
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "path",
    ["/img/", "/img/v1/abc", "/img/v2/a/n/b", "/img/v1/a/n/b/c", "/feeds/x.atom"],
)
def test_malformed_paths_are_400(path: str) -> None:
    """Wrong shape or version: a 400, never a fetch."""
    with pytest.raises(ImageURLError) as caught:
        verify(path, [KEY])
    assert caught.value.status == 400


def test_a_signed_non_http_url_is_still_refused() -> None:
    """Even a correctly signed file:// or javascript: URL is not fetched (400)."""
    for url in ("file:///etc/passwd", "javascript:alert(1)", "http:///nohost"):
        sig = imagesign.signature(KEY, "n", url)
        with pytest.raises(ImageURLError) as caught:
            verify(f"/img/v1/{sig}/n/{imagesign.b64encode(url)}", [KEY])
        assert caught.value.status == 400


def test_referer_values() -> None:
    """A host rule's referer: none, origin, or an http(s) URL; anything else is an error."""
    assert parse_referer("none") == NO_REFERER
    assert parse_referer("origin").header("http://a.example:81/x/y.png") == "http://a.example:81/"
    assert parse_referer("https://weibo.com/").header(ZAKER) == "https://weibo.com/"
    assert NO_REFERER.header(ZAKER) is None
    with pytest.raises(ValueError, match="expected"):
        parse_referer("weibo.com")


def _settings(mode: str, hosts: tuple[HostRule, ...] = DEFAULT_HOST_RULES) -> ImageProxySettings:
    return ImageProxySettings(mode, BASE, KEY, hosts)  # type: ignore[arg-type]


def test_mode_http_proxies_http_and_protected_hosts_only() -> None:
    """ "http": an http:// image and a Weibo image (with Weibo's Referer) go through the
    proxy; an ordinary https:// image stays at its origin."""
    s = _settings("http")
    assert s.rewrite("https://cdn.example/a.png") == "https://cdn.example/a.png"
    assert verify(_path(s.rewrite(ZAKER)), [KEY]).referer == NO_REFERER
    weibo = verify(_path(s.rewrite("https://wx1.sinaimg.cn/large/a.jpg")), [KEY])
    assert weibo.referer == Referer("fixed", "https://weibo.com/")


def test_mode_all_proxies_everything_once() -> None:
    """ "all": every http(s) image, but never one already pointing at the proxy."""
    s = _settings("all")
    once = s.rewrite("https://cdn.example/a.png")
    assert once.startswith(BASE + "/img/v1/")
    assert s.rewrite(once) == once
    assert s.rewrite("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"


def test_https_host_rule_upgrades_without_proxying() -> None:
    """https = true: http:// becomes https:// and, in mode http, is not proxied."""
    hosts = host_rules({"zkres*.myzaker.com": {"https": True}})
    assert _settings("http", hosts).rewrite(ZAKER) == ZAKER.replace("http://", "https://")
    proxied_url = _settings("all", hosts).rewrite(ZAKER)
    assert verify(_path(proxied_url), [KEY]).url == ZAKER.replace("http://", "https://")


def test_configured_host_rules_override_defaults() -> None:
    """A configured pattern replaces the default of the same pattern and comes first."""
    hosts = host_rules({"*.sinaimg.cn": {"referer": "none"}})
    assert hosts[0] == HostRule("*.sinaimg.cn", NO_REFERER, None)
    assert sum(rule.pattern == "*.sinaimg.cn" for rule in hosts) == 1
    with pytest.raises(ValueError, match="unknown option 'cookie'"):
        host_rules({"a.example": {"cookie": "x"}})


def test_step_rewrites_every_image_place_and_no_page_link() -> None:
    """img src/srcset, picture source, video poster, enclosures and media of images, logo and
    icon are proxied; a link to a page, an audio enclosure and a video's src are not."""
    step = ProxyImages(_settings("http"))
    html = (
        '<p><a href="http://www.myzaker.com/a.html">page</a>'
        '<img src="http://i.example/1.jpg" srcset="http://i.example/1.jpg 1x, '
        'http://i.example/2.jpg 2x">'
        '<picture><source srcset="http://i.example/3.webp"><img src="http://i.example/3.jpg">'
        '</picture><video poster="http://i.example/4.jpg" src="http://v.example/v.mp4"></video>'
        '<audio><source src="http://v.example/a.mp3"></audio></p>'
    )
    container = parse_fragment(html)
    assert step.html(container) == 5
    out = serialize_fragment(container)
    assert 'href="http://www.myzaker.com/a.html"' in out
    assert 'src="http://v.example/v.mp4"' in out and 'src="http://v.example/a.mp3"' in out
    assert out.count(BASE + "/img/v1/") == 6  # srcset holds two
    assert ", " in out and " 2x" in out  # descriptors kept
    entry = Entry(
        id="x",
        links=(
            Link("http://www.myzaker.com/a.html"),
            Link("http://i.example/e.jpg", "enclosure", "image/jpeg"),
            Link("http://v.example/a.mp3", "enclosure", "audio/mpeg"),
        ),
        media=(
            Media("thumbnail", "http://i.example/t.jpg"),
            Media("content", "http://v.example/v.mp4", "video/mp4"),
        ),
    )
    new, changed = step.entry(entry)
    assert changed == 2
    assert [link.href.startswith(BASE) for link in new.links] == [False, True, False]
    assert [m.url.startswith(BASE) for m in new.media] == [True, False]
    feed, changed = step.feed(
        Feed(logo="http://i.example/logo.png", icon="https://i.example/i.ico")
    )
    assert (
        changed == 1
        and feed.logo
        and feed.logo.startswith(BASE)
        and feed.icon == "https://i.example/i.ico"
    )
    assert step.entry(replace(entry, links=(), media=()))[1] == 0
