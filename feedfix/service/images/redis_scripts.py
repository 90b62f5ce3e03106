"""The image index's Lua scripts (``redis_index.py`` says the keys): each change to an
image's row, its pin and the totals is one script, atomic whichever replica runs it."""

from __future__ import annotations

import redis

_PUT = """
local P, k = ARGV[1], ARGV[2]
local ck = P .. 'c:' .. k
local old = redis.call('HGET', ck, 'size')
if old then redis.call('HINCRBY', P .. 'totals', 'bytes', -tonumber(old))
else redis.call('HINCRBY', P .. 'totals', 'entries', 1) end
redis.call('HSET', ck, 'media_type', ARGV[3], 'size', ARGV[4], 'etag', ARGV[5], 'url', ARGV[6],
           'stored_at', ARGV[7])
redis.call('HINCRBY', P .. 'totals', 'bytes', tonumber(ARGV[4]))
redis.call('ZADD', P .. 'used', ARGV[8], k)
if redis.call('SISMEMBER', P .. 'pinned', k) == 0 then
  redis.call('ZADD', P .. 'lru', ARGV[8], k)
end
return 1
"""

_DROP = """
local function drop(P, k)
  local ck = P .. 'c:' .. k
  local row = redis.call('HMGET', ck, 'media_type', 'size', 'etag', 'url', 'stored_at')
  local used = redis.call('ZSCORE', P .. 'used', k)
  redis.call('DEL', ck)
  redis.call('ZREM', P .. 'used', k)
  redis.call('ZREM', P .. 'lru', k)
  if not row[2] then return nil end
  redis.call('HINCRBY', P .. 'totals', 'bytes', -tonumber(row[2]))
  redis.call('HINCRBY', P .. 'totals', 'entries', -1)
  return {k, row[1], row[2], row[3], row[4], row[5], used or row[5]}
end
"""

_EVICT = (
    _DROP
    + """
local P, limit, keep = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
local bytes = tonumber(redis.call('HGET', P .. 'totals', 'bytes') or '0')
while bytes > limit do
  local batch = redis.call('ZRANGE', P .. 'lru', 0, 63)
  local any = false
  for _, k in ipairs(batch) do
    if bytes <= limit then break end
    if k ~= keep then
      any = true
      local row = drop(P, k)
      if row then
        bytes = bytes - tonumber(row[3])
        table.insert(out, row)
      end
    end
  end
  if not any then break end
end
return out
"""
)

_DISCARD = _DROP + "drop(ARGV[1], ARGV[2]) return 1"

# The archive. Rows carry: path url state pinned newest size due attempts first_failure
# failed_at reason error. archived_bytes counts archived and pinned rows.
# An image's holders are a zset by each entry's date, so that the image is as new as the
# newest entry still pointing at it; an index written when they were a plain set has its
# holders moved over, each dated by the image (its newest) as it was.
_HOLDERS = """
local function holders(P, k)
  local hk = P .. 'holders:' .. k
  if redis.call('TYPE', hk)['ok'] == 'set' then
    local was = redis.call('HGET', P .. 'a:' .. k, 'newest') or 0
    local members = redis.call('SMEMBERS', hk)
    redis.call('DEL', hk)
    for _, m in ipairs(members) do redis.call('ZADD', hk, was, m) end
  end
  return hk
end
"""

_REF = (
    _HOLDERS
    + """
local P, k, dated, now = ARGV[1], ARGV[2], tonumber(ARGV[6]), ARGV[7]
redis.call('ZADD', holders(P, k), dated, ARGV[3])
local ak = P .. 'a:' .. k
if redis.call('EXISTS', ak) == 0 then
  local size = redis.call('HGET', P .. 'c:' .. k, 'size')
  redis.call('HSET', ak, 'path', ARGV[4], 'url', ARGV[5], 'pinned', 1, 'newest', dated,
             'attempts', 0)
  if size then
    redis.call('HSET', ak, 'state', 'archived', 'size', size)
    redis.call('ZADD', P .. 'archived', dated, k)
    redis.call('HINCRBY', P .. 'totals', 'archived_bytes', tonumber(size))
  else
    redis.call('HSET', ak, 'state', 'pending', 'size', 0, 'due', now)
    redis.call('ZADD', P .. 'pending', now, k)
  end
  redis.call('SADD', P .. 'pinned', k)
  redis.call('ZREM', P .. 'lru', k)
elseif dated > tonumber(redis.call('HGET', ak, 'newest')) then
  redis.call('HSET', ak, 'newest', dated)
  if redis.call('HGET', ak, 'state') == 'archived' then
    redis.call('ZADD', P .. 'archived', dated, k)
  end
end
return 1
"""
)

_UNPIN = """
local function unpin(P, k)
  local used = redis.call('ZSCORE', P .. 'used', k)
  if used then redis.call('ZADD', P .. 'lru', used, k) end
  redis.call('SREM', P .. 'pinned', k)
end
"""

_UNREF = (
    _UNPIN
    + _HOLDERS
    + """
local P, k = ARGV[1], ARGV[2]
local hk = holders(P, k)
local ak = P .. 'a:' .. k
redis.call('ZREM', hk, ARGV[3])
local newest = redis.call('ZREVRANGE', hk, 0, 0, 'WITHSCORES')
if #newest > 0 then  -- still held: as new as the newest holder
  redis.call('HSET', ak, 'newest', newest[2])
  if redis.call('HGET', ak, 'state') == 'archived' then
    redis.call('ZADD', P .. 'archived', newest[2], k)
  end
  return 0
end
local row = redis.call('HMGET', ak, 'state', 'size', 'pinned')
if row[1] == 'archived' and row[3] == '1' then
  redis.call('HINCRBY', P .. 'totals', 'archived_bytes', -tonumber(row[2]))
end
redis.call('DEL', ak)
for _, set in ipairs({'pending', 'archived', 'failures'}) do redis.call('ZREM', P .. set, k) end
redis.call('SREM', P .. 'unpinned', k)
unpin(P, k)
return 1
"""
)

_CLAIM = """
local P, now, hold = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local keys = redis.call('ZRANGEBYSCORE', P .. 'pending', '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, k in ipairs(keys) do
  redis.call('ZADD', P .. 'pending', now + hold, k)
  redis.call('HSET', P .. 'a:' .. k, 'due', now + hold)
  local r = redis.call('HMGET', P .. 'a:' .. k, 'path', 'url', 'attempts', 'first_failure')
  table.insert(out, {k, r[1], r[2], r[3], r[4] or ''})
end
return out
"""

_ARCHIVED = """
local P, k = ARGV[1], ARGV[2]
local ak = P .. 'a:' .. k
local row = redis.call('HMGET', ak, 'state', 'pinned', 'newest')
if not row[1] or row[1] == 'archived' then return 0 end
redis.call('HSET', ak, 'state', 'archived', 'size', ARGV[3])
redis.call('HDEL', ak, 'due', 'reason', 'error')
redis.call('ZREM', P .. 'pending', k)
redis.call('ZREM', P .. 'failures', k)
redis.call('ZADD', P .. 'archived', row[3], k)
if row[2] == '1' then redis.call('HINCRBY', P .. 'totals', 'archived_bytes', tonumber(ARGV[3])) end
return 1
"""

_FAILED = """
local P, k, now = ARGV[1], ARGV[2], ARGV[3]
local ak = P .. 'a:' .. k
local state = redis.call('HGET', ak, 'state')
if not state or state == 'archived' then return 0 end
redis.call('HINCRBY', ak, 'attempts', 1)
redis.call('HSETNX', ak, 'first_failure', now)
redis.call('HSET', ak, 'failed_at', now, 'reason', ARGV[4], 'error', ARGV[5])
redis.call('ZADD', P .. 'failures', now, k)
if ARGV[6] == '' then
  redis.call('HSET', ak, 'state', 'failed')
  redis.call('HDEL', ak, 'due')
  redis.call('ZREM', P .. 'pending', k)
else
  redis.call('HSET', ak, 'state', 'pending', 'due', ARGV[6])
  redis.call('ZADD', P .. 'pending', ARGV[6], k)
end
return 1
"""

# Back to pending, due at ARGV[3]: an archived image whose file went (only when pinned), or
# one that fits archive_size again after the cache let it go ("refit"), or a retry.
_REQUEUE = """
local P, k, due, how = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ak = P .. 'a:' .. k
local row = redis.call('HMGET', ak, 'state', 'pinned', 'size')
if not row[1] then return 0 end
if how == 'lost' and not (row[1] == 'archived' and row[2] == '1') then return 0 end
if how == 'retry' and row[1] == 'archived' then return 0 end
if row[1] == 'archived' and row[2] == '1' then
  redis.call('HINCRBY', P .. 'totals', 'archived_bytes', -tonumber(row[3]))
end
redis.call('HSET', ak, 'state', 'pending', 'size', 0, 'due', due, 'pinned', 1)
if how == 'retry' then
  redis.call('HSET', ak, 'attempts', 0)
  redis.call('HDEL', ak, 'first_failure', 'failed_at', 'reason', 'error')
  redis.call('ZREM', P .. 'failures', k)
end
redis.call('ZREM', P .. 'archived', k)
redis.call('SREM', P .. 'unpinned', k)
redis.call('SADD', P .. 'pinned', k)
redis.call('ZREM', P .. 'lru', k)
redis.call('ZADD', P .. 'pending', due, k)
return 1
"""

_PIN = (
    _UNPIN
    + """
local P, k, on = ARGV[1], ARGV[2], ARGV[3] == '1'
local ak = P .. 'a:' .. k
local row = redis.call('HMGET', ak, 'state', 'pinned', 'size')
if row[1] ~= 'archived' or (row[2] == '1') == on then return 0 end
local size = tonumber(row[3])
if on then
  redis.call('HSET', ak, 'pinned', 1)
  redis.call('SADD', P .. 'pinned', k)
  redis.call('SREM', P .. 'unpinned', k)
  redis.call('ZREM', P .. 'lru', k)
  redis.call('HINCRBY', P .. 'totals', 'archived_bytes', size)
else
  redis.call('HSET', ak, 'pinned', 0)
  redis.call('SADD', P .. 'unpinned', k)
  redis.call('HINCRBY', P .. 'totals', 'archived_bytes', -size)
  unpin(P, k)
end
return 1
"""
)


class Scripts:
    """The index's Lua scripts, registered once on a client."""

    def __init__(self, db: redis.Redis, prefix: str) -> None:
        self.db = db
        self.prefix = prefix + "img:"
        register = db.register_script
        self.put, self.evict, self.discard = register(_PUT), register(_EVICT), register(_DISCARD)
        self.ref, self.unref, self.claim = register(_REF), register(_UNREF), register(_CLAIM)
        self.archived, self.failed = register(_ARCHIVED), register(_FAILED)
        self.requeue, self.pin = register(_REQUEUE), register(_PIN)

    def key(self, *parts: str) -> str:
        """A key of the index."""
        return self.prefix + "".join(parts)
