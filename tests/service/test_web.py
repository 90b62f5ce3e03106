"""The web pages over HTTP, against `feedfix serve` started as a user starts it: the admin
token, secrets masked everywhere, "poll now" and the playground's protections and limits,
OPML, static files, and the JSON index keeping its shape."""

from __future__ import annotations

import base64
import html
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import upstream as up
from service_helpers import Service, wait_for

DATA = Path(__file__).resolve().parents[1] / "data"
ZAKER = (DATA / "zaker-classic.rss.xml").read_bytes()
TOKEN = "admin-Token-4fj29"  # noqa: S105 (a test token)
PLANTED = ("PLANTEDuser", "PLANTEDpass", "PLANTEDkey", "PLANTEDsig", "PLANTEDheader")
BOUNDARY = "feedfixtestboundary"


@dataclass
class Running:
    """A service with a good feed (``zaker``) and a failing one (``broken``)."""

    service: Service
    upstream: up.Upstream


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One service for the module; its URLs and a header carry planted secrets."""
    tmp = tmp_path_factory.mktemp("web")
    with up.Upstream() as upstream:
        upstream.script("/zaker.xml", up.feed(ZAKER))
        upstream.script("/broken.xml", up.error(500))
        base = upstream.url("/").rstrip("/").replace("http://", "")
        zaker = f"http://{PLANTED[0]}:{PLANTED[1]}@{base}/zaker.xml?key={PLANTED[2]}&page=2"
        broken = f"http://{base}/broken.xml?Sig={PLANTED[3]}"
        feeds: list[dict[str, Any]] = [
            {"name": "zaker", "url": zaker, "headers": {"X-Api-Token": PLANTED[4]}},
            {"name": "broken", "url": broken},
        ]
        service = Service(tmp, feeds, env={"FEEDFIX_SERVER__ADMIN_TOKEN": TOKEN})
        with service:
            service.wait_served("zaker")
            wait_for(lambda: service.polls("broken"), 10, "the broken feed's first poll")
            yield Running(service, upstream)


def bearer(token: str = TOKEN) -> dict[str, str]:
    """An Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


PROTECTED = ["/", "/?format=json", "/feeds/zaker", "/inspect", "/inspect/zaker", "/feeds.opml",
             "/metrics"]  # fmt: skip


@pytest.mark.parametrize("path", PROTECTED)
def test_protected_routes_need_the_admin_token(running: Running, path: str) -> None:
    """Without the token 401 (with a Basic challenge), with Bearer or Basic 200, wrong 401."""
    service = running.service
    refused = service.get(path)
    assert refused.status == 401
    assert (refused.header("WWW-Authenticate") or "").startswith("Basic")
    assert service.get(path, bearer()).status == 200
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert service.get(path, {"Authorization": f"Basic {basic}"}).status == 200
    assert service.get(path, bearer(TOKEN + "x")).status == 401
    assert service.get(path, {"Authorization": "Basic !!!"}).status == 401


OPEN_PATHS = ["/feeds/zaker.atom", "/feeds/zaker.rss", "/feeds/zaker.json", "/healthz"]


@pytest.mark.parametrize("path", [*OPEN_PATHS, "/static/style.css"])
def test_feeds_health_and_static_stay_open(running: Running, path: str) -> None:
    """Readers and probes need no token."""
    assert running.service.get(path).status == 200


def test_image_paths_are_not_behind_the_token(running: Running) -> None:
    """/img/… is left open for the image proxy: no 401 (404 until it exists)."""
    assert running.service.get("/img/x").status != 401


def test_post_poll_needs_the_token_too(running: Running) -> None:
    """ "Poll now" is an admin action: 401 without the token."""
    assert running.service.get("/feeds/zaker/poll", method="POST").status == 401


def _pages(service: Service) -> dict[str, str]:
    paths = [*PROTECTED, "/feeds/broken", "/inspect/broken", "/healthz"]
    return {p: service.get(p, bearer()).body.decode("utf-8", "replace") for p in paths}


def test_planted_secrets_never_show(running: Running) -> None:
    """Userinfo, credential query values and header values appear on no page, in no JSON,
    not in /metrics or /healthz, and not in the logs, while the rest of the URL does."""
    service = running.service
    pages = _pages(service)
    pages["log"] = service.log_text()
    for where, text in pages.items():
        for secret in PLANTED:
            assert secret not in text, f"{secret} shows in {where}"
    assert TOKEN not in pages["log"] and all(TOKEN not in t for t in pages.values())
    assert "zaker.xml?key=***&amp;page=2" in pages["/"]
    assert "***@" in pages["/feeds/zaker"]
    assert "Sig=***" in pages["/feeds/broken"]  # the failing feed's error quotes its URL
    assert "X-Api-Token" in pages["/feeds/zaker"]  # the header's name, never its value
    row = next(r for r in service.get("/?format=json", bearer()).json()["feeds"]
               if r["name"] == "broken")  # fmt: skip
    assert "Sig=***" in row["last_error"]


def test_check_config_masks_the_admin_token(running: Running) -> None:
    """``check-config`` prints the effective config without the token."""
    from service_helpers import run_cli  # noqa: PLC0415

    done = run_cli("check-config", str(running.service.config_path),
                   env={"FEEDFIX_SERVER__ADMIN_TOKEN": TOKEN})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_json_index_says_what_the_page_says(running: Running) -> None:
    """``?format=json`` keeps each feed row's keys, and adds what the HTML index shows above
    the feeds: the summary line, the image cache and the image archive (none: the proxy is
    off) and the shared store's state; the page's summary line says the same numbers, in
    agreeing words."""
    page = html.unescape(running.service.get("/", bearer()).text())
    data = running.service.get("/?format=json", bearer()).json()  # after: polls only add up
    assert set(data) == {"version", "summary", "image_cache", "image_archive", "store", "feeds"}
    assert data["image_archive"] is None
    keys = {"name", "url", "urls", "upstream", "ok", "stale", "stale_since", "last_success",
            "last_error", "last_error_at", "entries", "next_poll",
            "permanent_redirect", "advice", "serving"}  # fmt: skip
    assert all(set(row) == keys for row in data["feeds"])
    assert data["image_cache"] is None and data["store"] == {"ok": True, "error": None}
    said = data["summary"]
    assert said["feeds"] == len(data["feeds"]) == 2
    assert said["failing"] == sum(not row["ok"] for row in data["feeds"]) == 1
    line = re.search(r"2 feeds, 1 failing, (\d+) (polls?) in the last hour", page)
    assert line, "the page's summary line"
    assert line[2] == ("poll" if line[1] == "1" else "polls")
    assert 1 <= int(line[1]) <= said["polls_last_hour"]


def test_html_feed_page_reaches_aiohttp_and_atom_stays_the_feed(running: Running) -> None:
    """``/feeds/zaker`` is the HTML page, ``/feeds/zaker.atom`` the feed; unknown: 404."""
    service = running.service
    page = service.get("/feeds/zaker", bearer())
    assert page.status == 200 and "text/html" in (page.header("Content-Type") or "")
    assert "Poll history" in page.text()
    feed = service.get("/feeds/zaker.atom")
    assert (feed.header("Content-Type") or "").startswith("application/atom+xml")
    assert service.get("/feeds/nope", bearer()).status == 404
    assert service.get("/inspect/nope", bearer()).status == 404


def test_pages_carry_a_csp_without_inline_script(running: Running) -> None:
    """Every HTML page forbids inline script (script-src 'self' only)."""
    for path in ("/", "/feeds/zaker", "/inspect/zaker", "/inspect"):
        csp = running.service.get(path, bearer()).header("Content-Security-Policy") or ""
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize(
    ("query", "fmt"),
    [("", "atom"), ("?format=rss", "rss"), ("?format=json", "json"), ("?format=atom", "atom")],
)
def test_opml_lists_every_served_feed(running: Running, query: str, fmt: str) -> None:
    """OPML 2.0 with an outline per served feed, pointing at its .atom URL, or the format
    ``?format=`` names; an unknown format is a 400."""
    answer = running.service.get(f"/feeds.opml{query}", bearer())
    root = etree.fromstring(answer.body)
    assert root.tag == "opml" and root.get("version") == "2.0"
    urls = [o.get("xmlUrl") for o in root.iter("outline")]
    assert urls == [f"{running.service.base_url}/feeds/zaker.{fmt}"]  # broken has no copy
    assert running.service.get("/feeds.opml?format=xml", bearer()).status == 400


@pytest.mark.parametrize("path", ["/", "/feeds/zaker"])
def test_pages_offer_every_format_and_announce_it(running: Running, path: str) -> None:
    """The index and the feed's page give a subscribe URL per format with its copy button,
    and a ``<link rel="alternate">`` per format in ``<head>`` (feed discovery)."""
    page = running.service.get(path, bearer()).text()
    head = page.split("</head>", 1)[0]
    base = f"{running.service.base_url}/feeds/zaker"
    kinds = {
        "atom": "application/atom+xml",
        "rss": "application/rss+xml",
        "json": "application/feed+json",
    }
    for fmt, kind in kinds.items():
        assert f'<link rel="alternate" type="{kind}" title="zaker (' in head, fmt
        assert f'href="{base}.{fmt}"' in head, fmt
        assert f'data-copy="{base}.{fmt}"' in page, fmt
    if path != "/":
        assert "broken" not in head, "a feed's page announces that feed only"


def test_static_files_have_etags_and_long_caching(running: Running) -> None:
    """A year of caching, an ETag, and 304 when the client has the file; unknown: 404."""
    service = running.service
    first = service.get("/static/style.css")
    etag = first.header("ETag")
    assert etag and "immutable" in (first.header("Cache-Control") or "")
    assert "max-age=31536000" in (first.header("Cache-Control") or "")
    assert service.get("/static/style.css", {"If-None-Match": etag}).status == 304
    assert service.get("/static/nope.css").status == 404


def _form(service: Service, path: str, fields: dict[str, str],
          headers: dict[str, str] | None = None) -> tuple[int, str]:  # fmt: skip
    body = urllib.parse.urlencode(fields)
    conn_headers = {
        **bearer(),
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": service.base_url,
        **(headers or {}),
    }
    import http.client  # noqa: PLC0415

    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=20)
    try:
        conn.request("POST", path, body=body, headers=conn_headers)
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _csrf(service: Service) -> str:
    page = service.get("/inspect", bearer()).text()
    marker = 'name="csrf" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


def test_poll_now_refuses_cross_site_and_tokenless_posts(running: Running) -> None:
    """A POST from another origin, or without the form's token, is refused with 403."""
    service = running.service
    token = _csrf(service)
    assert _form(service, "/feeds/zaker/poll", {"csrf": token},
                 {"Origin": "http://evil.example"})[0] == 403  # fmt: skip
    assert _form(service, "/feeds/zaker/poll", {"csrf": token},
                 {"Sec-Fetch-Site": "cross-site"})[0] == 403  # fmt: skip
    assert _form(service, "/feeds/zaker/poll", {"csrf": token}, {"Origin": "null"})[0] == 403
    assert _form(service, "/feeds/zaker/poll", {})[0] == 403
    assert _form(service, "/feeds/zaker/poll", {"csrf": "forged"})[0] == 403


def test_poll_now_polls_at_once(running: Running) -> None:
    """A good POST answers 303 to the feed page and the feed is polled right away (its
    interval is ten minutes)."""
    service = running.service
    before = len(service.polls("zaker"))
    status, _ = _form(service, "/feeds/zaker/poll", {"csrf": _csrf(service)})
    assert status == 303
    service.wait_for_poll("zaker", after=before, timeout=10)


def test_playground_converts_and_fetches_nothing(running: Running) -> None:
    """A pasted feed is converted (its Atom and --explain report shown); a pasted URL is
    text, never fetched: the upstream sees no request for it."""
    service, upstream = running.service, running.upstream
    status, page = _form(service, "/inspect", {"csrf": _csrf(service), "text": ZAKER.decode(),
                                               "on": "sanitize"})  # fmt: skip
    assert status == 200, page
    assert "sanitize: 4 elements and attributes in 3 entries" in page
    assert "unwrap-proxies" not in page.split("--explain")[1].split("</pre>")[0]
    assert "&lt;feed xmlns=" in page
    upstream.script("/never.xml", up.feed(ZAKER))
    status, page = _form(service, "/inspect", {"csrf": _csrf(service),
                                               "text": upstream.url("/never.xml")})  # fmt: skip
    assert status in (200, 422)
    assert upstream.requests_for("/never.xml") == []


def test_playground_refuses_oversize_empty_and_forged(running: Running) -> None:
    """Over 1 MB: 413 saying so; nothing pasted: 400; no form token: 403."""
    service = running.service
    big = "<rss>" + "x" * 1_100_000 + "</rss>"
    status, page = _form(service, "/inspect", {"csrf": _csrf(service), "text": big})
    assert status == 413 and "larger than the 1000 kB" in page
    status, page = _form(service, "/inspect", {"csrf": _csrf(service), "text": "  "})
    assert status == 400 and "paste a feed" in page
    assert _form(service, "/inspect", {"text": "<rss/>"})[0] == 403


def test_playground_takes_an_upload(running: Running) -> None:
    """A file sent as multipart/form-data is converted like pasted text."""
    service = running.service
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{_csrf(service)}',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="on"\r\n\r\nfix-lazy-images',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="z.xml"\r\n'
        f"Content-Type: application/rss+xml\r\n\r\n{ZAKER.decode()}",
    ]
    body = ("\r\n".join(parts) + f"\r\n--{BOUNDARY}--\r\n").encode()
    import http.client  # noqa: PLC0415

    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=20)
    try:
        conn.request("POST", "/inspect", body=body, headers={
            **bearer(), "Origin": service.base_url,
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})  # fmt: skip
        answer = conn.getresponse()
        page = answer.read().decode()
    finally:
        conn.close()
    assert answer.status == 200, page
    assert "fix-lazy-images: 4 images in 3 entries" in page


def test_behind_a_proxy_every_subscribe_url_is_on_base_url(tmp_path: Path) -> None:
    """With ``[server] base_url`` set (feedfix behind a reverse proxy), the JSON index, the
    page and OPML all give readers the public URL, not the address feedfix listens on."""
    public = "https://feeds.example.com"
    with up.Upstream() as upstream:
        upstream.script("/zaker.xml", up.feed(ZAKER))
        feeds: list[dict[str, Any]] = [{"name": "zaker", "url": upstream.url("/zaker.xml")}]
        with Service(tmp_path, feeds, env={"FEEDFIX_SERVER__BASE_URL": public}) as service:
            service.wait_served("zaker")
            rows = service.get("/?format=json").json()["feeds"]
            assert [row["url"] for row in rows] == [f"{public}/feeds/zaker.atom"]
            assert f"{public}/feeds/zaker.atom" in service.get("/").text()
            assert f'xmlUrl="{public}/feeds/zaker.atom"' in service.get("/feeds.opml").text()


def test_advice_shows_code_not_backticks_and_rules_are_described_everywhere(
    running: Running,
) -> None:
    """The failing feed's advice on the index and its page: ``url`` as code, no raw
    backticks. The playground's rule checkboxes carry the same one-line descriptions as the
    inspector's (it had none)."""
    for path in ("/", "/feeds/broken"):
        page = running.service.get(path, bearer()).text()
        assert "What to do:" in page and "<code>url</code>" in page, path
        assert "`" not in page.split("<main", 1)[1], f"raw backticks on {path}"

    def descriptions(path: str) -> dict[str, str]:
        page = html.unescape(running.service.get(path, bearer()).text())
        return dict(re.findall(r'value="([a-z-]+)"[^>]*> [a-z-]+ <small>— ([^<]+)</small>', page))

    inspector = descriptions("/inspect/zaker")
    assert len(inspector) >= 4 and all(inspector.values())
    assert descriptions("/inspect") == inspector
