"""Ids and URLs that are absolute IRIs (RFC 3987), and the one hash recipe for made-up ids.

Atom requires every ``atom:id`` to be an absolute IRI and every ``href``/``src`` an IRI
reference. Feeds put anything there (``feed1``, ``insert id here``, ``/id/1234``, a ``tag:``
with a space, a URL with raw spaces), so each value is mended deterministically: what an IRI
cannot hold is percent-encoded, and an id with no scheme is wrapped in a ``urn:feedfix:``
name. Never random and never the clock, so the same input always gets the same ids.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import NamedTuple
from urllib.parse import quote

from feedfix.core.urls import SCHEME, has_scheme

# RFC 3987 ucschar (iprivate is only allowed in a query, so it is encoded everywhere).
_UCS = (
    "\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef"
    + "".join(f"{chr(plane << 16)}-{chr((plane << 16) | 0xFFFD)}" for plane in range(1, 14))
    + "\U000e1000-\U000efffd"
)
_PATH_CHAR = rf"[A-Za-z0-9\-._~:/?@!$&'()*+,;={_UCS}]|%[0-9A-Fa-f]{{2}}"
_AUTH_CHAR = rf"[A-Za-z0-9\-._~:@!$&'()*+,;=\[\]{_UCS}]|%[0-9A-Fa-f]{{2}}"


class _IriPatterns(NamedTuple):
    absolute: re.Pattern[str]
    path_char: re.Pattern[str]
    host_char: re.Pattern[str]
    userinfo_char: re.Pattern[str]


@functools.cache
def _iri() -> _IriPatterns:
    """The full IRI patterns, compiled on first use: their Unicode ranges cost 18 ms to
    compile, paid by every ``feedfix convert`` although plain URLs (``_PLAIN_URL``) never
    need them."""
    return _IriPatterns(
        # Possessive: an authority character is a path character too (brackets aside), so
        # with backtracking a URL that fails at its end (a raw space, a "<") was tried at
        # every split of its authority and path: 16,000 characters took 5 s.
        absolute=re.compile(
            rf"[A-Za-z][A-Za-z0-9+.-]*+:(?://(?:{_AUTH_CHAR})*+)?+(?:{_PATH_CHAR})*+"
            rf"(?:#(?:{_PATH_CHAR})*+)?+"
        ),
        path_char=re.compile(rf"(?:{_PATH_CHAR})"),
        host_char=re.compile(rf"[A-Za-z0-9\-._~!$&'()*+,;={_UCS}]"),
        userinfo_char=re.compile(rf"[A-Za-z0-9\-._~!$&'()*+,;=:{_UCS}]"),
    )


_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# Runs of plain characters, each escape between two runs ("unrolled": one alternative per
# character made a 70-character URL cost 2.8 µs to check, this 1.4).
_PLAIN_CHARS = r"A-Za-z0-9\-._~:/@!$&'()*+,;="
_PLAIN = rf"[{_PLAIN_CHARS}]*(?:%[0-9A-Fa-f]{{2}}[{_PLAIN_CHARS}]*)*"
_PLAIN_QUERY = rf"[{_PLAIN_CHARS}?]*(?:%[0-9A-Fa-f]{{2}}[{_PLAIN_CHARS}?]*)*"
_PLAIN_URL = re.compile(  # the common case, checked in one step: an ASCII URL with a plain host
    rf"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/{_PLAIN})?"
    rf"(?:\?{_PLAIN_QUERY})?(?:#{_PLAIN_QUERY})?"
)


def digest(*parts: str | None) -> str:
    """The one recipe behind every made-up id: SHA-256 of the parts, 32 hex digits."""
    import hashlib  # noqa: PLC0415 - see imagesign.signature

    basis = "\x1f".join(p or "" for p in parts)
    return hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()[:32]


def is_plain_url(value: str) -> bool:
    """True for the common case, an ASCII URL with a plain host that needs no mending."""
    return _PLAIN_URL.fullmatch(value) is not None


def _encode(char: str) -> str:
    return quote(char, safe="")


def mend_iri(value: str) -> str:
    """``value`` with every character an IRI cannot hold at its place percent-encoded: raw
    spaces and controls, ``<>"{}|\\^```, a ``%`` that starts no escape, a second ``#``,
    brackets or a port that make no host. A valid IRI (or IRI reference) comes back as it was."""
    if not value or _PLAIN_URL.fullmatch(value):
        return value
    if _iri().absolute.fullmatch(value) and _authority_ok(value):
        return value
    out: list[str] = []
    start = 0
    scheme = SCHEME.match(value)
    if scheme:
        out.append(scheme.group(0))
        start = scheme.end()
    if value.startswith("//", start):
        ends = [i for i in (value.find(c, start + 2) for c in "/?#") if i >= 0]
        end = min(ends, default=len(value))
        out.append("//" + _mend_authority(value[start + 2 : end]))
        start = end
    fragment = False
    index = start
    while index < len(value):
        char = value[index]
        escape = _PERCENT.match(value, index)
        if escape:
            out.append(escape.group(0))
            index = escape.end()
            continue
        if char == "#" and not fragment:
            fragment = True
            out.append(char)
        elif char != "%" and _iri().path_char.fullmatch(char):
            out.append(char)
        else:
            out.append(_encode(char))
        index += 1
    return "".join(out)


def _mend_text(text: str, allowed: re.Pattern[str]) -> str:
    """Every character of ``text`` that ``allowed`` refuses, percent-encoded."""
    out: list[str] = []
    index = 0
    while index < len(text):
        escape = _PERCENT.match(text, index)
        if escape:
            out.append(escape.group(0))
            index = escape.end()
            continue
        char = text[index]
        out.append(char if char != "%" and allowed.fullmatch(char) else _encode(char))
        index += 1
    return "".join(out)


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        return False
    return host.startswith("[") and host.endswith("]")


def _mend_authority(authority: str) -> str:
    """``userinfo@host:port`` with each part made valid: a host that is neither a name nor
    an IPv6 literal is encoded as a name, and a port that is not digits becomes part of it."""
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.startswith("[") and "]" in hostport:
        host, _, rest = hostport.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            host, port = hostport, None
    else:
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
    if port and not (port.isascii() and port.isdigit()):
        host, port = f"{host}:{port}", None
    if not _ip_literal(host):
        host = _mend_text(host, _iri().host_char)
    mended = _mend_text(userinfo, _iri().userinfo_char) + at + host
    return mended if port is None else f"{mended}:{port}"


def _authority_ok(value: str) -> bool:
    """The authority of an IRI that matched the character grammar is a real host[:port]."""
    scheme = SCHEME.match(value)
    start = scheme.end() if scheme else 0
    if not value.startswith("//", start):
        return True
    ends = [i for i in (value.find(c, start + 2) for c in "/?#") if i >= 0]
    authority = value[start + 2 : min(ends, default=len(value))]
    return _mend_authority(authority) == authority


def absolute_iri(value: str) -> str | None:
    """``value`` mended into an absolute IRI, or ``None`` when it has no scheme."""
    value = value.strip()
    if not has_scheme(value):
        return None
    return mend_iri(value)


def wrapped_id(kind: str, value: str) -> str:
    """A value that is not an absolute IRI as a ``urn:feedfix:KIND:`` name, every character
    outside the URN-safe set percent-encoded (so ``feed1`` is ``urn:feedfix:KIND:feed1``)."""
    return f"urn:feedfix:{kind}:" + quote(value, safe="")


def as_id(value: str, kind: str = "guid") -> str:
    """An id from the input as an absolute IRI: mended if it has a scheme, else wrapped."""
    raw = value.strip()
    return absolute_iri(raw) or wrapped_id(kind, raw)
