"""Connection limits: the cap, each client's share of it, and the sweep that enforces every
connection's timeouts.

At ``max_connections`` (or at one client address's share of them, ``client_share``) the
oldest idle kept-alive connection gives way to a new one; without one to give way the new
one is refused. One sweep a fraction of a second enforces every connection's clock, instead
of a timer set and cancelled per request (the front, ``fastpath.FastPath``, is one of these).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

SWEEP = 0.25  # seconds between timeout sweeps: timeouts are enforced to within this


@dataclass(frozen=True)
class Limits:
    """The limits every connection is held to."""

    max_connections: int = 1024
    header_timeout: float = 10.0  # to finish a request's headers, from their first byte
    keepalive_timeout: float = 75.0  # an idle kept-alive connection closes after this
    body_timeout: float = 30.0  # a request's whole body, from the end of its head
    client_share: float = 0.5  # of max_connections, what one client address may hold

    @property
    def per_client(self) -> int:
        """Connections one client address may hold at once."""
        return max(1, int(self.client_share * self.max_connections))


class Limited(Protocol):
    """A connection as the limits see it."""

    counted: bool
    peer: str | None  # the client's address
    idle: int  # since when it waits for a kept-alive request (an order), 0 when it does not

    def overdue(self, now: float) -> bool: ...

    def expire(self) -> None: ...


Connection = TypeVar("Connection", bound=Limited)


class ConnectionLimits(Generic[Connection]):
    """The connections held, per client, and the sweep that cuts off the overdue ones."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.connections: set[Connection] = set()
        self.clients: dict[str, int] = {}  # connections held per client address
        self._idle_order = 0
        self.now = 0.0
        self._sweeper: asyncio.TimerHandle | None = None
        self.tick = min(
            SWEEP, limits.header_timeout / 4, limits.keepalive_timeout / 4, limits.body_timeout / 4
        )

    def admit(self, peer: str | None) -> bool:
        """Whether a new connection from ``peer`` may be served: under the cap and the
        client's share of it, or an idle kept-alive connection gave way (of that client,
        when it is the client's share that is full)."""
        limits = self.limits
        if len(self.connections) >= limits.max_connections and not self._give_way(None):
            return False
        held = self.clients.get(peer, 0) if peer is not None else 0
        return held < limits.per_client or self._give_way(peer)

    def _give_way(self, peer: str | None) -> bool:
        """Close the oldest idle kept-alive connection (``peer``'s, if given); False when
        there is none."""
        idle = [p for p in self.connections if p.idle and (peer is None or p.peer == peer)]
        if not idle:
            return False
        oldest = min(idle, key=lambda p: p.idle)
        oldest.expire()
        self.leave(oldest)  # now: its connection_lost comes at the next turn of the loop
        return True

    def next_idle(self) -> int:
        """A connection's place in the order in which connections went idle."""
        self._idle_order += 1
        return self._idle_order

    def enter(self, protocol: Connection) -> None:
        """Count a connection; the sweep runs while there are any (from the first one on)."""
        protocol.counted = True
        self.connections.add(protocol)
        if protocol.peer is not None:
            self.clients[protocol.peer] = self.clients.get(protocol.peer, 0) + 1
        if self._sweeper is None:
            self._sweep()

    def leave(self, protocol: Connection) -> None:
        """Uncount a connection (once)."""
        if not protocol.counted:
            return
        protocol.counted = False
        self.connections.discard(protocol)
        if protocol.peer is not None:
            held = self.clients.pop(protocol.peer, 1) - 1
            if held:
                self.clients[protocol.peer] = held

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        for protocol in [p for p in self.connections if p.overdue(self.now)]:
            protocol.expire()
        self._sweeper = loop.call_later(self.tick, self._sweep) if self.connections else None

    def stop_sweeping(self) -> None:
        """Stop the sweep (at shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
