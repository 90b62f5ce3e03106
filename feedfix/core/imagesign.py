"""Signed image-proxy URLs: which origin to fetch, with which Referer, and proof of both.

A proxied image is ``{base_url}/img/v1/{signature}/{policy}/{origin}``:

- ``origin``: the image's URL, base64url without padding (any byte survives any reader);
- ``policy``: the Referer the proxy sends: ``n`` (none), ``o`` (the image's own origin) or
  ``u.{base64url(URL)}`` (a fixed URL, as a host rule names it);
- ``signature``: HMAC-SHA256 over ``v1``, the policy and the origin URL, base64url.

Signing the policy with the URL means neither can be changed: a reader can't make feedfix
fetch something else, nor send another Referer. The key is stable (config, environment or
the store), so the same input gives the same URLs, bytes and ETags across restarts and
replicas; verification also accepts ``old_keys`` while links signed with them are cached.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from feedfix.core.errors import FeedfixError

VERSION = "v1"
PREFIX = "/img/"
MAX_URL = 4096  # longer origin URLs are refused (they are not images anyone links to)


class ImageURLError(FeedfixError):
    """A proxied image URL that can't be served: ``status`` says how to answer it."""

    status = 400


class BadSignature(ImageURLError):
    """The signature does not match: answered 403, and nothing is fetched."""

    status = 403


@dataclass(frozen=True)
class Referer:
    """What the proxy sends as ``Referer``: nothing, the image's own origin, or a fixed URL."""

    kind: Literal["none", "origin", "fixed"] = "none"
    url: str | None = None

    def token(self) -> str:
        """The policy as it appears in the URL (and under the signature)."""
        if self.kind == "fixed" and self.url:
            return "u." + b64encode(self.url)
        return "o" if self.kind == "origin" else "n"

    def header(self, image_url: str) -> str | None:
        """The header value to send when fetching ``image_url``."""
        if self.kind == "fixed":
            return self.url
        if self.kind == "origin":
            parts = urlsplit(image_url)
            return f"{parts.scheme}://{parts.netloc}/"
        return None


NO_REFERER = Referer()


def parse_referer(value: str) -> Referer:
    """A host rule's ``referer``: ``"none"``, ``"origin"`` or an http(s) URL."""
    if value == "none":
        return NO_REFERER
    if value == "origin":
        return Referer("origin")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f'expected "none", "origin" or an http(s) URL, got {value!r}')
    return Referer("fixed", value)


def b64encode(text: str) -> str:
    """URL-safe base64 of the UTF-8 text, without padding."""
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def b64decode(token: str) -> str:
    """The inverse of ``b64encode``; ``ImageURLError`` for anything else."""
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise ImageURLError("malformed image URL") from exc


def signature(key: bytes, policy: str, url: str) -> str:
    """HMAC-SHA256 over the version, the policy and the URL (NUL-separated), base64url.

    hmac (and the hashlib it brings) is imported here, not with the module: ``convert``
    imports this module and never signs, and the two cost every start 3 ms of its 80
    (``farm-bench``, 40 runs of a one-item feed); a module already loaded is a dict lookup.
    """
    import hmac  # noqa: PLC0415

    message = f"{VERSION}\x00{policy}\x00{url}".encode()
    digest = hmac.digest(key, message, "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def proxied(base_url: str, key: bytes, url: str, referer: Referer = NO_REFERER) -> str:
    """The signed proxy URL for ``url`` under ``base_url`` (no trailing slash needed)."""
    policy = referer.token()
    sig = signature(key, policy, url)
    return f"{base_url.rstrip('/')}{PREFIX}{VERSION}/{sig}/{policy}/{b64encode(url)}"


@dataclass(frozen=True)
class Verified:
    """A request path whose signature matched: what to fetch and how."""

    url: str
    referer: Referer
    policy: str  # the token, for cache keys


def verify(path: str, keys: Sequence[bytes]) -> Verified:
    """Check a request path (``/img/v1/…``) against the current and old keys.

    The signature is checked before the URL is decoded or looked at: a forged path costs one
    HMAC per key and is never fetched. Raises ``BadSignature`` (403) or ``ImageURLError`` (400).
    """
    import hmac  # noqa: PLC0415 - see signature

    if not path.startswith(PREFIX):
        raise ImageURLError("not an image URL")
    parts = path[len(PREFIX) :].split("/")
    if len(parts) != 4 or parts[0] != VERSION:
        raise ImageURLError("malformed image URL")
    _, sig, policy, encoded = parts
    if len(encoded) > MAX_URL * 2:
        raise ImageURLError("image URL too long")
    try:
        url = b64decode(encoded)
    except ImageURLError:
        url = None  # still check the signature first: a bad one is a 403 whatever the rest
    message_url = url if url is not None else encoded
    if not any(hmac.compare_digest(sig, signature(k, policy, message_url)) for k in keys):
        raise BadSignature("bad signature")
    if url is None:
        raise ImageURLError("malformed image URL")
    referer = _policy(policy)
    try:
        split = urlsplit(url)
        scheme, host = split.scheme.lower(), split.hostname
    except ValueError as exc:  # signed, yet not a URL: answered 400, never a traceback
        raise ImageURLError("not an http(s) image URL") from exc
    if scheme not in ("http", "https") or not host:
        raise ImageURLError("not an http(s) image URL")
    return Verified(url, referer, policy)


def _policy(policy: str) -> Referer:
    if policy == "n":
        return NO_REFERER
    if policy == "o":
        return Referer("origin")
    if policy.startswith("u."):
        try:
            return parse_referer(b64decode(policy[2:]))
        except ValueError as exc:
            raise ImageURLError("malformed image URL") from exc
    raise ImageURLError("malformed image URL")
