"""Loopback only, enforced: no test in this process may open a connection anywhere else.

Tests aim feedfix at hostile addresses (10.0.0.1, 169.254.169.254, …) to prove it refuses
them. If a guard ever regressed, such a test would really connect out. This fixture makes
``socket.connect`` refuse every address outside 127.0.0.0/8 and ::1 for the whole session,
so a regression fails the test instead of sending traffic (Unix sockets are left alone).
Child processes (``feedfix serve``) are not covered; their tests point them at loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from redis_helpers import redis_server  # the session's real redis-server (Redis tests)

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths, abstract names
        return True
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except ValueError:
        return False  # a name: the callers here always resolve first, so refuse
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _guarded_connect(self: Any, address: Any) -> None:
    if not _loopback(address):
        raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
    _connect(self, address)


def _guarded_connect_ex(self: Any, address: Any) -> int:
    if not _loopback(address):
        raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
    return _connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """Patch the socket class for the session; restore it at the end."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]


__all__ = ["redis_server"]


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every address this process connects a socket to, in order (still loopback-guarded)."""
    seen: list[Any] = []
    guarded = socket.socket.connect

    def record(self: socket.socket, address: Any) -> None:
        seen.append(address)
        guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    yield seen
