"""A Store in Redis, shared by every replica of a deployment.

Each write is one Lua script, so it is atomic: the feed's state, its poll record, its output
(the gzip only: the body is its decompression, so a value of ~250 KB is stored as ~40 KB),
the archive delta and a new version number are stored together, or nothing is, and only
while the write's fencing token is still the feed's (``coordination.py`` grants them). The
same script announces the new version on the deployment's channel (``replicas/replication.py``).

Keys, under the configured prefix ``P`` and for a feed ``N``::

    P feed:N:state    the FeedState as JSON
    P feed:N:pub      hash: gzip, etag, last_modified, entries
    P feed:N:entries  hash: entry id -> archived entry (JSON, zlib-compressed when it pays)
    P feed:N:polls    list: poll records, newest first, HISTORY_KEPT at most
    P versions        hash: N -> version of the feed's last write
    P fence:N         the token of the feed's newest lease (see coordination.py)

Calls block (the sync client of redis-py): the poller runs them on its storage thread, as it
does SQLite's.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import redis
from redis.commands.core import Script

from feedfix.core.archive import Archived
from feedfix.core.model import Entry
from feedfix.service.state import ArchiveUpdate, FeedState, PollRecord, Published, Snapshot
from feedfix.service.store import (
    HISTORY_KEPT,
    SOURCES_KEPT,
    Fenced,
    StoreError,
    bounded_sources,
    redacted,
)
from feedfix.service.store.codec import entry_from_json, entry_to_json

COMPRESS_OVER = 512  # bytes of JSON from which an archived entry is stored zlib-compressed
SOCKET_TIMEOUT = 5.0  # seconds a command may take before the store counts as unreachable
CONNECT_TIMEOUT = 2.0
T = TypeVar("T")

# KEYS: state, pub, entries, polls, fence, versions
# ARGV: fence token ("" for none), channel, name, state, record, kept history,
#       has_pub, gzip, etag, last_modified, entries, has_archive, n_kept, kept ids..., then
#       changed (id, value) pairs
_SAVE = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[5]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[4])
redis.call('LPUSH', KEYS[4], ARGV[5])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[6]) - 1)
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[2], 'gzip', ARGV[8], 'etag', ARGV[9], 'last_modified', ARGV[10],
             'entries', ARGV[11])
end
if ARGV[12] == '1' then
  local n = tonumber(ARGV[13])
  local kept = {}
  for i = 14, 13 + n do kept[ARGV[i]] = true end
  for _, key in ipairs(redis.call('HKEYS', KEYS[3])) do
    if not kept[key] then redis.call('HDEL', KEYS[3], key) end
  end
  for i = 14 + n, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
end
local version = redis.call('HINCRBY', KEYS[6], ARGV[3], 1)
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. version)
return version
"""

# KEYS: state, pub, versions. ARGV: channel, name, state, gzip, etag, last_modified, entries
_RESTORE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'gzip', ARGV[4], 'etag', ARGV[5], 'last_modified', ARGV[6],
           'entries', ARGV[7])
local version = redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. version)
return version
"""


def encode_archived(archived: Archived) -> bytes:
    """An archived entry as stored: JSON, compressed when that makes it smaller."""
    text = json.dumps(
        {"h": archived.source_hash, "f": archived.first_seen, "e": entry_to_json(archived.entry)},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    if len(text) > COMPRESS_OVER:
        packed = zlib.compress(text, 6)
        if len(packed) < len(text):
            return b"z" + packed
    return b"j" + text


def decode_archived(key: str, value: bytes) -> Archived:
    """The entry ``encode_archived`` stored."""
    text = zlib.decompress(value[1:]) if value[:1] == b"z" else value[1:]
    data = json.loads(text)
    return Archived(
        id=key, source_hash=data["h"], entry=entry_from_json(data["e"]), first_seen=data["f"]
    )


def _output_args(published: Published) -> list[Any]:
    """An output as the save and restore scripts take it: gzip, ETag, Last-Modified, entries."""
    return [published.gzip, published.etag, repr(published.last_modified), published.entries]


class RedisStore:
    """A Store in Redis: ``url`` as redis-py reads it (``rediss://`` for TLS, a password in
    it), every key under ``prefix``."""

    def __init__(self, url: str, prefix: str = "feedfix:") -> None:
        self.url = url
        self.prefix = prefix
        self.channel = f"{prefix}published"
        try:
            self._redis: redis.Redis = redis.Redis.from_url(
                url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
                health_check_interval=10,
            )
        except ValueError as exc:
            raise StoreError(f"{redacted(url)}: not a Redis URL: {exc}") from exc
        self.seen: dict[str, int] = {}  # feed: the version this process last read or wrote
        self._outputs: dict[str, Published] = {}  # feed: the output last read or written
        self._save: Script = self._redis.register_script(_SAVE)
        self._restore: Script = self._redis.register_script(_RESTORE)

    def key(self, name: str, part: str) -> str:
        """The key of one part of a feed's stored state."""
        return f"{self.prefix}feed:{name}:{part}"

    def fence_key(self, name: str) -> str:
        """Where the feed's newest lease token is kept."""
        return f"{self.prefix}fence:{name}"

    @property
    def versions_key(self) -> str:
        """The hash of every feed's version."""
        return f"{self.prefix}versions"

    def _call(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except redis.RedisError as exc:
            raise StoreError(f"{redacted(self.url)}: cannot {what}: {exc}") from exc

    # ---- reading --------------------------------------------------------------------------

    def load(self, name: str, *, archive: bool = True) -> Snapshot:
        """State and output in one round trip; the archive's entries in another."""

        def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(self.key(name, "state"))
            pipe.hmget(self.key(name, "pub"), ["etag", "last_modified", "entries"])
            pipe.hget(self.versions_key, name)
            return pipe.execute()

        raw_state, (etag, modified, count), version = self._call("read", read)
        self.seen[name] = int(version or 0)
        state = FeedState(**json.loads(raw_state)) if raw_state else FeedState()
        published = None
        if etag is not None:
            published = self._output(name, etag.decode(), float(modified), int(count))
        entries = self.load_archive(name) if archive else {}
        return Snapshot(state, published, entries)

    def _output(self, name: str, etag: str, modified: float, count: int) -> Published | None:
        """The feed's output: the one last read or written when it is the same (its bytes are
        not sent again: a replica reads a feed after every poll of another)."""
        known = self._outputs.get(name)
        if known is not None and (known.etag, known.last_modified) == (etag, modified):
            return known
        packed = self._call("read", lambda: self._redis.hget(self.key(name, "pub"), "gzip"))
        if not isinstance(packed, bytes):
            return None  # replaced between the two reads: the next announcement brings it
        published = Published(packed, etag, modified, count)
        self._outputs[name] = published
        return published

    def load_archive(self, name: str) -> dict[str, Archived]:
        """The feed's archived entries."""
        rows: dict[bytes, bytes] = self._call(
            "read",
            lambda: self._redis.hgetall(self.key(name, "entries")),  # type: ignore[arg-type,return-value]
        )
        return {k.decode(): decode_archived(k.decode(), v) for k, v in rows.items()}

    def versions(self) -> dict[str, int]:
        """Every feed's version: a replica compares them with those it holds."""
        rows: dict[bytes, bytes] = self._call(
            "read",
            lambda: self._redis.hgetall(self.versions_key),  # type: ignore[arg-type,return-value]
        )
        return {k.decode(): int(v) for k, v in rows.items()}

    def history(self, name: str, limit: int = 20) -> list[PollRecord]:
        """Newest first."""
        rows: list[bytes] = self._call(
            "read",
            lambda: self._redis.lrange(self.key(name, "polls"), 0, limit - 1),  # type: ignore[arg-type,return-value]
        )
        return [PollRecord(**json.loads(r)) for r in rows]

    # ---- writing --------------------------------------------------------------------------

    def save(
        self,
        name: str,
        state: FeedState,
        record: PollRecord,
        published: Published | None = None,
        archive: ArchiveUpdate | None = None,
        *,
        fence: str | None = None,
    ) -> None:
        """One script: everything of the poll, and its announcement, or nothing."""
        args: list[Any] = [
            fence or "",
            self.channel,
            name,
            json.dumps(asdict(state)),
            json.dumps(asdict(record)),
            HISTORY_KEPT,
        ]
        if published is not None:
            args += ["1", *_output_args(published)]
        else:
            args += ["0", "", "", "", 0]
        if archive is not None:
            args += ["1", len(archive.kept), *sorted(archive.kept)]
            for key, archived in archive.changed.items():
                args += [key, encode_archived(archived)]
        else:
            args += ["0", 0]
        keys = [
            *(self.key(name, p) for p in ("state", "pub", "entries", "polls")),
            self.fence_key(name),
            self.versions_key,
        ]
        version = self._call("write", lambda: self._save(keys=keys, args=args))
        if version == 0:
            raise Fenced(f"{name}: not stored: the feed's lease passed to another replica")
        self.seen[name] = int(version)
        if published is not None:
            self._outputs[name] = published

    def restore(self, name: str, state: FeedState, published: Published) -> bool:
        """Put a served copy back where the store has none (Redis came back empty); true
        when it was missing and is stored now."""
        keys = [self.key(name, "state"), self.key(name, "pub"), self.versions_key]
        args = [self.channel, name, json.dumps(asdict(state)), *_output_args(published)]
        version = int(self._call("write", lambda: self._restore(keys=keys, args=args)))
        if version:
            self.seen[name] = version
            self._outputs[name] = published
        return version > 0

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """``SET NX`` then ``GET``: of replicas starting at once, the first write wins and
        every one reads it (the image proxy's key: all replicas sign alike)."""
        key = f"{self.prefix}secret:{name}"

        def keep() -> bytes:
            self._redis.set(key, make(), nx=True)
            value: bytes | None = self._redis.get(key)  # type: ignore[assignment]
            if value is None:  # evicted between the two calls: Redis must not evict (README)
                raise redis.RedisError(f"{key} vanished right after it was set")
            return value

        return self._call(f"keep {name}", keep).decode("utf-8")

    def save_sources(self, name: str, sources: Sequence[Entry]) -> None:
        """Replace the feed's last sources (bounded) in one transaction (a list, compressed)."""
        key = self.key(name, "sources")
        rows = [zlib.compress(entry_to_json(e).encode("utf-8")) for e in bounded_sources(sources)]

        def write() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(key)
            if rows:
                pipe.rpush(key, *rows)
            pipe.execute()

        self._call("write", write)

    def sources(self, name: str, limit: int = SOURCES_KEPT) -> list[Entry]:
        """In the upstream's order."""
        rows: list[bytes] = self._call(
            "read",
            lambda: self._redis.lrange(self.key(name, "sources"), 0, limit - 1),  # type: ignore[arg-type,return-value]
        )
        return [entry_from_json(zlib.decompress(r).decode("utf-8")) for r in rows]

    def ping(self) -> None:
        """Raise StoreError when Redis does not answer."""
        self._call("reach Redis", self._redis.ping)

    def close(self) -> None:
        """Close the connections."""
        self._redis.close()
