"""Leases and fencing tokens in Redis, for replicas that share one (see ``coordination.py``).

A lease is ``SET NX PX`` of a new token (a counter and this process's id), which the same
script records as the feed's fence; renewal and release touch the lease only while it still
holds that token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

import redis
import redis.asyncio as aioredis

from feedfix.service.coordination import Lease
from feedfix.service.logs import log
from feedfix.service.store import StoreError, redacted
from feedfix.service.store.redis import CONNECT_TIMEOUT, SOCKET_TIMEOUT

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
