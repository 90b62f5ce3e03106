"""Secrets kept out of sight: in every page, in /healthz, the JSON index and the logs.

A feed URL may carry credentials: userinfo (``https://user:pass@host/``) or a query value
that is a key (RSSHub's access key is ``?key=``), and a feed's configured headers often are
credentials (``Authorization``, ``Cookie``). What is shown of them is masked: the userinfo and
such query values become ``***``, header values are never shown, and any configured secret
that turns up in a text (an error message that quotes a URL) is replaced too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from feedfix.config import Config

MASK = "***"
CREDENTIAL_NAMES = frozenset(
    {"key", "token", "code", "access_key", "sig", "password", "secret"}
)  # query parameter names, compared case-insensitively
# Names that end like one of these are credentials as well: api_key, access_token, client_secret.
CREDENTIAL_ENDINGS = ("key", "token", "secret", "password", "signature")
# A URL in running text, without the punctuation that ends its sentence ("…/feed: HTTP 500").
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+?(?=[.,:;!?)\]]*(?:[\s\"'<>]|$))")
MIN_SECRET = 4  # shorter configured values are not searched for in texts (too many false hits)


def is_credential(name: str) -> bool:
    """Whether a query parameter's name says its value is a credential."""
    lowered = name.lower()
    return lowered in CREDENTIAL_NAMES or lowered.endswith(CREDENTIAL_ENDINGS)


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
        masked = _URL.sub(lambda m: mask_url(m.group(0)), text)
        for secret in self.secrets:
            masked = masked.replace(secret, MASK)
        return masked

    def optional(self, text: str | None) -> str | None:
        """``text`` masked, None left as None."""
        return None if text is None else self.text(text)


def masker_for(config: Config) -> Masker:
    """A Masker for what a config holds that must never show: every feed's header values
    and URL credentials, and the admin token."""
    found = [config.server.admin_token or ""]
    for feed in config.feeds:
        found += [value for _, value in feed.headers]
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


__all__ = ["MASK", "Masker", "is_credential", "mask_url", "masker_for", "url_secrets"]
