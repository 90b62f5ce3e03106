"""The web pages in a real browser: Debian's Chromium driven by Playwright (never a
downloaded browser), against `feedfix serve` started as a user starts it, with a scripted
upstream and the admin token set (the browser logs in with HTTP Basic).

Every page loads at 375 px and 1280 px with no console error, no failed request and no
horizontal scroll, and is photographed (``<tmp>/screens/<page>-<width>.png``); the index says
why a feed fails; "poll now" adds a line to the history; the inspector attributes a ZAKER
entry's changes to its rules, with their counts, and switching a rule off undoes its change;
the playground converts a pasted post; the XSS corpus, through the inspector and the
playground, fires nothing. Requests for anything but the service (the articles' images) go
to a stand-in proxy on 127.0.0.1 (``tests/standin.py``) that answers with a 1x1 GIF: nothing
leaves the machine, not even a DNS lookup.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from playwright.sync_api import Dialog

import pytest

import upstream as up
from browser import CHROMIUM_FLAGS, INIT_SCRIPT, POKE_SCRIPT, find_chromium
from service_helpers import Service, wait_for
from standin import StandIn

DATA = Path(__file__).resolve().parents[1] / "data"
ZAKER = (DATA / "zaker-classic.rss.xml").read_bytes()
CORPUS_POSTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "posts"
TOKEN = "browser-admin-token-0x9"  # noqa: S105 (a test token)
WIDTHS = (375, 1280)
FIRST_ENTRY = {"unwrap-proxies": 2, "fix-lazy-images": 2, "sanitize": 2, "drop-empty-junk": 2}
HOSTILE_FEEDS = 4  # the XSS corpus is spread over this many feeds (at most 100 entries each)


def _chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("FEEDFIX_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium or Playwright is missing and FEEDFIX_REQUIRE_BROWSER=1")
        pytest.skip("Chromium or Playwright is missing")
    return path


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """The stand-in for every host but the service."""
    proxy = StandIn(tmp_path_factory.mktemp("standin"))
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def chromium(standin: StandIn) -> Iterator[Any]:
    """One headless Chromium for the module, its traffic beyond loopback to the stand-in."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True,
                                     args=[*CHROMIUM_FLAGS, standin.flag])  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Site:
    """The service under test and its upstream."""

    service: Service
    upstream: up.Upstream
    screens: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A good ZAKER feed and a failing one."""
    tmp = tmp_path_factory.mktemp("web-browser")
    with up.Upstream() as upstream:
        upstream.script("/zaker.xml", up.feed(ZAKER))
        upstream.script("/broken.xml", up.error(502))
        feeds = [
            {"name": "zaker", "url": upstream.url("/zaker.xml")},
            {"name": "broken", "url": upstream.url("/broken.xml")},
        ]
        poll = {"jitter": 0, "max_backoff": "30s", "timeout": "2s", "connect_timeout": "1s"}
        with Service(tmp, feeds, poll=poll, server={"admin_token": TOKEN}) as service:
            service.wait_served("zaker")
            wait_for(lambda: service.polls("broken"), 10, "the broken feed's first poll")
            yield Site(service, upstream, tmp / "screens")


@dataclass
class Watch:
    """What went wrong while a page was open."""

    origin: str
    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)  # script that ran where it must not


@pytest.fixture
def open_page(chromium: Any) -> Iterator[Any]:
    """``open_page(origin, width)``: a logged-in page and its Watch (the page's context is
    closed after the test)."""
    contexts = []

    def make(
        origin: str,
        width: int = 1280,
        *,
        instrument: bool = False,
        javascript: bool = True,
        dark: bool = False,
    ) -> tuple[Any, Watch]:
        context = chromium.new_context(
            viewport={"width": width, "height": 900},
            java_script_enabled=javascript,
            color_scheme="dark" if dark else "light",
            http_credentials={"username": "admin", "password": TOKEN},
            ignore_https_errors=True,  # the stand-in's certificate is its own
        )
        contexts.append(context)
        watch = Watch(origin)
        if instrument:
            context.add_init_script(INIT_SCRIPT)
            context.expose_binding("__xssHit", lambda _source, msg: watch.hits.append(msg))

        page = context.new_page()
        page.on("console", lambda m: watch.console.append(m.text) if m.type == "error" else None)
        page.on("requestfailed", lambda r: watch.failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: watch.failed.append(f"{r.url} {r.status}")
                if r.status >= 400 else None)  # fmt: skip

        def dialog(d: Dialog) -> None:
            watch.hits.append(f"dialog {d.type}")
            d.dismiss()

        page.on("dialog", dialog)
        page.on("popup", lambda p: watch.hits.append(f"popup {p.url}"))
        return page, watch

    yield make
    for context in contexts:
        context.close()


def _no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _sample_post() -> str:
    """A Markdown post from the shared corpus when it is there, else one of the fixtures."""
    found = sorted(CORPUS_POSTS.rglob("*.md")) if CORPUS_POSTS.is_dir() else []
    found = found or sorted((DATA / "posts").rglob("*.md"))
    return found[0].read_text(encoding="utf-8")


PAGES = {
    "index": "/",
    "feed": "/feeds/zaker",
    "feed-failing": "/feeds/broken",
    "inspect": "/inspect/zaker",
    "playground": "/inspect",
}


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_loads_clean_at_both_widths(
    site: Site, open_page: Any, standin: StandIn, width: int
) -> None:
    """No console error, no failed request, no horizontal scroll; a screenshot of each."""
    site.screens.mkdir(parents=True, exist_ok=True)
    origin = site.service.base_url
    page, watch = open_page(origin, width)
    for name, path in PAGES.items():
        page.goto(origin + path, wait_until="load")
        page.wait_for_timeout(400)  # the frames' images paint
        assert _no_horizontal_scroll(page), f"{name} scrolls sideways at {width} px"
        page.screenshot(path=str(site.screens / f"{name}-{width}.png"), full_page=True)
    page.goto(origin + "/inspect")
    page.fill("#text", _sample_post())
    page.click("form.playground button[type=submit]")
    page.wait_for_selector("#explain-title")
    assert _no_horizontal_scroll(page), f"the playground's result scrolls sideways at {width}"
    page.screenshot(path=str(site.screens / f"playground-result-{width}.png"), full_page=True)
    assert watch.console == [], watch.console
    assert watch.failed == [], watch.failed
    assert any("zkres1.myzaker.com" in url for url in standin.requested)  # images shown
    assert all(shot.stat().st_size > 5000 for shot in site.screens.glob(f"*-{width}.png"))


def test_index_says_why_a_feed_fails_and_what_to_do(site: Site, open_page: Any) -> None:
    """The failing feed's card states the HTTP error in words and advice, the good one ok."""
    page, _ = open_page(site.service.base_url)
    page.goto(site.service.base_url + "/")
    broken = page.locator("#feed-broken")
    assert "failing" in broken.locator(".state").inner_text()
    text = broken.inner_text()
    rows = site.service.get("/?format=json", {"Authorization": f"Bearer {TOKEN}"}).json()
    advice = next(r["advice"] for r in rows["feeds"] if r["name"] == "broken")
    shown = advice.replace("`", "") if advice else advice  # its `names` are shown as code
    assert shown and "HTTP 502" in text and f"What to do: {shown}" in text
    assert "`" not in text
    assert "ok" in page.locator("#feed-zaker .state").inner_text()
    assert "2 feeds, 1 failing" in page.locator(".summary").inner_text()


def test_poll_now_adds_to_the_history(site: Site, open_page: Any) -> None:
    """The button polls the feed at once; the page shows the outcome and one more line."""
    page, watch = open_page(site.service.base_url)
    page.goto(site.service.base_url + "/feeds/zaker")
    before = page.locator("table.history tbody tr").count()
    page.click("text=Poll now")
    page.wait_for_selector("text=The poll you asked for is done", timeout=20_000)
    assert page.locator("table.history tbody tr").count() == before + 1
    assert "not modified (304)" in page.locator("table.history tbody tr").first.inner_text()
    assert watch.console == [] and watch.failed == []


def _counts(page: Any, entry: int = 1) -> dict[str, int]:
    steps = page.locator(f"#entry-{entry} .step")
    found = {}
    for index in range(steps.count()):
        step = steps.nth(index)
        found[step.get_attribute("data-rule")] = int(step.locator(".count").inner_text())
    return found


def _cleaned_srcdoc(page: Any, entry: int = 1) -> str:
    frame = page.locator(f"#entry-{entry} iframe").nth(1)
    return str(frame.get_attribute("srcdoc"))


def test_inspector_attributes_changes_to_rules(site: Site, open_page: Any) -> None:
    """The first ZAKER entry: two URLs unwrapped, two images fixed, two onclick dropped, two
    junk elements removed, each under its rule (counts from the rules' own reports)."""
    page, _ = open_page(site.service.base_url)
    page.goto(site.service.base_url + "/inspect/zaker")
    assert _counts(page) == FIRST_ENTRY
    page.click("#entry-1 .step[data-rule=sanitize] summary")
    hunks = page.locator("#entry-1 .step[data-rule=sanitize] .hunk").all_inner_texts()
    assert len(hunks) == 2 and all("removed" in h and "onclick" in h for h in hunks)
    for frame in page.locator("iframe").all():
        assert frame.get_attribute("sandbox") == ""  # no allow-scripts, no allow-same-origin
    cleaned = _cleaned_srcdoc(page)
    assert "cors.zfour.workers.dev" not in cleaned and "onclick" not in cleaned


def test_switching_a_rule_off_undoes_its_change(site: Site, open_page: Any) -> None:
    """Unticking sanitize (the script submits the form) leaves the onclick in; unticking
    fix-lazy-images as well leaves the lazy-loading attributes; the other counts stay."""
    page, watch = open_page(site.service.base_url)
    page.goto(site.service.base_url + "/inspect/zaker")
    with page.expect_navigation():
        page.uncheck("input.rule-toggle[value=sanitize]")
    assert "sanitize" not in _counts(page)
    assert "onclick" in _cleaned_srcdoc(page)
    assert not page.is_checked("input.rule-toggle[value=sanitize]")
    with page.expect_navigation():
        page.uncheck("input.rule-toggle[value=fix-lazy-images]")
    assert _counts(page) == {"unwrap-proxies": 2, "drop-empty-junk": 2}
    cleaned = _cleaned_srcdoc(page)
    assert "data-original=" in cleaned and "data-inert-onclick" in cleaned
    assert watch.console == [] and watch.failed == []


def test_playground_converts_a_pasted_post(site: Site, open_page: Any) -> None:
    """A Markdown post pasted in comes back as Atom, with the --explain report."""
    page, watch = open_page(site.service.base_url)
    page.goto(site.service.base_url + "/inspect")
    page.fill("#text", _sample_post())
    page.click("form.playground button[type=submit]")
    page.wait_for_selector("#explain-title")
    explain = page.locator("pre.explain").inner_text()
    assert re.search(r"^entries: 1$", explain, re.M), explain
    assert "<feed xmlns=" in page.locator("pre.atom").inner_text()
    assert page.locator("#entry-1 iframe").count() == 2
    assert watch.console == [] and watch.failed == []


def test_pages_read_without_javascript_by_keyboard_and_in_dark_mode(
    site: Site, open_page: Any
) -> None:
    """Without script the inspector still switches rules (its Apply button); Tab reaches the
    skip link first and then the navigation; a dark system gets a dark page."""
    origin = site.service.base_url
    page, watch = open_page(origin, javascript=False)
    page.goto(origin + "/inspect/zaker")
    assert _counts(page) == FIRST_ENTRY
    page.uncheck("input.rule-toggle[value=sanitize]")
    with page.expect_navigation():
        page.click("button.apply")
    assert "sanitize" not in _counts(page)
    page.goto(origin + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "feedfix"
    assert watch.console == [] and watch.failed == []
    dark, _ = open_page(origin, dark=True)
    dark.goto(origin + "/")
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 23, 26)", background
    site.screens.mkdir(parents=True, exist_ok=True)
    dark.screenshot(path=str(site.screens / "index-dark-1280.png"), full_page=True)


# ---- hostile entries ------------------------------------------------------------------------


def _vectors() -> list[Any]:
    import sys  # noqa: PLC0415

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
    from test_xss import load_vectors  # noqa: PLC0415

    return list(load_vectors())


_XML_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _hostile_rss(vectors: list[Any]) -> bytes:
    items = "".join(
        f"<item><title>{v.id}</title><link>https://xss.example.org/{v.id}</link>"
        f"<guid>https://xss.example.org/{v.id}</guid>"
        f"<description>{escape(v.html).replace(chr(13), '&#13;')}</description></item>"
        for v in vectors
    )
    # feedfix takes a NUL in the first 8 KB for binary data: pad, as test_xss.py does
    padding = f"<!--{' ' * 9000}-->" if "\x00" in items else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{padding}<rss version="2.0"><channel>'
        "<title>XSS</title>"
        f"<link>https://xss.example.org/</link><description>v</description>{items}"
        "</channel></rss>"
    ).encode()


def _poke_frames(page: Any) -> None:
    for frame in page.frames:
        if frame is page.main_frame or frame.is_detached():
            continue
        try:
            frame.evaluate(POKE_SCRIPT)
        except Exception:  # noqa: S112 - a frame that navigated, or runs no script at all
            continue


def test_hostile_entries_fire_nothing(open_page: Any, standin: StandIn, tmp_path: Path) -> None:
    """All 375 vectors, source and cleaned side by side: the XML-safe ones through the
    inspector (four feeds), the ones XML cannot hold through the playground's lenient
    parse. Nothing runs, nothing pops up, the page stays put, nothing reaches evil.example;
    the same instrumentation does catch a live vector on an ordinary page."""
    vectors = _vectors()
    assert len(vectors) == 375
    safe = [v for v in vectors if not _XML_UNSAFE.search(v.html)]
    unsafe = [v for v in vectors if _XML_UNSAFE.search(v.html)]
    chunks = [safe[i::HOSTILE_FEEDS] for i in range(HOSTILE_FEEDS)]
    with up.Upstream() as upstream:
        for index, chunk in enumerate(chunks):
            upstream.script(f"/h{index}.xml", up.feed(_hostile_rss(chunk)))
        feeds = [{"name": f"h{i}", "url": upstream.url(f"/h{i}.xml")} for i in range(len(chunks))]
        with Service(tmp_path / "hostile", feeds, server={"admin_token": TOKEN}) as service:
            for feed in feeds:
                service.wait_served(feed["name"])
            origin = service.base_url
            page, watch = open_page(origin, instrument=True)
            page.set_content("<img src=x onerror=alert(1)>")  # the control: this one fires
            wait_for(lambda: watch.hits, 5, "the control vector to fire")
            watch.hits.clear()
            shown = 0
            for feed, chunk in zip(feeds, chunks, strict=True):
                page.goto(f"{origin}/inspect/{feed['name']}?show=100", wait_until="load")
                shown += page.locator("article.entry").count()
                _poke_frames(page)
                page.wait_for_timeout(500)
                assert page.url.startswith(f"{origin}/inspect/{feed['name']}")
                assert page.locator("article.entry").count() == len(chunk)
            page.goto(origin + "/inspect")
            page.set_input_files("#file", files=[{"name": "unsafe.xml", "mimeType": "text/xml",
                                                  "buffer": _hostile_rss(unsafe)}])  # fmt: skip
            with page.expect_navigation():  # form.submit(): the harness stops clicked submits
                page.evaluate("document.querySelector('form.playground').submit()")
            page.wait_for_selector("#explain-title", timeout=10_000)
            shown += page.locator("article.entry").count()
            _poke_frames(page)
            page.wait_for_timeout(500)
            assert page.url == origin + "/inspect"
    assert shown == 375
    assert watch.hits == [], watch.hits[:10]
    evil = [url for url in standin.requested if "evil.example" in url]
    assert evil == [], evil[:10]
