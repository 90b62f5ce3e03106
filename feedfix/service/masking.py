"""Secrets kept out of sight: in every page, in /healthz, the JSON index and the logs.

A feed URL may carry credentials: userinfo (``https://user:pass@host/``) or a query value
that is a key (RSSHub's access key is ``?key=``), and a feed's configured headers often are
credentials (``Authorization``, ``Cookie``). What is shown of them is masked: the userinfo and
such query values become ``***``, header values are never shown, and any configured secret
that turns up in a text (an error message that quotes a URL) is replaced too.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from feedfix.config import Config

MASK = "***"
CREDENTIAL_NAMES = frozenset(
    {"key", "token", "code", "access_key", "sig", "password", "secret"}
)  # query parameter names, compared case-insensitively
# Names that end like one of these are credentials as well: api_key, access_token, client_secret.
CREDENTIAL_ENDINGS = ("key", "token", "secret", "password", "signature")
# Header names whose values are credentials (besides those ``is_credential`` names).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# A URL in running text is found at its "://" (the scheme before it, the rest after it up to
# a space, a quote or an angle bracket), less the punctuation that ends its sentence
# ("…/feed: HTTP 500"): each character is looked at a bounded number of times, whatever the
# text (errors quote what upstreams send, and /healthz masks them at every request).
_SCHEME = frozenset(string.ascii_letters + string.digits + "+.-")
_URL_REST = re.compile(r"[^\s\"'<>]*")
_SENTENCE_END = ".,:;!?)]"
MIN_SECRET = 4  # shorter configured values are not searched for in texts (too many false hits)


def is_credential(name: str) -> bool:
    """Whether a query parameter's name says its value is a credential."""
    lowered = name.lower()
    return lowered in CREDENTIAL_NAMES or lowered.endswith(CREDENTIAL_ENDINGS)


def is_credential_header(name: str) -> bool:
    """Whether a request header's name says its value is a credential (``Authorization``,
    ``Cookie``, ``X-Api-Key``…; not ``Referer`` or ``User-Agent``)."""
    lowered = name.lower().replace("-", "_")
    return lowered.replace("_", "-") in CREDENTIAL_HEADERS or is_credential(lowered)


def without_credentials(url: str) -> str:
    """The URL with its userinfo and credential query parameters left out (not masked):
    what may stand in for it where it is written for readers, as a base or an id."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if "@" not in parts.netloc and not any(is_credential(k) for k, _ in pairs):
        return url
    query = urlencode([(k, v) for k, v in pairs if not is_credential(k)])
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=query))


def _mask_urls(text: str) -> str:
    out: list[str] = []
    done = at = 0
    while (sep := text.find("://", at)) >= 0:
        start = sep
        while start > done and text[start - 1] in _SCHEME:
            start -= 1
        while start < sep and text[start] not in string.ascii_letters:
            start += 1  # a scheme starts with a letter
        at = sep + 3
        if start == sep:  # no scheme: not a URL (and its rest is not scanned)
            continue
        end = _URL_REST.match(text, at).end()  # type: ignore[union-attr]  # * always matches
        url = text[start:end].rstrip(_SENTENCE_END)
        if len(url) <= at - start:  # nothing after "://"
            continue
        out += (text[done:start], mask_url(url))
        done = at = start + len(url)
    return "".join(out) + text[done:] if out else text


def mask_url(url: str) -> str:
    """The URL with its userinfo and credential-looking query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_credential(k) for k, _ in pairs):
            query = urlencode([(k, MASK if is_credential(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Masker:
    """Masks URLs in any text, and the configured secrets (header values, the admin token)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)

    def text(self, text: str) -> str:
        """``text`` with every URL masked and every configured secret replaced."""
        masked = _mask_urls(text)
        for secret in self.secrets:
            masked = masked.replace(secret, MASK)
        return masked

    def data(self, value: Any) -> Any:
        """Plain data (JSON-like) with every string in it masked as ``text`` masks it."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value

    def optional(self, text: str | None) -> str | None:
        """``text`` masked, None left as None."""
        return None if text is None else self.text(text)


def masker_for(config: Config, *, every_header: bool = True) -> Masker:
    """A Masker for what a config holds that must never show: every feed's header values
    (only those that are credentials, with ``every_header`` False: ``check-config`` shows a
    Referer) and URL credentials, and the admin token."""
    found = [config.server.admin_token or ""]
    for feed in config.feeds:
        found += [v for k, v in feed.headers if every_header or is_credential_header(k)]
        found += url_secrets(feed.url or "")
    return Masker(found)


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries: its userinfo parts and credential query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [p for p in (parts.username, parts.password) if p]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if is_credential(k)]
    return found


__all__ = [
    "MASK",
    "Masker",
    "is_credential",
    "is_credential_header",
    "mask_url",
    "masker_for",
    "url_secrets",
    "without_credentials",
]
