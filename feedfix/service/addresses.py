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

The check happens where the connection is made: ``GuardedResolver`` filters every answer
aiohttp gets (use it with ``use_dns_cache=False`` so that every connection asks, which is what
defeats DNS rebinding), and ``check_literal`` covers IP literals, which skip the resolver.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

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


class RefusedAddress(OSError):
    """A connection that must not be made. The message names the host and the address;
    ``reason`` is the same without the verdict, for callers that word their own."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


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


class AddressGuard:
    """The refusal rule with its exceptions applied: ``allow_private`` lists host names
    (exact or ``*.`` globs) and networks that may be reached though internal."""

    def __init__(self, allow_private: Iterable[str] = ()) -> None:
        self.networks: list[IPNetwork] = []
        self.hosts: list[str] = []
        for entry in allow_private:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.hosts.append(entry.lower().rstrip("."))

    def host_allowed(self, host: str) -> bool:
        """Whether ``allow_private`` names this host (exactly or by a ``*.`` glob)."""
        name = host.lower().rstrip(".")
        return any(name == h or fnmatch.fnmatchcase(name, h) for h in self.hosts)

    def address_allowed(self, ip: IPAddress) -> bool:
        """Whether a connection to ``ip`` may be made."""
        if not is_internal(ip):
            return True
        candidates = [ip] + ([inner] if (inner := embedded_v4(ip)) is not None else [])
        return any(c in n for c in candidates for n in self.networks if c.version == n.version)

    def check_literal(self, host: str) -> None:
        """Refuse an IP-literal host now: aiohttp connects to literals without resolving."""
        ip = parse_ip(host)
        if ip is not None and not self.host_allowed(host) and not self.address_allowed(ip):
            raise RefusedAddress(
                f"{host}: internal address refused", f"{host} is an internal address"
            )


class GuardedResolver(AbstractResolver):
    """A resolver whose internal answers are dropped (kept only if the guard allows them).

    aiohttp asks it at every connection (with ``use_dns_cache=False``), so a name that answers
    outside once and inside the next time is refused the time it turns inward. Give it a
    connector of its own: a connection pooled by another connector was never checked.
    """

    def __init__(self, guard: AddressGuard, inner: AbstractResolver | None = None) -> None:
        self.guard = guard
        self.inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The inner resolver's answers that the guard allows; RefusedAddress if none."""
        answers = await self.inner.resolve(host, port, family)
        if self.guard.host_allowed(host):
            return answers
        kept = [a for a in answers if self._allowed(a["host"])]
        if not kept:
            shown = ", ".join(a["host"] for a in answers[:3])
            reason = f"{host} resolves to an internal address ({shown})"
            raise RefusedAddress(f"{reason}: refused", reason)
        return kept

    def _allowed(self, address: str) -> bool:
        ip = parse_ip(address)
        return ip is not None and self.guard.address_allowed(ip)

    async def close(self) -> None:
        """Close the inner resolver."""
        await self.inner.close()
