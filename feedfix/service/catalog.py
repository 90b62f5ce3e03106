"""What the service is serving right now: the precomputed responses and each feed's status.

Written by the poller, read by the HTTP handlers. A response is built once, when a feed's
bytes change (compressed once, headers formatted once), so a request costs a dict lookup;
only a request without gzip may cost an inflation, once (``IdentityBodies``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime

from feedfix.service.state import FeedState, Published

ATOM_TYPE = "application/atom+xml; charset=utf-8"


def http_date(epoch: float) -> str:
    """An IMF-fixdate, as HTTP headers want it."""
    return formatdate(epoch, usegmt=True)


def strong_etag(body: bytes) -> str:
    """The ETag of these exact bytes: equal tags mean equal bytes."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _head(status: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


@dataclass(frozen=True)
class Reply:
    """One answer to a feed request: status, headers, body, and the same head as raw bytes."""

    status: int
    headers: dict[str, str]
    body: bytes  # empty for a 304
    head: bytes  # status line and headers, CRLF-terminated, without Date and the blank line


def _reply(status: int, headers: dict[str, str], body: bytes | None) -> Reply:
    """A reply and its head (a 304, ``body`` None, has no Content-Length)."""
    text = "200 OK" if status == 200 else "304 Not Modified"
    length = len(body) if body is not None else None
    return Reply(status, headers, body or b"", _head(text, headers, length))


IDENTITY_BUDGET = 8_000_000  # inflated identity bodies kept, in bytes (about 30 feeds)


class IdentityBodies:
    """The identity replies asked for lately, each inflated once and kept within ``budget``
    bytes, least recently used out first (readers mostly ask for gzip, which is always
    held). ``evicted`` is told each feed whose reply left, so that nothing else keeps it
    alive: the fast path forgets the request heads it answered with it."""

    def __init__(self, budget: int = IDENTITY_BUDGET) -> None:
        self.budget = budget
        self.held = 0
        self.evicted: list[Callable[[str], None]] = []
        self._replies: OrderedDict[str, tuple[ServedFeed, Reply]] = OrderedDict()

    def reply(self, served: ServedFeed) -> Reply:
        """``served``'s identity 200, from memory or inflated now."""
        kept = self._replies.get(served.name)
        if kept is not None and kept[0] is served:
            self._replies.move_to_end(served.name)
            return kept[1]
        self.drop(served.name)
        reply = served.identity_reply()
        self._replies[served.name] = (served, reply)
        self.held += len(reply.body)
        while self.held > self.budget and len(self._replies) > 1:
            name, (_served, old) = self._replies.popitem(last=False)
            self.held -= len(old.body)
            for listener in self.evicted:
                listener(name)
        return reply

    def drop(self, name: str) -> None:
        """Let a feed's reply go (its bytes changed, or it left)."""
        kept = self._replies.pop(name, None)
        if kept is not None:
            self.held -= len(kept[1].body)


@dataclass(frozen=True)
class ServedFeed:
    """One feed's answers, every one of them made when its bytes change, never per request
    (the identity body aside: inflated when asked for, kept by ``identities``)."""

    name: str
    published: Published
    stale_since: float | None
    max_age: float
    identities: IdentityBodies
    identity_headers: dict[str, str]
    ok_gzip: Reply
    not_modified_identity: Reply
    not_modified_gzip: Reply

    @classmethod
    def of(
        cls,
        name: str,
        published: Published,
        max_age: float,
        stale_since: float | None,
        identities: IdentityBodies,
    ) -> ServedFeed:
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
        identity = {**common, "ETag": published.etag}
        gz = {**common, "ETag": gz_etag, "Content-Encoding": "gzip"}
        not_modified = {k: v for k, v in identity.items() if k != "Content-Type"}
        not_modified_gz = {**not_modified, "ETag": gz_etag}
        return cls(
            name=name,
            published=published,
            stale_since=stale_since,
            max_age=max_age,
            identities=identities,
            identity_headers=identity,
            ok_gzip=_reply(200, gz, published.gzip),
            not_modified_identity=_reply(304, not_modified, None),
            not_modified_gzip=_reply(304, not_modified_gz, None),
        )

    def identity_reply(self) -> Reply:
        """The identity 200, its body inflated now (``identities`` keeps the recent ones)."""
        return _reply(200, self.identity_headers, self.published.identity())

    def answer(self, if_none_match: str | None, if_modified_since: str | None,
               accept_encoding: str | None) -> Reply:  # fmt: skip
        """The reply for a request's conditional and encoding headers (RFC 9110 13.2.2)."""
        gzip_ok = accepts_gzip(accept_encoding or "")
        if if_none_match is not None:
            fresh = self._etag_matches(if_none_match)
        else:
            fresh = if_modified_since is not None and self._unmodified_since(if_modified_since)
        if fresh:
            return self.not_modified_gzip if gzip_ok else self.not_modified_identity
        return self.ok_gzip if gzip_ok else self.identities.reply(self)

    def _etag_matches(self, header: str) -> bool:
        if header.strip() == "*":
            return True
        tags = {t.strip().removeprefix("W/") for t in header.split(",")}
        etag = self.published.etag
        return etag in tags or (etag[:-1] + '-gz"') in tags

    def _unmodified_since(self, header: str) -> bool:
        try:
            since = parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return int(self.published.last_modified) <= since


def accepts_gzip(header: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip: named (or ``*``) with a q-value above zero.

    Content-codings and the ``q`` parameter are case-insensitive (RFC 9110 8.4.1, 12.4.2).
    """
    header = header.lower()
    if "gzip" not in header and "*" not in header:
        return False
    allowed: dict[str, bool] = {}
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        allowed[coding.strip()] = q > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))


@dataclass
class Status:
    """A feed's row in the index and in /healthz: its name, where it comes from, the poller's
    state of it as it stands (``state``), the entries served and what to do about a failure."""

    name: str
    upstream: str
    state: FeedState = field(default_factory=FeedState)
    entries: int = 0
    advice: str | None = None  # what to do about the last failure (``advice.py``)

    @property
    def ok(self) -> bool:
        """A poll has succeeded, and none has failed since."""
        success, error_at = self.state.last_success, self.state.last_error_at
        if success is None:
            return False
        return error_at is None or success >= error_at


RECENT_POLLS = 4096  # poll start times kept for the "polls in the last hour" summary


@dataclass
class Activity:
    """What this process saw of a feed's polls (since it started): for the web pages."""

    outcomes: dict[str, int] = field(default_factory=dict)  # ok / not_modified / error
    rule_changes_last: dict[str, int] = field(default_factory=dict)  # the last 200's cleaning
    rule_changes_total: dict[str, int] = field(default_factory=dict)

    @property
    def not_modified_share(self) -> float | None:
        """Share of polls answered 304, None before the first poll."""
        total = sum(self.outcomes.values())
        return self.outcomes.get("not_modified", 0) / total if total else None


@dataclass
class Catalog:
    """The served responses and statuses, by feed name."""

    served: dict[str, ServedFeed] = field(default_factory=dict)
    status: dict[str, Status] = field(default_factory=dict)
    # Told the name of a feed whose responses were replaced or removed (caches drop theirs).
    listeners: list[Callable[[str], None]] = field(default_factory=list)
    store_error: str | None = None  # why the shared store does not answer (None: it does)
    identities: IdentityBodies = field(default_factory=IdentityBodies)
    activity: dict[str, Activity] = field(default_factory=dict)
    recent_polls: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_POLLS))

    def record_poll(self, name: str, outcome: str, started: float,
                    rule_changes: dict[str, int] | None) -> None:  # fmt: skip
        """Count a poll (``rule_changes``: what cleaning changed, for a 200)."""
        activity = self.activity.setdefault(name, Activity())
        activity.outcomes[outcome] = activity.outcomes.get(outcome, 0) + 1
        self.recent_polls.append(started)
        if rule_changes is not None:
            activity.rule_changes_last = dict(rule_changes)
            for rule, changes in rule_changes.items():
                total = activity.rule_changes_total
                total[rule] = total.get(rule, 0) + changes

    def publish(self, name: str, served: ServedFeed | None, status: Status) -> None:
        """Replace a feed's response (when there is one) and its status."""
        if served is not None and self.served.get(name) is not served:
            self.served[name] = served
            self._changed(name)
        self.status[name] = status

    def remove(self, name: str) -> None:
        """Forget a feed that left the config."""
        self.served.pop(name, None)
        self.status.pop(name, None)
        self.activity.pop(name, None)
        self._changed(name)

    def _changed(self, name: str) -> None:
        self.identities.drop(name)
        for listener in self.listeners:
            listener(name)
