"""The stylesheet and the script, read once at start and served with ETags, cached for a
year (their URLs carry their hash, so a new version is a new URL)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from aiohttp import web

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".svg": "image/svg+xml"}  # fmt: skip
YEAR = 365 * 86400


@dataclass(frozen=True)
class StaticFile:
    """One file's bytes, ETag and type."""

    body: bytes
    etag: str
    content_type: str

    @property
    def version(self) -> str:
        """The part of the ETag a URL carries (``/static/style.css?v=…``)."""
        return self.etag.strip('"')[:12]


def load() -> dict[str, StaticFile]:
    """Every file of the package's ``static`` folder."""
    found = {}
    for item in files("feedfix.service.web").joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in TYPES:
            body = item.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            found[item.name] = StaticFile(body, etag, TYPES[suffix])
    return found


def answer(request: web.Request, found: dict[str, StaticFile]) -> web.Response:
    """``GET /static/{file}``: the file, 304 when the client has it, 404 when there is none."""
    item = found.get(request.match_info["file"])
    if item is None:
        return web.Response(status=404, text="no such file\n")
    headers = {"ETag": item.etag, "Cache-Control": f"public, max-age={YEAR}, immutable"}
    asked = request.headers.get("If-None-Match", "")
    tags = {t.strip().removeprefix("W/") for t in asked.split(",")}
    if item.etag in tags:
        return web.Response(status=304, headers=headers)
    return web.Response(body=item.body, headers={**headers, "Content-Type": item.content_type})
