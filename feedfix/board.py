"""What the service is serving right now: the precomputed responses and each feed's status.

Written by the poller, read by the HTTP handlers. A response is built once, when a feed's
bytes change (compressed once, headers formatted once), so a request costs a dict lookup.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from email.utils import formatdate

from feedfix.store import Published

ATOM_TYPE = "application/atom+xml; charset=utf-8"


def http_date(epoch: float) -> str:
    """An IMF-fixdate, as HTTP headers want it."""
    return formatdate(epoch, usegmt=True)


def make_published(body: bytes, entries: int, now: float) -> Published:
    """Bytes made ready to serve: strong ETag from the content, gzip made once."""
    digest = hashlib.sha256(body).hexdigest()[:32]
    compressed = gzip.compress(body, compresslevel=6, mtime=0)  # mtime 0: same bytes, same gzip
    return Published(body=body, gzip=compressed, etag=f'"{digest}"', last_modified=now,
                     entries=entries)  # fmt: skip


@dataclass(frozen=True)
class Served:
    """One feed's two representations (identity, gzip) with their headers."""

    published: Published
    identity_headers: dict[str, str]
    gzip_headers: dict[str, str]
    stale_since: float | None

    @classmethod
    def of(cls, published: Published, max_age: float, stale_since: float | None) -> Served:
        """Format every header once."""
        common = {
            "Content-Type": ATOM_TYPE,
            "Last-Modified": http_date(published.last_modified),
            "Cache-Control": f"public, max-age={int(max_age)}",
            "Vary": "Accept-Encoding",
        }
        if stale_since is not None:
            common["X-Feedfix-Stale"] = http_date(stale_since)
        gz_etag = published.etag[:-1] + '-gz"'  # a strong ETag per representation
        return cls(
            published=published,
            identity_headers={**common, "ETag": published.etag},
            gzip_headers={**common, "ETag": gz_etag, "Content-Encoding": "gzip"},
            stale_since=stale_since,
        )


@dataclass
class Status:
    """A feed's row in the index and in /healthz."""

    name: str
    upstream: str
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    entries: int = 0
    next_poll: float | None = None
    stale_since: float | None = None
    permanent_redirect: str | None = None

    @property
    def ok(self) -> bool:
        """A poll has succeeded, and none has failed since."""
        if self.last_success is None:
            return False
        return self.last_error_at is None or self.last_success >= self.last_error_at


@dataclass
class Board:
    """The served responses and statuses, by feed name."""

    served: dict[str, Served] = field(default_factory=dict)
    status: dict[str, Status] = field(default_factory=dict)

    def publish(self, name: str, served: Served | None, status: Status) -> None:
        """Replace a feed's response (when there is one) and its status."""
        if served is not None:
            self.served[name] = served
        self.status[name] = status

    def remove(self, name: str) -> None:
        """Forget a feed that left the config."""
        self.served.pop(name, None)
        self.status.pop(name, None)
