"""The index, OPML, each feed's page and "poll now": each reads what it shows (the catalog,
a few store rows) and renders it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

from aiohttp import web
from lxml import etree

from feedfix.core.render import FEED_TYPES
from feedfix.core.rules import ruleset
from feedfix.service.catalog import Activity, Status
from feedfix.service.image_archive import STATE_WORDS, ArchiveSummary
from feedfix.service.masking import MASK
from feedfix.service.web import views
from feedfix.service.web.site import WEB, error_page, render

HISTORY_SHOWN = 50  # poll records on a feed's page (and read from the store for it)
FAILURES_SHOWN = 100  # images that could not be archived, listed on a feed's page


FORMATS = (("atom", "Atom"), ("rss", "RSS"), ("json", "JSON Feed"))  # as the pages name them


@dataclass(frozen=True)
class Subscribe:
    """A feed's address in one format, as the pages offer it (and ``<head>`` announces it)."""

    fmt: str
    label: str  # Atom, RSS, JSON Feed
    url: str
    type: str  # its media type


@dataclass(frozen=True)
class Row:
    """A feed as the index shows it."""

    name: str
    status: Status
    state: views.State
    upstream: str
    subscribe: str  # the Atom's address
    not_modified_share: float | None
    formats: tuple[Subscribe, ...] = ()  # its address in every format, Atom first


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
                formats=subscribe(request, status.name),
            )
        )
    return found


def subscribe(request: web.Request, name: str) -> tuple[Subscribe, ...]:
    """A feed's address in every format."""
    site = request.app[WEB]
    return tuple(
        Subscribe(fmt, label, site.subscribe_url(request, name, fmt), FEED_TYPES[fmt])
        for fmt, label in FORMATS
    )


def alternates(shown: list[Row]) -> list[Subscribe]:
    """The ``<link rel="alternate">`` of the pages' ``<head>``: each feed in each format,
    titled with its name, for browsers' and readers' feed discovery."""
    return [
        Subscribe(f.fmt, f"{row.name} ({f.label})", f.url, f.type)
        for row in shown
        for f in row.formats
    ]


@dataclass(frozen=True)
class Summary:
    """What the index says above the feeds; its JSON says the same."""

    feeds: int
    failing: int  # failing, or stale
    polls_last_hour: int
    image_cache: views.ImageCache | None  # when the image proxy is on
    store_error: str | None  # replicas on Redis: why the shared store does not answer
    image_archive: ArchiveSummary | None = None  # when the archive is on ...
    image_archive_words: str | None = None  # ... and the same in words


def summary(request: web.Request, shown: list[Row]) -> Summary:
    """The index's summary of ``shown`` (its rows), secrets masked."""
    site = request.app[WEB]
    hour_ago = time.time() - 3600
    return Summary(
        feeds=len(shown),
        failing=sum(1 for r in shown if r.state.key in ("failing", "stale")),
        polls_last_hour=sum(1 for started in site.catalog.recent_polls if started >= hour_ago),
        image_cache=site.image_cache() if site.image_cache is not None else None,
        store_error=site.masker.optional(site.catalog.store_error),
        image_archive=site.archive.overview() if site.archive is not None else None,
        image_archive_words=site.archive.words() if site.archive is not None else None,
    )


async def index_page(request: web.Request) -> web.Response:
    """``GET /`` as HTML: every feed at a glance."""
    shown = rows(request)
    return render(
        request,
        "index.html",
        rows=shown,
        summary=summary(request, shown),
        alternates=alternates(shown),
    )


async def opml(request: web.Request) -> web.Response:
    """``GET /feeds.opml``: every served feed, to import into a reader at once (OPML 2.0);
    ``?format=rss`` (or ``json``, ``atom``, the default) lists that format's addresses."""
    site = request.app[WEB]
    fmt = request.query.get("format", "atom")
    if fmt not in FEED_TYPES:
        return error_page(request, 400, f"no format {fmt!r}: atom, rss or json")
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = "feedfix feeds"
    body = etree.SubElement(root, "body")
    for name in sorted(site.catalog.served):
        etree.SubElement(
            body,
            "outline",
            type="rss",
            text=name,
            title=name,
            xmlUrl=site.subscribe_url(request, name, fmt),
        )
    data = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return web.Response(
        body=data,
        headers={
            "Content-Type": "text/x-opml; charset=utf-8",
            "Content-Disposition": 'inline; filename="feedfix.opml"',
        },
    )


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
    archive = failures = None
    if site.archive is not None:
        archive = await site.archive.feed_summary(name)
        failures = [
            replace(r, url=masker.text(r.url), error=masker.optional(r.error))
            for r in await site.archive.feed_failures(name, FAILURES_SHOWN)
        ]
    return render(
        request,
        "feed.html",
        archive=archive,
        failures=failures,
        state_words=STATE_WORDS,
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
        alternates=alternates([row]),
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
