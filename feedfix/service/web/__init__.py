"""The web pages: the index, each feed's page, the inspector and the playground.

Server-rendered Jinja2 templates, one stylesheet and a few lines of script (copy buttons,
rule toggles that submit their form); every page reads without script. Article HTML is only
ever shown inside ``<iframe sandbox srcdoc>`` without ``allow-scripts``, under a page CSP
that allows no inline script at all. ``install`` adds the routes to the service's app:
``feeds.py`` (index, OPML, a feed's page, poll now), ``inspector.py`` (the inspector and the
playground), ``site.py`` (what they share).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from feedfix.service.catalog import Catalog
from feedfix.service.web import static_files
from feedfix.service.web.feeds import feed_page, index_page, opml, poll_now, rows, summary
from feedfix.service.web.guard import authorized, is_open, unauthorized
from feedfix.service.web.inspector import inspector, playground, playground_post
from feedfix.service.web.site import (
    CSP,
    WEB,
    ArchiveView,
    ServiceView,
    Web,
    client_max_size,
    environment,
)
from feedfix.service.web.views import ImageCache

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
    backend: ServiceView,
    catalog: Catalog,
    name_pattern: str,
    image_cache: Callable[[], ImageCache] | None = None,
    *,
    archive: ArchiveView | None = None,
) -> None:
    """Add the pages to ``app`` (after the feed route, which ``{name}.atom`` must match first);
    ``image_cache`` gives the index the image cache's figures when the proxy is on, and
    ``archive`` the index, the feed pages and the inspector the image archive's state."""
    web_parts = Web(backend, catalog, environment(), static_files.load(), image_cache)
    web_parts.archive = archive
    app[WEB] = web_parts
    app.on_cleanup.append(lambda app: app[WEB].offload.close())
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


__all__ = [
    "ArchiveView",
    "ImageCache",
    "ServiceView",
    "client_max_size",
    "index_page",
    "install",
    "rows",
    "summary",
]
