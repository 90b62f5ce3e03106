"""Who polls a feed now: a lease per feed, and the fencing token its writes carry.

One process on its own store (SQLite, memory) polls every feed itself: ``Solo`` grants
every lease. Replicas on one Redis take a feed's lease before they poll it
(``SET NX PX``, renewed while the poll runs, released after); the grant also records a new
token as the feed's fence, and a write is stored only while its token is still the fence
(checked in the store's save script), so a replica whose lease ran out while it was paused
or cut off cannot put an older result over a newer one. Time comes from Redis (``TIME``):
every replica schedules against the same clock, whatever its own says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import redis
import redis.asyncio as aioredis

from feedfix.service.logs import log
from feedfix.service.store import StoreError
from feedfix.service.store.redis import CONNECT_TIMEOUT, SOCKET_TIMEOUT, redacted

# KEYS: lease, fence, token counter. ARGV: lease ms, owner. -> token, or the lease's PTTL
_ACQUIRE = """
local token = redis.call('INCR', KEYS[3]) .. ':' .. ARGV[2]
if redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[1]) then
  redis.call('SET', KEYS[2], token)
  return {1, token}
end
return {0, redis.call('PTTL', KEYS[1])}
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


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


class RedisCoordinator:
    """Leases in Redis, ``lease`` seconds long, renewed every third of that."""

    shared = True

    def __init__(self, url: str, prefix: str, lease: float) -> None:
        self.url = url
        self.prefix = prefix
        self.lease_ms = max(1, int(lease * 1000))
        self.owner = uuid.uuid4().hex[:12]  # this process, in every token it takes
        self.offset = 0.0  # Redis' clock minus ours
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT
        )
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def now(self) -> float:
        """Redis' clock, as last measured against ours."""
        return time.time() + self.offset

    async def sync_clock(self) -> None:
        """Measure Redis' clock (``TIME``) against ours, halving the round trip."""
        before = time.time()
        seconds, micros = await self._guard("read the clock", self._redis.time())
        after = time.time()
        self.offset = seconds + micros / 1e6 - (before + after) / 2

    async def _guard(self, what: str, call: object) -> tuple[int, int]:
        try:
            return await call  # type: ignore[misc, no-any-return]
        except (redis.RedisError, OSError) as exc:
            raise StoreError(f"{redacted(self.url)}: cannot {what}: {exc}") from exc

    async def acquire(self, name: str) -> tuple[Lease | None, float]:
        """``SET NX PX`` with a new token, which becomes the feed's fence."""
        keys = [self._key("lease", name), self._key("fence", name), f"{self.prefix}tokens"]
        try:
            got, value = await self._acquire(keys=keys, args=[self.lease_ms, self.owner])
        except (redis.RedisError, OSError) as exc:
            raise StoreError(f"{redacted(self.url)}: cannot take a lease: {exc}") from exc
        if int(got) == 1:
            token = value.decode() if isinstance(value, bytes) else str(value)
            return Lease(name, token), 0.0
        return None, max(0.0, int(value) / 1000)

    async def renew(self, lease: Lease) -> bool:
        """Extend the lease; false when it is no longer ours (or Redis did not answer)."""
        try:
            done = await self._renew(
                keys=[self._key("lease", lease.name)], args=[lease.token, self.lease_ms]
            )
        except (redis.RedisError, OSError):
            return False
        return bool(done)

    async def release(self, lease: Lease) -> None:
        """Let the next replica take the feed now rather than when the lease runs out."""
        with contextlib.suppress(redis.RedisError, OSError):
            await self._release(keys=[self._key("lease", lease.name)], args=[lease.token])

    @contextlib.asynccontextmanager
    async def holding(self, lease: Lease) -> AsyncIterator[Lease]:
        """Renew every third of the lease while the block runs; release after."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(self.lease_ms / 3000)
                if not await self.renew(lease):
                    lease.lost = True
                    log("lease lost", logging.WARNING, feed=lease.name)
                    return

        renewing = asyncio.create_task(keep(), name=f"lease:{lease.name}")
        try:
            yield lease
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            if not lease.lost:
                await self.release(lease)

    async def close(self) -> None:
        """Close the connections."""
        await self._redis.aclose()
