"""Proxy wrappers around URLs, and how to take them off.

Wrappers are written as RSSHub's ``HOTLINK_TEMPLATE`` values, so a user can paste the template
their RSSHub instance used. Three families are understood:

- prefix: ``https://cors.zfour.workers.dev/?${href}``: the inner URL follows raw, its own query
  string included;
- query parameter: ``https://images.weserv.nl/?url=${href_ue}``: the inner URL is URL-encoded;
- host and path: ``https://i0.wp.com/${host}${pathname}``: the origin's host and path follow.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from feedfix.core.errors import ConfigError
from feedfix.core.urls import scheme_of

MAX_NESTING = 8
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "https://cors.zfour.workers.dev/?${href}",
    "https://images.weserv.nl/?url=${href_ue}",
    "https://wsrv.nl/?url=${href_ue}",
    "https://i0.wp.com/${host}${pathname}",
    "https://i1.wp.com/${host}${pathname}",
    "https://i2.wp.com/${host}${pathname}",
    "https://i3.wp.com/${host}${pathname}",
    "https://corsproxy.io/?${href}",
    "https://cors-anywhere.herokuapp.com/${href}",
    "https://api.allorigins.win/raw?url=${href_ue}",
)
_ENCODED_SCHEME = re.compile(r"^(?:https?%3A|%2F%2F)", re.I)
_HOSTLIKE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+(?::\d+)?(?:[/?#]|$)"
)


WrapperKind = Literal["prefix", "query", "host-path"]


@dataclass(frozen=True)
class Wrapper:
    """One wrapper: its family, host, path (prefix and query kinds) and query parameter."""

    template: str
    kind: WrapperKind
    host: str
    path: str = ""
    param: str = ""

    @classmethod
    def from_template(cls, template: str) -> Wrapper:
        """Read an RSSHub-style template; ConfigError when it is none of the three families."""
        t = template.strip()
        parts = urlsplit(t if "://" in t else "https://" + t.lstrip("/"))
        host = (parts.hostname or "").lower()
        if not host:
            raise ConfigError(f"wrapper {template!r} has no host")
        if t.endswith("${href}") and t.count("${") == 1:
            prefix = t[: -len("${href}")]
            after_host = prefix.split(parts.netloc, 1)[1] if parts.netloc in prefix else "/"
            return cls(template=t, kind="prefix", host=host, path=after_host or "/")
        match = re.search(r"[?&]([^=&?]+)=\$\{href(?:_ue)?\}$", t)
        if match:
            path = parts.path or "/"
            return cls(template=t, kind="query", host=host, path=path, param=match.group(1))
        if parts.path in {"/${host}${pathname}", "/${hostname}${pathname}"}:
            return cls(template=t, kind="host-path", host=host)
        raise ConfigError(
            f"wrapper {template!r} is not a known form: use '…${{href}}' (prefix), "
            "'…?param=${href_ue}' (query) or '…/${host}${pathname}' (host and path)"
        )

    def unwrap_once(self, tail: str) -> str | None:
        """The inner URL, given what follows this wrapper's host; ``None`` if not wrapped."""
        if self.kind == "prefix":
            return self._prefix(tail)
        if self.kind == "query":
            return self._query(tail)
        return self._host_path(tail)

    def _prefix(self, tail: str) -> str | None:
        if not tail.startswith(self.path):
            return None
        return self.after_prefix(tail[len(self.path) :])

    def after_prefix(self, inner: str) -> str | None:
        """A prefix wrapper's inner URL, given what follows its path."""
        if _ENCODED_SCHEME.match(inner):
            inner = unquote(inner)
        return _absolute_inner(inner)

    def _query(self, tail: str) -> str | None:
        path, _, query = tail.partition("?")
        if path.rstrip("/") != self.path.rstrip("/"):
            return None
        values = parse_qs(query.split("#", 1)[0], keep_blank_values=False).get(self.param)
        if not values:
            return None
        inner = values[0].strip()
        if inner.lower().startswith("ssl:"):  # weserv's shorthand for an https origin
            inner = "https://" + inner[4:].lstrip("/")
        return _absolute_inner(inner)

    def _host_path(self, tail: str) -> str | None:
        path, _, query = tail.partition("?")
        path = path.split("#", 1)[0]
        if not _HOSTLIKE.match(path.lstrip("/")):
            return None
        ssl = parse_qs(query).get("ssl", ["0"])[0] == "1"
        return ("https://" if ssl else "http://") + path.lstrip("/")


def split_host(url: str) -> tuple[str, str] | None:
    """``(host, rest)`` of an http(s) or protocol-relative URL; rest starts with / ? or #."""
    scheme = scheme_of(url) or ""
    if scheme not in {"", "http", "https"}:
        return None
    rest = url[len(scheme) + 1 :] if scheme else url
    if not rest.startswith("//"):
        return None
    end = len(rest)
    for sep in "/?#":
        pos = rest.find(sep, 2)
        if pos != -1 and pos < end:
            end = pos
    host = rest[2:end].rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return host, rest[end:] or "/"


def _absolute_inner(inner: str) -> str | None:
    """Accept only web URLs as inner URLs, so unwrapping can never produce ``javascript:``."""
    inner = inner.strip()
    if not inner:
        return None
    scheme = scheme_of(inner)
    if scheme is not None:
        return inner if scheme in {"http", "https"} else None
    if inner.startswith("//"):
        return "https:" + inner
    return "http://" + inner if _HOSTLIKE.match(inner) else None


class Unwrapper:
    """Takes every configured wrapper off a URL, however deeply nested."""

    def __init__(self, wrappers: tuple[Wrapper, ...]) -> None:
        self.wrappers = wrappers
        self._by_host: dict[str, list[Wrapper]] = {}
        for wrapper in wrappers:
            self._by_host.setdefault(wrapper.host, []).append(wrapper)
        self._hosts = tuple(sorted({host.lower() for host in self._by_host}))
        # The prefix wrappers as written most of the time (``https://HOST/PATH`` and its
        # http: and protocol-relative forms), when the host has no other wrapper: one
        # ``startswith`` instead of taking the URL apart. With the early stop in ``unwrap``, a
        # ZAKER image URL unwraps in 1.8 µs instead of 4.2 (best of 5, this 2-core VM).
        self._literals = tuple(
            (f"{scheme}//{w.host}{w.path}", w)
            for w in wrappers
            if w.kind == "prefix" and len(self._by_host[w.host]) == 1
            for scheme in ("https:", "http:", "")
        )
        self._literal_prefixes = tuple(literal for literal, _ in self._literals)

    @classmethod
    def from_templates(cls, templates: tuple[str, ...] | list[str]) -> Unwrapper:
        """Build from RSSHub-style templates (``DEFAULT_TEMPLATES`` unless configured)."""
        return cls(tuple(Wrapper.from_template(t) for t in templates))

    def might_wrap(self, text: str) -> bool:
        """Cheap test: does ``text`` mention any wrapper host at all (in any case)?

        Substring tests on the lower-cased text: a case-insensitive regular expression of
        the hosts cost 3 µs a value, a quarter of unwrapping a ZAKER feed; this costs 0.5.
        "/" is looked for first: str finds one character at memchr speed and two at a tenth of
        it, which a fragment's whole text, seldom holding a "/", is spared.
        """
        if "/" not in text or "//" not in text:
            return False
        lowered = text.lower()
        for host in self._hosts:  # noqa: SIM110 - any() over a generator costs 3x the test
            if host in lowered:
                return True
        return False

    def unwrap(self, url: str) -> str:
        """``url`` without its wrappers; unchanged when it has none."""
        if not self.might_wrap(url):
            return url
        return self.unwrap_mentioned(url)

    def unwrap_mentioned(self, url: str) -> str:
        """``unwrap`` for a URL ``might_wrap`` has just said yes to (so it is not asked twice);
        right for any URL, only slower for one that mentions no wrapper host."""
        current = url.strip()
        if "&" in current and ("&amp;" in current or "&#" in current):
            current = html.unescape(current)
        changed = False
        for _ in range(MAX_NESTING):
            inner = self._unwrap_once(current)
            if inner is None:
                break
            current, changed = inner, True
            if not self.might_wrap(current):
                break  # no wrapper host left in it: nothing more to take off
        return current if changed else url

    def _unwrap_once(self, url: str) -> str | None:
        if url.startswith(self._literal_prefixes):
            for literal, wrapper in self._literals:
                if url.startswith(literal):
                    return wrapper.after_prefix(url[len(literal) :])
        parts = split_host(url)
        if parts is None:
            return None
        host, tail = parts
        for wrapper in self._by_host.get(host, ()):
            inner = wrapper.unwrap_once(tail)
            if inner is not None:
                return inner
        return None
