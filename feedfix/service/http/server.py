"""The HTTP side: precomputed feeds, an index, health and metrics.

Handlers only read the Catalog: no rendering, no database, no upstream request ever happens
because of a request, so nothing a client sends can make feedfix fetch anything. The one
exception is the image proxy's ``/img/`` (``feedfix.service.images``), which fetches only
URLs feedfix itself signed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from feedfix import __version__
from feedfix.service.catalog import Catalog, Status
from feedfix.service.image_archive import plain
from feedfix.service.metrics import CONTENT_TYPE, Metrics
from feedfix.service.served import ServedFeed, http_date
from feedfix.service.web import (
    ArchiveView,
    ImageCache,
    ServiceView,
    client_max_size,
    index_page,
    install,
    rows,
    summary,
)
from feedfix.service.web.site import WEB

CATALOG = web.AppKey("catalog", Catalog)
METRICS = web.AppKey("metrics", Metrics)
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
FIRST_POLL_RETRY = 5  # seconds: Retry-After of a 503 while a feed's first poll is under way


async def feed(request: web.Request) -> web.Response:
    """``GET /feeds/{name}.atom`` (``.rss``, ``.json``): the cleaned feed, 304 when the
    client has it.

    The service answers most of these before aiohttp sees them (``fastpath.py``); this handler
    is the same logic for what the fast path hands over (404, 503, unusual requests).
    """
    catalog, metrics = request.app[CATALOG], request.app[METRICS]
    name = request.match_info["name"]
    served = catalog.served.get(name)
    if served is None:
        known = catalog.status.get(name)
        status = 503 if known is not None else 404
        # open to all (admin_token or not): the upstream's credentials masked, as on the pages
        text = (
            request.app[WEB].masker.text(_no_copy(known)) if known is not None else "no such feed\n"
        )
        metrics.requests.labels("feed", str(status)).inc()
        headers = {"Retry-After": _retry_after(known)} if status == 503 else None
        return web.Response(status=status, text=text, headers=headers)
    other = catalog.other_format(served, request.match_info["fmt"])
    if not isinstance(other, ServedFeed):  # rendered now: the first request since a change
        try:
            other = await asyncio.shield(other)  # a reader who leaves cancels no one's render
        except Exception:  # logged where it failed
            metrics.requests.labels("feed", "500").inc()
            return web.Response(status=500, text=f"{name}: could not render this format\n")
    reply = other.answer(
        request.headers.get("If-None-Match"),
        request.headers.get("If-Modified-Since"),
        request.headers.get("Accept-Encoding"),
    )
    metrics.requests.labels("feed", str(reply.status)).inc()
    return web.Response(status=reply.status, body=reply.body or None, headers=reply.headers)


def _no_copy(status: Status) -> str:
    """The 503 body: why there is no copy yet, and what to do about it."""
    if status.state.last_error is None:
        due = status.state.next_poll
        if due is None or due <= time.time():
            return f"no good copy of {status.name} yet: its first poll is under way\n"
        return f"no good copy of {status.name} yet: the first poll is due at {_iso(due)}\n"
    lines = [f"no good copy of {status.name} yet: {status.state.last_error}"]
    if status.advice:
        lines.append(status.advice)
    return "\n".join(lines) + "\n"


def _retry_after(status: Status | None) -> str:
    """Seconds a reader should wait after a 503: a few while the first poll is under way
    (it was started at once), a minute after a failure."""
    if status is not None and status.state.last_error is None:
        return str(FIRST_POLL_RETRY)
    return "60"


def _serving(status: Status) -> str | None:
    """Which copy a stale feed serves."""
    if status.state.stale_since is None:
        return None
    return f"serving the copy from {_iso(status.state.last_success) or 'an earlier run'}"


def _iso(epoch: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def _rows(request: web.Request) -> list[dict[str, Any]]:
    """The index page's rows (secrets masked, subscribe URLs on ``base_url``) as JSON."""
    return [
        {
            "name": row.name,
            "url": row.subscribe,
            "urls": {f.fmt: f.url for f in row.formats},
            "upstream": row.upstream,
            "ok": s.ok,
            "stale": s.state.stale_since is not None,
            "stale_since": _iso(s.state.stale_since),
            "last_success": _iso(s.state.last_success),
            "last_error": s.state.last_error,
            "last_error_at": _iso(s.state.last_error_at),
            "entries": s.entries,
            "next_poll": _iso(s.state.next_poll),
            "permanent_redirect": s.state.permanent_redirect,
            "advice": s.advice,
            "serving": _serving(s),
        }
        for row in rows(request)
        for s in (row.status,)
    ]


async def index(request: web.Request) -> web.Response:
    """``GET /``: the feeds as an HTML page (``web/``), or JSON with ``?format=json``: the
    same facts, the summary line, the image cache and the shared store's state included."""
    request.app[METRICS].requests.labels("index", "200").inc()
    if request.query.get("format") != "json":
        return await index_page(request)
    said = summary(request, rows(request))
    cache = said.image_cache
    return web.json_response(
        {
            "version": __version__,
            "summary": {
                "feeds": said.feeds,
                "failing": said.failing,
                "polls_last_hour": said.polls_last_hour,
            },
            "image_cache": None
            if cache is None
            else {**dataclasses.asdict(cache), "hit_rate": cache.hit_rate},
            "image_archive": None if said.image_archive is None else plain(said.image_archive),
            "store": {"ok": said.store_error is None, "error": said.store_error},
            "feeds": _rows(request),
        }
    )


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 while serving, with a row per feed."""
    feeds = [
        {k: r[k] for k in ("name", "ok", "stale", "last_success", "last_error")}
        for r in _rows(request)
    ]
    request.app[METRICS].requests.labels("healthz", "200").inc()
    catalog = request.app[CATALOG]
    store = {"ok": catalog.store_error is None, "error": catalog.store_error}
    return web.json_response({"status": "ok", "store": store, "feeds": feeds})


async def metrics_page(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format."""
    metrics = request.app[METRICS]
    metrics.requests.labels("metrics", "200").inc()
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(
    catalog: Catalog,
    metrics: Metrics,
    backend: ServiceView,
    images: Handler | None = None,
    image_cache: Callable[[], ImageCache] | None = None,
    *,
    archive: ArchiveView | None = None,
) -> web.Application:
    """The application, with its routes (GET and HEAD) and the web pages (``backend``, the
    poller, gives them the config, the store and "poll now"); ``/img/`` goes to ``images``
    when the image proxy is on, the index shows ``image_cache()``'s figures, and the index,
    the feed pages and the inspector the image ``archive``'s state when it is on."""
    app = web.Application(client_max_size=client_max_size())
    app[CATALOG] = catalog
    app[METRICS] = metrics
    if images is not None:
        app.router.add_get("/img/{rest:.*}", images)
    app.router.add_get(f"/feeds/{{name:{NAME_PATTERN}}}.{{fmt:atom|rss|json}}", feed)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    install(app, backend, catalog, NAME_PATTERN, image_cache, archive=archive)
    return app


__all__ = ["http_date", "make_app"]
