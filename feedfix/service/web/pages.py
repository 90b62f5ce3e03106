"""The page handlers: each reads what it shows (the catalog, a few store rows) and renders it.

Nothing here fetches anything: the playground converts only the bytes it is given, and the
inspector the entries the store kept from the last poll. The work that cleans entries runs
in a thread, so the event loop keeps serving feeds meanwhile.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import jinja2
from aiohttp import web
from lxml import etree

from feedfix.config import Config, FeedConfig
from feedfix.core.errors import FeedfixError
from feedfix.core.inspect import Inspection, inspect_entry, without
from feedfix.core.model import Entry
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.pipeline import ConvertOptions, convert_feed, with_metadata
from feedfix.core.rules import RULES, RuleSet, build_ruleset, ruleset
from feedfix.service.catalog import Activity, Catalog, Status
from feedfix.service.masking import MASK, Masker, mask_url, masker_for
from feedfix.service.store import SOURCES_KEPT, Store
from feedfix.service.web import static_files, views
from feedfix.service.web.guard import Csrf, authorized, is_open, unauthorized

HISTORY_SHOWN = 50  # poll records on a feed's page (and read from the store for it)
INSPECT_SHOWN = 10  # entries of the last poll on the inspector page (and read for it)
PLAYGROUND_MAX = 1_000_000  # bytes a pasted or uploaded document may have
PLAYGROUND_SHOWN = 50  # entries shown side by side in the playground
ATOM_SHOWN = 200_000  # characters of the playground's Atom shown on the page
FORM_SLACK = 64 * 1024  # what a multipart form adds around the document
TOO_LARGE = f"the document is larger than the {PLAYGROUND_MAX // 1000} kB the playground takes"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src * data:; media-src *; font-src 'self'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)  # no inline script anywhere: the only script is /static/app.js
SRCDOC_HEAD = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><meta name='referrer' "
    "content='no-referrer'><style>body{font:15px/1.5 system-ui,sans-serif;margin:.5em;"
    "overflow-wrap:anywhere}img,video,iframe{max-width:100%;height:auto}"
    "@media (prefers-color-scheme:dark){body{background:#1b1d21;color:#e6e6e6}a{color:#8ab4ff}}"
    "</style></head><body>"
)


class Backend(Protocol):
    """What the pages need of the running service (the ``Poller`` is one)."""

    @property
    def config(self) -> Config:
        """The running config (it changes on reload)."""

    @property
    def store(self) -> Store:
        """The store, for poll history and the last sources."""

    def poll_now(self, name: str) -> bool:
        """Move a feed's next poll to now; False when there is no such feed."""


@dataclass
class Web:
    """The pages' shared parts."""

    backend: Backend
    catalog: Catalog
    env: jinja2.Environment
    static: dict[str, static_files.StaticFile]
    image_summary: Callable[[], str] | None = None  # the image cache in a line, proxy on
    csrf: Csrf = field(default_factory=Csrf)
    _masker: tuple[int, Masker] | None = None

    @property
    def masker(self) -> Masker:
        """The running config's secrets (made again after a reload)."""
        config = self.backend.config
        if self._masker is None or self._masker[0] != id(config):
            self._masker = (id(config), masker_for(config))
        return self._masker[1]

    def feed(self, name: str) -> FeedConfig | None:
        """A configured feed by name."""
        return next((f for f in self.backend.config.feeds if f.name == name), None)

    def subscribe_url(self, request: web.Request, name: str) -> str:
        """Where readers get the cleaned feed."""
        base = self.backend.config.server.base_url or f"{request.scheme}://{request.host}"
        return f"{base.rstrip('/')}/feeds/{name}.atom"


WEB = web.AppKey("web", Web)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("feedfix.service.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=views.when, duration=views.duration, size=views.size, unit=views.unit)
    return env


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A page from its template, with the parts every page uses."""
    site = request.app[WEB]
    static = {name: f"/static/{name}?v={item.version}" for name, item in site.static.items()}
    text = site.env.get_template(template).render(
        static=static, csrf=site.csrf.token, now=time.time(), ago=views.ago, **context
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """A one-line error, as a page."""
    return render(request, "error.html", status=status, status_code=status, message=message)


# ---- the index and OPML ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A feed as the index shows it."""

    name: str
    status: Status
    state: views.State
    upstream: str
    subscribe: str
    not_modified_share: float | None


def rows(request: web.Request) -> list[Row]:
    """Every feed, by name, with its secrets masked."""
    site = request.app[WEB]
    masker = site.masker
    found = []
    for status in sorted(site.catalog.status.values(), key=lambda s: s.name):
        state = replace(
            status.state,
            last_error=masker.optional(status.state.last_error),
            permanent_redirect=masker.optional(status.state.permanent_redirect),
        )
        shown = replace(status, state=state, advice=masker.optional(status.advice))
        activity = site.catalog.activity.get(status.name, Activity())
        found.append(
            Row(
                name=status.name,
                status=shown,
                state=views.state_of(shown),
                upstream=masker.text(status.upstream),
                subscribe=site.subscribe_url(request, status.name),
                not_modified_share=activity.not_modified_share,
            )
        )
    return found


async def index_page(request: web.Request) -> web.Response:
    """``GET /`` as HTML: every feed at a glance."""
    site = request.app[WEB]
    shown = rows(request)
    hour_ago = time.time() - 3600
    recent = sum(1 for started in site.catalog.recent_polls if started >= hour_ago)
    failing = sum(1 for r in shown if r.state.key in ("failing", "stale"))
    image_cache = site.image_summary() if site.image_summary is not None else None
    store_error = site.masker.optional(site.catalog.store_error)  # replicas on Redis
    return render(
        request,
        "index.html",
        rows=shown,
        failing=failing,
        recent=recent,
        image_cache=image_cache,
        store_error=store_error,
    )


async def opml(request: web.Request) -> web.Response:
    """``GET /feeds.opml``: every served feed, to import into a reader at once (OPML 2.0)."""
    site = request.app[WEB]
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = "feedfix feeds"
    body = etree.SubElement(root, "body")
    for name in sorted(site.catalog.served):
        etree.SubElement(body, "outline", type="rss", text=name, title=name,
                         xmlUrl=site.subscribe_url(request, name))  # fmt: skip
    data = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return web.Response(
        body=data,
        headers={
            "Content-Type": "text/x-opml; charset=utf-8",
            "Content-Disposition": 'inline; filename="feedfix.opml"',
        },
    )


# ---- a feed's page and "poll now" -------------------------------------------------------


async def feed_page(request: web.Request) -> web.Response:
    """``GET /feeds/{name}``: history, rule changes, validators, the next poll and why."""
    site = request.app[WEB]
    name = request.match_info["name"]
    feed, status = site.feed(name), site.catalog.status.get(name)
    if feed is None or status is None:
        return error_page(request, 404, f"no feed named {name!r}")
    loop = asyncio.get_running_loop()
    history = await loop.run_in_executor(None, site.backend.store.history, name, HISTORY_SHOWN)
    masker = site.masker
    history = [replace(r, error=masker.optional(r.error)) for r in history]
    row = next(r for r in rows(request) if r.name == name)
    activity = site.catalog.activity.get(name, Activity())
    served = site.catalog.served.get(name)
    asked = _float(request.query.get("asked"))
    waiting = asked is not None and (not history or history[0].started < asked)
    poll = site.backend.config.poll
    return render(
        request,
        "feed.html",
        row=row,
        feed=feed,
        history=history,
        bars=views.chart(history),
        chart_width=views.CHART_WIDTH,
        chart_height=views.CHART_HEIGHT,
        outcome_words=views.OUTCOME_WORDS,
        activity=activity,
        rules=ruleset(feed.rules).names,
        served=served,
        headers=[(key, MASK) for key, _ in feed.headers],
        reason=views.next_poll_reason(status, feed, poll, history[0] if history else None),
        asked=asked,
        waiting=waiting,
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


async def poll_now(request: web.Request) -> web.Response:
    """``POST /feeds/{name}/poll``: poll the feed now, then show its page (which waits for
    the outcome)."""
    site = request.app[WEB]
    form = await request.post()
    token = form.get("csrf")
    refused = site.csrf.check(request, token if isinstance(token, str) else None)
    if refused:
        return error_page(request, 403, refused)
    name = request.match_info["name"]
    if not site.backend.poll_now(name):
        return error_page(request, 404, f"no feed named {name!r}")
    raise web.HTTPSeeOther(f"/feeds/{name}?asked={time.time():.3f}")


# ---- the inspector ----------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One entry in the side-by-side view."""

    inspection: Inspection
    source_doc: str  # srcdoc of the sandboxed frames
    cleaned_doc: str


_HANDLER = re.compile(r"(<[A-Za-z][^>]*?[\s/\"'])(on[A-Za-z]+)", re.S)


def inert(markup: str) -> str:
    """The source as the rendered view shows it: every ``on…`` attribute renamed
    (``data-inert-onclick``). The sandbox already keeps them from running; renamed, they
    do not even ask to (a browser logs each handler a sandbox refuses)."""
    previous = None
    while previous != markup:
        previous, markup = markup, _HANDLER.sub(r"\1data-inert-\2", markup)
    return markup


def _shown(inspection: Inspection) -> Shown:
    return Shown(
        inspection,
        SRCDOC_HEAD + inert(inspection.source),
        SRCDOC_HEAD + inert(inspection.cleaned),
    )


def _shown_count(text: str | None) -> int:
    """``?show=N``: how many entries to show (and read), from 1 to ``SOURCES_KEPT``."""
    try:
        wanted = int(text) if text else INSPECT_SHOWN
    except ValueError:
        wanted = INSPECT_SHOWN
    return max(1, min(wanted, SOURCES_KEPT))


def chosen_rules(request: web.Request, available: RuleSet) -> tuple[RuleSet, set[str]]:
    """The rules the page's toggles leave on (all of them until the form is sent)."""
    if "toggled" not in request.query:
        return available, set()
    on = set(request.query.getall("on", []))
    off = {name for name in available.names if name not in on}
    return without(available, off), off


def inspect_entries(entries: list[Entry], rules: RuleSet, base: str | None) -> list[Shown]:
    """Every entry through the rules, one rule at a time (run in a thread)."""
    return [_shown(inspect_entry(entry, rules, base)) for entry in entries]


async def inspector(request: web.Request) -> web.Response:
    """``GET /inspect/{name}``: the last poll's entries, as received and as cleaned."""
    site = request.app[WEB]
    name = request.match_info["name"]
    feed = site.feed(name)
    if feed is None:
        return error_page(request, 404, f"no feed named {name!r}")
    loop = asyncio.get_running_loop()
    show = _shown_count(request.query.get("show"))
    sources = await loop.run_in_executor(None, site.backend.store.sources, name, show)
    available = ruleset(feed.rules)
    rules, off = chosen_rules(request, available)
    shown = await loop.run_in_executor(None, inspect_entries, sources, rules, feed.url)
    upstream = mask_url(feed.url) if feed.url else feed.source
    return render(
        request,
        "inspect.html",
        name=name,
        show=show,
        upstream=upstream,
        entries=shown,
        available=available.names,
        off=off,
        descriptions={n: RULES[n].help().split("\n", 1)[0] for n in available.names},
    )


# ---- the playground ---------------------------------------------------------------------


@dataclass(frozen=True)
class Converted:
    """What the playground made of a document."""

    atom: str
    truncated: bool
    explain: str
    entries: list[Shown]
    warnings: tuple[str, ...]


def convert_document(data: bytes, name: str, rules: RuleSet) -> Converted:
    """Parse, clean and render a pasted document, and inspect its first entries (in a
    thread). Parsing is the core's: it reads no URL and fetches nothing."""
    options = ConvertOptions(rules=rules, parse=ParseOptions())
    parsed = with_metadata(parse_document(data, name, options.parse), options)
    result = convert_feed(parsed, options)
    atom = result.atom.decode("utf-8")
    shown = inspect_entries(list(parsed.entries[:PLAYGROUND_SHOWN]), rules, None)
    return Converted(
        atom=atom[:ATOM_SHOWN],
        truncated=len(atom) > ATOM_SHOWN,
        explain=views.explain(result.report),
        entries=shown,
        warnings=result.warnings,
    )


def _playground(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    available = build_ruleset()
    context.setdefault("off", set())
    context.setdefault("text", "")
    context.setdefault("result", None)
    context.setdefault("error", None)
    return render(request, "playground.html", status=status, available=available.names,
                  max_size=views.size(PLAYGROUND_MAX), **context)  # fmt: skip


async def playground(request: web.Request) -> web.Response:
    """``GET /inspect``: the form."""
    return _playground(request)


async def playground_post(request: web.Request) -> web.Response:
    """``POST /inspect``: convert what was pasted or uploaded (never a URL: nothing is fetched)."""
    site = request.app[WEB]
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        return _playground(request, 413, error=TOO_LARGE)
    token = form.get("csrf")
    refused = site.csrf.check(request, token if isinstance(token, str) else None)
    if refused:
        return error_page(request, 403, refused)
    upload = form.get("file")
    text = form.get("text")
    text = text if isinstance(text, str) else ""
    if isinstance(upload, web.FileField) and upload.filename:
        data, name = upload.file.read(PLAYGROUND_MAX + 1), upload.filename
    else:
        # a browser sends a textarea's lines ending in CRLF; the post as written had LF
        data, name = text.replace("\r\n", "\n").encode("utf-8"), "pasted"
    available = build_ruleset()
    on = set(form.getall("on", []))
    off = {n for n in available.names if n not in on}
    if len(data) > PLAYGROUND_MAX:
        return _playground(request, 413, text=text, off=off, error=TOO_LARGE)
    if not data.strip():
        return _playground(request, 400, text=text, off=off,
                           error="paste a feed or a post, or choose a file")  # fmt: skip
    loop = asyncio.get_running_loop()
    try:
        result = await loop.run_in_executor(
            None, convert_document, data, name, without(available, off)
        )
    except FeedfixError as exc:
        return _playground(request, 422, text=text, off=off, error=f"{name}: {exc}")
    return _playground(request, text=text, off=off, result=result)


# ---- wiring -----------------------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The admin token where one is set, and the pages' security headers."""
    site = request.app[WEB]
    token = site.backend.config.server.admin_token
    if (
        token
        and not is_open(request.path)
        and not authorized(request.headers.get("Authorization"), token)
    ):
        return unauthorized()
    response = await handler(request)
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def install(
    app: web.Application,
    backend: Backend,
    catalog: Catalog,
    name_pattern: str,
    image_summary: Callable[[], str] | None = None,
) -> None:
    """Add the pages to ``app`` (after the feed route, which ``{name}.atom`` must match first);
    ``image_summary`` tells the index about the image cache when the proxy is on."""
    app[WEB] = Web(backend, catalog, _env(), static_files.load(), image_summary)
    app.middlewares.append(guard)
    found = app[WEB].static

    async def static(request: web.Request) -> web.Response:
        return static_files.answer(request, found)

    app.router.add_get("/feeds.opml", opml)
    app.router.add_get(f"/feeds/{{name:{name_pattern}}}", feed_page)
    app.router.add_post(f"/feeds/{{name:{name_pattern}}}/poll", poll_now)
    app.router.add_get("/inspect", playground)
    app.router.add_post("/inspect", playground_post)
    app.router.add_get(f"/inspect/{{name:{name_pattern}}}", inspector)
    app.router.add_get("/static/{file}", static)


def client_max_size() -> int:
    """The largest request body the app reads: the playground's document and its form."""
    return PLAYGROUND_MAX + FORM_SLACK


__all__ = ["WEB", "Backend", "client_max_size", "index_page", "install"]
