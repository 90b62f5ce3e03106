"""Which addresses feedfix may connect to on behalf of someone else: the outside world only.

One rule for both fetchers that could be turned against the inside of the network (SSRF):
the image proxy (every hop, unless ``[images] allow_private`` names the host or network) and
the feed fetcher (redirect hops that leave the configured host, unless ``[poll]
allow_private_redirects``; the configured URL itself may be private, as an RSSHub sidecar is).

Refused, unless the guard's allow-list names the host or the network: loopback, private,
link-local, CGNAT (100.64/10), benchmark (198.18/15), 0.0.0.0/8, multicast, reserved and
documentation ranges, and IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:…``,
NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``), which are unmapped and judged by that address.
The list is written out here rather than left to ``ipaddress`` flags, which differ between
Python versions (3.11 misses CGNAT in ``is_private`` and judges mapped addresses as a block).

The check happens where the connection is made, on the host as aiohttp connects to it
(after yarl's IDNA/NFKC mapping, which turns ``１２７.０.０.１`` into ``127.0.0.1``):
``check_url`` refuses internal IP literals (in every spelling the system reads as one) before
a request, ``GuardedResolver`` filters every answer aiohttp gets for a name (no DNS cache, so
every connection asks: DNS rebinding is caught), and the connector's ``socket_factory``
checks the address of every socket, whatever led to it (``AddressGuard.connector``). Every
refusal says the same three words, "internal address refused".
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from feedfix.config.checks import split_port

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4_REFUSED = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
]  # fmt: skip
_V6_REFUSED = [
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible block
        "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20",
        "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
]  # fmt: skip
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
# What inet_aton might read as an IPv4 address (decimal, octal, hex parts; 1 to 4 of them).
_LEGACY_V4 = re.compile(r"[0-9A-Fa-fXx]+(?:\.[0-9A-Fa-fXx]+){0,3}")
NAMED_KEPT = 256  # addresses of allowed names remembered for the socket check


REFUSED = "internal address refused"


class RefusedAddress(OSError):
    """A connection that must not be made. Its message is always ``REFUSED``: it names no
    address a name resolved to, and it is given before anything is sent, so it is the same
    whether or not anything listens there (no internal DNS read, no port scan through it)."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


def embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip in _MAPPED or ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
    return None


def is_internal(ip: IPAddress) -> bool:
    """Whether ``ip`` is anything but a public unicast address (embedded IPv4 unmapped)."""
    inner = embedded_v4(ip)
    if inner is not None:
        return is_internal(inner)
    if isinstance(ip, ipaddress.IPv4Address):
        return ip == ipaddress.IPv4Address("255.255.255.255") or any(ip in n for n in _V4_REFUSED)
    return any(ip in n for n in _V6_REFUSED) or ip.is_multicast or ip.is_link_local


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets and zone dropped), or None for a host name."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def connect_host(url: str | URL) -> str:
    """The host exactly as aiohttp connects to it: after yarl's IDNA and NFKC mapping
    (``１２７.０.０.１`` and ``127。0。0。1`` are ``127.0.0.1``), trailing dots as aiohttp
    squeezes them. ValueError for a URL yarl refuses (aiohttp would not connect either)."""
    host = (url if isinstance(url, URL) else URL(url)).raw_host
    if not host:
        raise ValueError("no host")
    return host.rstrip(".") + "." if host.endswith("..") else host


def literal_ip(host: str) -> IPAddress | None:
    """The address a host stands for without any lookup: an IP literal, or one of the legacy
    IPv4 spellings the system's resolver reads as an address (``127.1``, ``0x7f.1``,
    ``2130706433``, ``017700000001``); None for a name."""
    ip = parse_ip(host)
    if ip is not None:
        return ip
    bare = host.rstrip(".")
    if bare and _LEGACY_V4.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


class AddressGuard:
    """The refusal rule with its exceptions applied: ``allow_private`` lists host names
    (exact or ``*.`` globs) and addresses or networks that may be reached though internal,
    each on any port, or on the one it names (``127.0.0.1:9000``, ``[::1]:9000``,
    ``images.lan:8080``): allowing one local origin must not open every local service.

    Three checks, each where a connection could be aimed: ``check_url`` before a request
    (IP literals, which aiohttp connects to without a lookup, as aiohttp will read them);
    ``GuardedResolver`` at every lookup of a name; and ``socket_factory``, the address of
    every socket aiohttp connects (whatever led to it).
    """

    def __init__(self, allow_private: Iterable[str] = ()) -> None:
        self.networks: list[tuple[IPNetwork, int | None]] = []
        self.hosts: list[tuple[str, int | None]] = []
        self._by_name: dict[tuple[IPAddress, int], None] = {}  # addresses of allowed names
        for entry in allow_private:
            host, port = split_port(entry)
            try:
                self.networks.append((ipaddress.ip_network(host, strict=False), port))
            except ValueError:
                self.hosts.append((host.lower().rstrip("."), port))

    def host_allowed(self, host: str, port: int | None = None) -> bool:
        """Whether ``allow_private`` names this host (exactly or by a ``*.`` glob) on this
        port (an entry without a port: on any)."""
        name = host.lower().rstrip(".")
        return any(
            (allowed is None or allowed == port) and (name == h or fnmatch.fnmatchcase(name, h))
            for h, allowed in self.hosts
        )

    def address_allowed(self, ip: IPAddress, port: int | None = None) -> bool:
        """Whether a connection to ``ip`` (on ``port``) may be made."""
        if not is_internal(ip):
            return True
        candidates = [ip] + ([inner] if (inner := embedded_v4(ip)) is not None else [])
        return any(
            c in net and (allowed is None or allowed == port)
            for c in candidates
            for net, allowed in self.networks
            if c.version == net.version
        )

    def check_literal(self, host: str, port: int | None = None) -> None:
        """Refuse an internal IP-literal host now (aiohttp connects to literals without
        resolving them); a name is left to the resolver."""
        ip = literal_ip(host)
        if ip is None or self.host_allowed(host, port) or self.address_allowed(ip, port):
            return
        raise RefusedAddress

    def check_url(self, url: str | URL) -> None:
        """``check_literal`` for the host and port aiohttp will connect to for ``url``
        (ValueError for a URL that aiohttp could not connect to at all)."""
        parsed = url if isinstance(url, URL) else URL(url)
        self.check_literal(connect_host(parsed), parsed.port)

    def named(self, answers: Iterable[ResolveResult]) -> None:
        """Remember the addresses a name that ``allow_private`` names resolved to, so that
        ``socket_factory`` lets them through (the factory never sees the name)."""
        for answer in answers:
            ip = parse_ip(answer["host"])
            if ip is not None:
                self._by_name[(ip, answer["port"])] = None
        while len(self._by_name) > NAMED_KEPT:
            del self._by_name[next(iter(self._by_name))]

    def socket_factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """The socket for one connection attempt (aiohttp's ``socket_factory``): the last
        check, on the very address the socket is about to connect to."""
        family, type_, proto, _, address = addr_info
        ip = parse_ip(str(address[0]))
        port = int(address[1])
        if ip is None or not (self.address_allowed(ip, port) or (ip, port) in self._by_name):
            raise RefusedAddress
        return socket.socket(family=family, type=type_, proto=proto)

    def connector(
        self, resolver: AbstractResolver | None = None, limit: int = 100
    ) -> aiohttp.TCPConnector:
        """A connector that checks every connection it makes: names through
        ``GuardedResolver`` (no DNS cache: each connection asks, which is what defeats DNS
        rebinding), every socket's address through ``socket_factory``. Keep it for guarded
        requests alone: a connection pooled by another connector was never checked."""
        return aiohttp.TCPConnector(
            limit=limit,
            resolver=GuardedResolver(self, resolver),
            use_dns_cache=False,
            socket_factory=self.socket_factory,
        )


class GuardedResolver(AbstractResolver):
    """A resolver whose internal answers are dropped (kept only if the guard allows them).

    aiohttp asks it at every connection (with ``use_dns_cache=False``), so a name that answers
    outside once and inside the next time is refused the time it turns inward. Give it a
    connector of its own (``AddressGuard.connector``): a connection pooled by another
    connector was never checked.
    """

    def __init__(self, guard: AddressGuard, inner: AbstractResolver | None = None) -> None:
        self.guard = guard
        self.inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The inner resolver's answers that the guard allows; RefusedAddress if none
        (saying nothing of what they were)."""
        answers = await self.inner.resolve(host, port, family)
        if self.guard.host_allowed(host, port):
            self.guard.named(answers)
            return answers
        kept = [a for a in answers if self._allowed(a["host"], port)]
        if not kept:
            raise RefusedAddress
        return kept

    def _allowed(self, address: str, port: int) -> bool:
        ip = parse_ip(address)
        return ip is not None and self.guard.address_allowed(ip, port)

    async def close(self) -> None:
        """Close the inner resolver."""
        await self.inner.close()
