"""Who may see the pages, and which requests may change something.

``[server] admin_token``: when set, every route except the feeds themselves (``.atom``), the
image proxy (``/img/``), ``/healthz`` and the stylesheet asks for it, as HTTP Basic (any user
name) or ``Authorization: Bearer``; it is compared in constant time. A POST must come from the
pages themselves: its ``Sec-Fetch-Site`` (or ``Origin``) must be this site, and it must carry
the form's token, which a page of another site cannot read.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from urllib.parse import urlsplit

from aiohttp import web

OPEN_PATHS = re.compile(r"^/(?:feeds/[^/]+\.atom|img/.*|healthz|static/[^/]+)$")


def is_open(path: str) -> bool:
    """Whether a path stays open when an admin token is set (feeds, images, health, static)."""
    return OPEN_PATHS.match(path) is not None


def presented_token(header: str | None) -> str | None:
    """The token an ``Authorization`` header carries: Bearer, or Basic's password."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def authorized(header: str | None, token: str) -> bool:
    """Whether the request presents ``token`` (compared in constant time)."""
    given = presented_token(header)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def unauthorized() -> web.Response:
    """401 asking for the admin token (a browser shows its login box)."""
    return web.Response(
        status=401,
        text="this page needs the admin token ([server] admin_token)\n",
        headers={"WWW-Authenticate": 'Basic realm="feedfix", charset="UTF-8"'},
    )


class Csrf:
    """The token every form of this process carries, and the same-origin check of a POST."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(32)

    def same_origin(self, request: web.Request) -> bool:
        """The request says it comes from this site: ``Sec-Fetch-Site`` (set by the browser,
        a page cannot forge it), else ``Origin``; a client that sends neither is no browser
        and still needs the token."""
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site in ("same-origin", "none")
        origin = request.headers.get("Origin")
        if origin is not None:
            return origin != "null" and urlsplit(origin).netloc == request.host
        return True

    def check(self, request: web.Request, form_token: str | None) -> str | None:
        """Why a POST is refused, or None when it may go on."""
        if not self.same_origin(request):
            return "this form was sent from another site"
        if not form_token or not hmac.compare_digest(form_token.encode(), self.token.encode()):
            return "the form's token is missing or out of date: reload the page and try again"
        return None
