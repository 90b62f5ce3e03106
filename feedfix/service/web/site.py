"""What every page shares: the running service as the pages see it, the templates, the
page security policy, and the one-line error page."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import jinja2
from aiohttp import web

from feedfix.config import Config, FeedConfig
from feedfix.service.catalog import Catalog
from feedfix.service.image_archive import ArchiveSummary, ImageRow
from feedfix.service.masking import Masker, masker_for
from feedfix.service.store import Store
from feedfix.service.web import static_files, views
from feedfix.service.web.guard import Csrf
from feedfix.service.web.offload import Offload

PLAYGROUND_MAX = 1_000_000  # bytes a pasted or uploaded document may have
FORM_SLACK = 64 * 1024  # what a multipart form adds around the document
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


class ServiceView(Protocol):
    """What the pages need of the running service (the ``Poller`` is one)."""

    @property
    def config(self) -> Config:
        """The running config (it changes on reload)."""

    @property
    def store(self) -> Store:
        """The store, for poll history and the last sources."""

    def poll_now(self, name: str) -> bool:
        """Move a feed's next poll to now; False when there is no such feed."""


class ArchiveView(Protocol):
    """What the pages show of the image archive (the archiver is one), when it is on."""

    def overview(self) -> ArchiveSummary:
        """The whole archive, as last read."""

    def words(self) -> str:
        """The whole archive in words (size, count, what could not be kept; a full one)."""

    async def feed_summary(self, feed: str) -> ArchiveSummary:
        """One feed's part of the archive."""

    async def feed_failures(self, feed: str, limit: int = 100) -> list[ImageRow]:
        """One feed's images whose last attempt failed."""

    async def entry_images(self, feed: str, entries: Sequence[str]) -> dict[str, list[ImageRow]]:
        """Each entry's images and their states."""


@dataclass
class Web:
    """The pages' shared parts."""

    backend: ServiceView
    catalog: Catalog
    env: jinja2.Environment
    static: dict[str, static_files.StaticFile]
    image_cache: Callable[[], views.ImageCache] | None = None  # its figures, proxy on
    archive: ArchiveView | None = None  # the image archive, when [images] archive is on
    csrf: Csrf = field(default_factory=Csrf)
    offload: Offload = field(default_factory=Offload)  # the playground's and inspector's work
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

    def subscribe_url(self, request: web.Request, name: str, fmt: str = "atom") -> str:
        """Where readers get the cleaned feed (in format ``fmt``: atom, rss or json)."""
        base = self.backend.config.server.base_url or f"{request.scheme}://{request.host}"
        return f"{base.rstrip('/')}/feeds/{name}.{fmt}"


WEB = web.AppKey("web", Web)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("feedfix.service.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=views.when,
        duration=views.duration,
        size=views.size,
        unit=views.unit,
        counted=views.counted,
        code=views.with_code,
    )
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


def client_max_size() -> int:
    """The largest request body the app reads: the playground's document and its form."""
    return PLAYGROUND_MAX + FORM_SLACK
