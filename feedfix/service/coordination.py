"""Who polls a feed now: a lease per feed, and the fencing token its writes carry.

One process on its own store (SQLite, memory) polls every feed itself: ``Solo`` grants
every lease. Replicas on one Redis take a feed's lease before they poll it
(``SET NX PX``, renewed while the poll runs, released after); the grant also records a new
token as the feed's fence, and a write is stored only while its token is still the fence
(checked in the store's save script), so a replica whose lease ran out while it was paused
or cut off cannot put an older result over a newer one. Time comes from Redis (``TIME``):
every replica schedules against the same clock, whatever its own says.

This module is the interface and the process alone; Redis's leases are in ``replicas/leases.py``,
imported only by a deployment that uses Redis.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Lease:
    """The right to poll one feed until it runs out; ``token`` fences its writes."""

    name: str
    token: str | None  # None: a process alone on its store needs no fence
    lost: bool = field(default=False)  # a renewal failed: the writes will be refused


class Coordinator(Protocol):
    """Leases and the shared clock."""

    shared: bool  # other processes poll the same store

    def now(self) -> float:
        """The clock every replica schedules against (epoch seconds)."""

    async def acquire(self, name: str) -> tuple[Lease | None, float]:
        """The feed's lease, or None and the seconds until the holder's lease runs out.

        Raises StoreError when the store cannot be reached."""

    def holding(self, lease: Lease) -> contextlib.AbstractAsyncContextManager[Lease]:
        """Renew the lease while the block runs; release it after."""

    async def close(self) -> None:
        """Release the connection."""


class Solo:
    """A process alone on its store: every lease is granted, with no fence."""

    shared = False

    def now(self) -> float:
        """The process's own clock."""
        return time.time()

    async def acquire(self, name: str) -> tuple[Lease | None, float]:
        """Always granted."""
        return Lease(name, None), 0.0

    @contextlib.asynccontextmanager
    async def holding(self, lease: Lease) -> AsyncIterator[Lease]:
        """Nothing to renew or release."""
        yield lease

    async def close(self) -> None:
        """Nothing to close."""
