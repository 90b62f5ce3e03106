"""The SSRF guard's address rule, its allow_private exceptions, and the resolver filter.

Each refused range is tested by at least one address, including those Python 3.11's
``ipaddress`` flags get wrong (CGNAT is not ``is_private``; multicast, NAT64 and 6to4 forms
of internal addresses count as ``is_global``)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from feedfix.service.addresses import (
    AddressGuard,
    GuardedResolver,
    RefusedAddress,
    embedded_v4,
    is_internal,
)
from name_map import NameMap

REFUSED = {
    "127.0.0.1": "loopback", "127.255.255.254": "loopback", "10.0.0.1": "private",
    "172.31.255.255": "private", "192.168.0.1": "private", "169.254.169.254": "link-local",
    "100.64.0.1": "CGNAT", "100.127.255.255": "CGNAT", "198.18.0.1": "benchmark",
    "198.19.255.255": "benchmark", "0.0.0.0": "this network", "0.255.255.255": "this network",
    "224.0.0.1": "multicast", "239.1.2.3": "multicast", "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast", "192.0.0.8": "IETF", "192.0.2.1": "documentation",
    "::1": "loopback", "::": "unspecified", "fe80::1": "link-local", "fc00::1": "ULA",
    "fd00::1": "ULA", "ff02::1": "multicast", "ff0e::1": "multicast", "2001:db8::1": "doc",
    "::ffff:127.0.0.1": "mapped loopback", "::ffff:10.1.1.1": "mapped private",
    "::ffff:100.64.0.1": "mapped CGNAT", "64:ff9b::7f00:1": "NAT64 loopback",
    "64:ff9b::a9fe:a9fe": "NAT64 metadata", "64:ff9b:1::1": "local NAT64",
    "2002:7f00:1::1": "6to4 loopback", "::127.0.0.1": "IPv4-compatible", "fec0::1": "site-local",
}  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8",
          "64:ff9b::808:808", "2002:808:808::1"]  # fmt: skip
PYTHON_311_MISSES = ["100.64.0.1", "224.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "ff0e::1"]


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_each_internal_range_is_refused(address: str) -> None:
    """Every internal kind is internal, and the guard without exceptions refuses it."""
    ip = ipaddress.ip_address(address)
    assert is_internal(ip), REFUSED[address]
    assert not AddressGuard().address_allowed(ip)
    with pytest.raises(RefusedAddress):
        AddressGuard().check_literal(f"[{address}]" if ":" in address else address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    """Public addresses, also in their mapped/NAT64/6to4 spellings, are allowed."""
    assert not is_internal(ipaddress.ip_address(address))
    AddressGuard().check_literal(address)


def test_the_rule_covers_what_pythons_flags_miss() -> None:
    """These addresses are internal though this Python's ``is_global`` or ``is_private``
    would let them through: the guard must not rely on those flags alone."""
    for address in PYTHON_311_MISSES:
        ip = ipaddress.ip_address(address)
        assert is_internal(ip), address
    missed = [a for a in PYTHON_311_MISSES if ipaddress.ip_address(a).is_global or not
              ipaddress.ip_address(a).is_private]  # fmt: skip
    assert missed  # at least one flag is wrong here, or this test says nothing


def test_embedded_addresses_are_unmapped() -> None:
    """Mapped, NAT64 and 6to4 addresses give back the IPv4 address they stand for."""
    assert embedded_v4(ipaddress.ip_address("::ffff:1.2.3.4")) == ipaddress.ip_address("1.2.3.4")
    assert embedded_v4(ipaddress.ip_address("64:ff9b::102:304")) == ipaddress.ip_address("1.2.3.4")
    assert embedded_v4(ipaddress.ip_address("2002:102:304::1")) == ipaddress.ip_address("1.2.3.4")
    assert embedded_v4(ipaddress.ip_address("2606:4700::1")) is None


def test_allow_private_names_hosts_and_networks() -> None:
    """Networks allow their addresses (and mapped forms of them), host names and globs
    allow the host whatever it resolves to; nothing else is let through."""
    guard = AddressGuard(["10.0.0.0/8", "127.0.0.1", "*.lan.test", "nas.test", "[::1]"])
    assert guard.address_allowed(ipaddress.ip_address("10.9.9.9"))
    assert guard.address_allowed(ipaddress.ip_address("::ffff:10.9.9.9"))
    assert guard.address_allowed(ipaddress.ip_address("::1"))
    assert not guard.address_allowed(ipaddress.ip_address("127.0.0.2"))
    assert not guard.address_allowed(ipaddress.ip_address("192.168.1.1"))
    assert guard.host_allowed("cam.lan.test") and guard.host_allowed("NAS.test.")
    assert not guard.host_allowed("lan.test.evil") and not guard.host_allowed("other.test")
    guard.check_literal("127.0.0.1")
    with pytest.raises(RefusedAddress):
        guard.check_literal("127.0.0.2")


def test_the_resolver_filters_every_lookup() -> None:
    """Internal answers are dropped at each lookup: a name that flips inward is refused the
    time it does, an inside-only name always; allowed names pass whole."""

    async def check() -> None:
        names = NameMap({
            "flip.test": ["8.8.8.8", "127.0.0.1"],
            "inward.test": ["10.0.0.1"],
            "nas.test": ["192.168.1.5"],
        })  # fmt: skip
        resolver = GuardedResolver(AddressGuard(["nas.test"]), names)
        assert [a["host"] for a in await resolver.resolve("flip.test", 80)] == ["8.8.8.8"]
        with pytest.raises(RefusedAddress, match=r"^internal address refused$"):
            await resolver.resolve("flip.test", 80)  # naming neither the name nor its answer
        with pytest.raises(RefusedAddress):
            await resolver.resolve("inward.test", 80)
        assert [a["host"] for a in await resolver.resolve("nas.test", 80)] == ["192.168.1.5"]
        await resolver.close()

    asyncio.run(check())


def test_an_allowed_port_opens_only_that_port() -> None:
    """``127.0.0.1:9000``, ``[::1]:9000`` and ``nas.test:8080`` allow that port alone; an
    entry without a port allows every port."""
    guard = AddressGuard(["127.0.0.1:9000", "[::1]:9000", "nas.test:8080", "10.0.0.0/8"])
    loopback, v6 = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")
    assert guard.address_allowed(loopback, 9000) and guard.address_allowed(v6, 9000)
    assert not guard.address_allowed(loopback, 9001) and not guard.address_allowed(v6, 6379)
    assert not guard.address_allowed(loopback)  # a port unknown is not the port allowed
    assert guard.address_allowed(ipaddress.ip_address("10.1.2.3"), 6379)
    assert guard.host_allowed("nas.test", 8080) and not guard.host_allowed("nas.test", 22)
    guard.check_url("http://127.0.0.1:9000/a.png")
    with pytest.raises(RefusedAddress):
        guard.check_url("http://127.0.0.1:9001/a.png")


@pytest.mark.parametrize(
    "host",
    ["１２７.０.０.１", "127。0。0。1", "①②⑦.⓪.⓪.①", "127.1", "0x7f.1", "2130706433",
     "017700000001", "127.0.0.1.", "[::ｆｆｆｆ:127.0.0.1]", "[0:0::1]", "１０.０.０.１"],
)  # fmt: skip
def test_literals_are_judged_as_the_connection_reads_them(host: str) -> None:
    """Unicode digits and dots (yarl's IDNA/NFKC mapping makes them ASCII) and the legacy
    IPv4 forms the system resolver reads as an address are refused as the address they are."""
    with pytest.raises(RefusedAddress):
        AddressGuard().check_url(f"http://{host}:80/x.png")


def test_the_socket_check_refuses_whatever_reached_it() -> None:
    """The connector's last check, on the socket's own address: internal refused, allowed
    networks and ports let through, and the answers of an allowed name remembered for it."""
    guard = AddressGuard(["127.0.0.1:9000", "nas.test"])
    tcp = (socket.AF_INET, socket.SOCK_STREAM, 0, "")
    with pytest.raises(RefusedAddress):
        guard.socket_factory((*tcp, ("10.0.0.1", 80)))
    with pytest.raises(RefusedAddress):
        guard.socket_factory((*tcp, ("127.0.0.1", 9001)))
    guard.socket_factory((*tcp, ("127.0.0.1", 9000))).close()
    guard.socket_factory((*tcp, ("93.184.216.34", 80))).close()
    guard.named([{"hostname": "nas.test", "host": "192.168.1.5", "port": 80, "family": 2,
                  "proto": 0, "flags": 0}])  # fmt: skip
    guard.socket_factory((*tcp, ("192.168.1.5", 80))).close()
