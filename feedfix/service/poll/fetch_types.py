"""What a fetch asks, what it answers, and how it fails: plain types, importable without aiohttp.

The poll decision (``decide.py``) reads these and must stay free of the network, so they live
apart from the fetcher. Each failure is a class under one root, ``FetchError``; its ``kind``
(the label of ``feedfix_poll_errors``) is a class attribute, so a kind cannot be misspelt at
a raise site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from feedfix.core.errors import FeedfixError


class FetchError(FeedfixError):
    """The upstream could not be fetched; ``kind`` sorts failures for metrics and health."""

    kind: ClassVar[str] = "network"
    status: int | None = None  # the upstream's HTTP status, when it answered with one
    retry_after: str | None = None  # its Retry-After header, as sent


class FetchTimeout(FetchError):
    """No connection, or no complete answer, within the configured time."""

    kind = "timeout"


class ConnectFailed(FetchError):
    """The connection could not be made: refused, unreachable, a name that does not resolve."""

    kind = "connect"


class HttpStatusError(FetchError):
    """The upstream answered with a status other than 200 or 304 (a 4xx, a 5xx, a 429)."""

    kind = "http"

    def __init__(self, message: str, status: int, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BadResponse(FetchError):
    """The upstream's answer was not valid HTTP (a malformed status line or header)."""

    kind = "http"


class TooLarge(FetchError):
    """The body, counted after decompression, is over the feed's ``max_size``."""

    kind = "too-large"


class RedirectRefused(FetchError):
    """A redirect to a non-web scheme, or from the feed's host to an internal address."""

    kind = "redirect"


class TooManyRedirects(FetchError):
    """More redirects in a row than ``[poll] max_redirects``."""

    kind = "redirects"


class BodyError(FetchError):
    """The body was cut short or could not be decoded (a broken transfer or encoding)."""

    kind = "body"


class NetworkError(FetchError):
    """Any other failure of the connection while asking or reading."""

    kind = "network"


class SourceUnreadable(FetchError):
    """A local source (``path``) is missing, unreadable, or holds no posts."""

    kind = "file"


@dataclass(frozen=True)
class PostFile:
    """One file of a folder source, as read: its name below the folder and its bytes, or
    why it could not be read (the cleaning worker skips it with a warning)."""

    name: str
    data: bytes
    error: str | None = None


@dataclass(frozen=True)
class FetchRequest:
    """One conditional GET and its limits."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_size: int = 10 * 1000 * 1000
    user_agent: str = "feedfix"
    headers: tuple[tuple[str, str], ...] = ()
    max_redirects: int = 5
    allow_private_redirects: bool = False


@dataclass(frozen=True)
class FetchResult:
    """A 200 with its body, or a 304 without one."""

    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    charset: str | None
    content_type: str | None
    cache_control: str | None
    retry_after: str | None
    final_url: str
    permanent_redirect: str | None
    elapsed: float
    posts: tuple[PostFile, ...] | None = None  # a folder source's files (``body`` is empty)

    @property
    def size(self) -> int:
        """Bytes read: the body, or a folder's post files together."""
        return len(self.body) + sum(len(post.data) for post in self.posts or ())
