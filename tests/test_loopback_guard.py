"""The session's loopback guard (``conftest.py``) holds, for plain and asyncio sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest


def test_the_guard_refuses_an_outside_address() -> None:
    """The guard itself: a connect to a private address fails before any packet is sent."""
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="loopback"):
        sock.connect(("10.0.0.1", 80))


def test_the_guard_holds_for_asyncio_connections() -> None:
    """asyncio's connect (aiohttp's path) is refused too, before a packet is sent."""

    async def go() -> None:
        await asyncio.open_connection("169.254.169.254", 80)

    with pytest.raises(ConnectionRefusedError, match="loopback"):
        asyncio.run(go())


def test_loopback_still_connects() -> None:
    """127.0.0.1 still connects: the guard refuses only what is not loopback."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
