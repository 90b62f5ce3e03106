"""Replicas keep the same copies: announcements, version checks, and repair after an outage.

Every write to the Redis store bumps the feed's version and announces it on the deployment's
channel (in the same script). A replica listens, and for a version it has not loaded it
reads the feed's new state and bytes from the store and serves them (``Poller.adopt``).
Pub/sub is fire-and-forget, so it also compares every feed's version with the store's every
``sync_every`` seconds and after each reconnect: a missed message costs at most that long.

It also watches the store (a PING a second). While Redis does not answer, every feed keeps
being served from memory, marked stale, and ``/healthz`` says the store is unreachable. When
it answers again, a feed the store no longer has (Redis restarted empty) is put back from the
copy this replica serves, so no replica ever loads an empty feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import redis
import redis.asyncio as aioredis

from feedfix.config import StorageConfig
from feedfix.service.logs import log
from feedfix.service.replicas.leases import RedisCoordinator
from feedfix.service.store import StoreError
from feedfix.service.store.redis import CONNECT_TIMEOUT, RedisStore
from feedfix.service.tasks import cancel_and_wait

PING_EVERY = 1.0  # seconds between checks that Redis answers
RECONNECT_AFTER = 1.0
STOP_WAIT = 2.0  # seconds stop() waits for its tasks, and for each client's close


class Replica(Protocol):
    """What replication asks of the poller (``poll.Poller`` is one)."""

    def feed_names(self) -> list[str]:
        """The configured feeds."""

    async def adopt(self, name: str) -> None:
        """Load and serve the store's copy of a feed (never an empty one)."""

    async def restore(self, name: str) -> bool:
        """Put the served copy of a feed back into a store that lost it."""

    def store_health(self, error: str | None) -> None:
        """The store became unreachable (``error``) or reachable again (None)."""


class Replicator:
    """Listens for other replicas' writes and keeps this one's copies in step."""

    def __init__(
        self,
        store: RedisStore,
        coordinator: RedisCoordinator,
        replica: Replica,
        *,
        sync_every: float,
    ) -> None:
        self.store = store
        self.coordinator = coordinator
        self.replica = replica
        self.sync_every = sync_every
        self.down: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sync_lock = asyncio.Lock()
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            store.url, socket_connect_timeout=CONNECT_TIMEOUT, health_check_interval=5
        )

    async def start(self) -> None:
        """Begin listening and watching."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="replication:listen"),
            asyncio.create_task(self._watch(), name="replication:watch"),
        ]

    async def stop(self) -> None:
        """Stop both tasks and close the connections (the coordinator's too), each step
        within ``STOP_WAIT``: stopping never waits on Redis (a task still running is named
        in the log)."""
        for task in await cancel_and_wait(self._tasks, limit=STOP_WAIT):
            log("replication task did not stop in time", logging.ERROR, task=task.get_name())
        for close in (self._redis.aclose, self.coordinator.close):
            with contextlib.suppress(redis.RedisError, OSError, TimeoutError):
                await asyncio.wait_for(close(), STOP_WAIT)

    # ---- announcements ---------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.store.channel)
                await self.sync()  # what was announced while this replica did not listen
                async for message in pubsub.listen():
                    await self._announced(message.get("data"))
            except (redis.RedisError, OSError, StoreError):
                await asyncio.sleep(RECONNECT_AFTER)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _announced(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        name, _, version = data.decode("utf-8", "replace").rpartition(" ")
        if name in self.replica.feed_names() and self.store.seen.get(name) != int(version or 0):
            await self.replica.adopt(name)

    # ---- checks ----------------------------------------------------------------------------

    async def _watch(self) -> None:
        since_sync = 0.0
        while True:  # the first check at once: /healthz knows from the start
            try:
                await self._redis.ping()
            except (redis.RedisError, OSError) as exc:
                self._health(f"unreachable: {exc}")
            else:
                recovered = self.down is not None
                self._health(None)
                if recovered or since_sync >= self.sync_every:
                    since_sync = 0.0
                    with contextlib.suppress(StoreError):
                        await self.sync()
            await asyncio.sleep(PING_EVERY)
            since_sync += PING_EVERY

    def _health(self, error: str | None) -> None:
        if (error is None) != (self.down is None):
            if error is None:
                log("store reachable again", logging.WARNING)
            else:
                log("store unreachable", logging.ERROR, error=error)
            self.down = error
            self.replica.store_health(error)

    async def sync(self) -> None:
        """Compare every feed's version with the store's: load what changed, put back what
        the store lost."""
        async with self._sync_lock:
            await self.coordinator.sync_clock()
            loop = asyncio.get_running_loop()
            versions = await loop.run_in_executor(None, self.store.versions)
            for name in self.replica.feed_names():
                stored = versions.get(name)
                if stored is None:
                    await self.replica.restore(name)
                elif stored != self.store.seen.get(name):
                    await self.replica.adopt(name)


def shared_parts(store: object, storage: StorageConfig) -> RedisCoordinator | None:
    """The coordinator of replicas on a Redis store (None for a store of one process)."""
    if not isinstance(store, RedisStore):
        return None
    return RedisCoordinator(store.url, store.prefix, storage.lease)


async def replication_for(
    store: object, coordinator: RedisCoordinator | None, replica: Replica, sync_every: float
) -> Replicator | None:
    """The replication of replicas on a Redis store, with the shared clock read (None for a
    store of one process). ``start`` it once the poller runs."""
    if coordinator is None or not isinstance(store, RedisStore):
        return None
    with contextlib.suppress(StoreError):  # Redis down at start: read once it answers
        await coordinator.sync_clock()
    return Replicator(store, coordinator, replica, sync_every=sync_every)
