"""Admission control: how much may wait in Redis, checked before anything is stored.

Every job is admitted before its image is stored and its job enqueued, and released when it
ends (finished, failed or poison). Admission is one Lua script, so concurrent API processes
never overshoot a bound. It refuses a job (``QueueFullError``, HTTP 429 with ``Retry-After``)
when the backlog holds ``Bounds.jobs`` jobs, when the images it holds in Redis would pass
``Bounds.bytes``, when the job's API key holds its share (``OCR_QUEUE_SHARE_PER_KEY``) of
either, or when Redis itself is 90 % full (``Bounds.memory``: another user of the same Redis,
results kept in Redis; Retry-After 30 s, as ending jobs need not free that memory). An empty
backlog admits any job while Redis has room, so the bounds alone never refuse a job for ever.

An entry is looked at again when its image's TTL has passed (``OCR_IMAGE_TTL_S``): it is
kept while its rq job still waits or runs, and forgotten otherwise (a job removed past
batchocr, a submission whose API process died before enqueueing), so no place is held for ever. Retry-After is the excess divided by the drain rate
(jobs ended in the last minute, counted in 10-second windows by ``release``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from redis import Redis
from rq.job import Job

from shared import keys
from shared.errors import QueueFullError
from shared.redis_memory import RedisMemory, check_no_eviction
from shared.settings import Settings

# Without a maxmemory to derive them from: bounds that a Redis host with a few GB holds.
DEFAULT_JOBS = 100_000
DEFAULT_BYTES = 1 << 30
# Redis bytes a queued job costs besides its image (rq's hash and queue entry, the tally):
# measured ~1.3 KB (docs/BENCHMARKS.md, issue 19); derived job bounds assume 2 KB.
JOB_BYTES = 2048
MEMORY_FILL = 0.9
WINDOW_S = 10
RATE_WINDOWS = 6
RETRY_AFTER_MAX_S = 600
RETRY_AFTER_IDLE_S = 60
MEMORY_RETRY_AFTER_S = 30
# What a refusal names as the bound it met (QueueFullError.bound, /metrics).
BOUND_NAMES = ("jobs", "bytes", "key_jobs", "key_bytes", "redis_memory")

# Shared by both scripts: forget one entry (ARGV[1] is the key prefix of owners' hashes).
_FORGET = """
local function forget(id)
  local held = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  if not held then return 0 end
  local size, owner = string.match(held, '^(%d+) (.*)$')
  size = tonumber(size) or 0
  redis.call('HDEL', KEYS[2], id)
  redis.call('DECRBY', KEYS[3], size)
  if owner and owner ~= '' then
    local okey = ARGV[1] .. owner
    redis.call('HINCRBY', okey, 'jobs', -1)
    redis.call('HINCRBY', okey, 'bytes', -size)
  end
  return 1
end
"""

# KEYS: jobs zset, held hash, bytes string, refusals hash.  ARGV: owner prefix, job id, image
# bytes, owner, now, lapse time, max jobs, max bytes, max owner jobs, max owner bytes, rq's job
# key prefix. A lapsed entry whose rq job still waits or runs is kept another lapse.
# Returns {1, 'admitted'|'held'} or {0, bound, count, bytes, owner jobs, owner bytes}.
_ADMIT = _FORGET + """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[5], 'LIMIT', 0, 64)) do
  local status = redis.call('HGET', ARGV[11] .. id, 'status')
  if status == 'queued' or status == 'started' or status == 'deferred' or status == 'scheduled' then
    redis.call('ZADD', KEYS[1], ARGV[6], id)
  else
    forget(id)
  end
end
local id, size, owner = ARGV[2], tonumber(ARGV[3]), ARGV[4]
if redis.call('HEXISTS', KEYS[2], id) == 1 then return {1, 'held'} end
local jobs = redis.call('ZCARD', KEYS[1])
local bytes = tonumber(redis.call('GET', KEYS[3]) or '0')
local ojobs, obytes = 0, 0
if owner ~= '' then
  local o = redis.call('HMGET', ARGV[1] .. owner, 'jobs', 'bytes')
  ojobs, obytes = tonumber(o[1] or '0'), tonumber(o[2] or '0')
end
local bound = nil
if jobs > 0 then
  if jobs >= tonumber(ARGV[7]) then bound = 'jobs'
  elseif size > 0 and bytes + size > tonumber(ARGV[8]) then bound = 'bytes'
  elseif owner ~= '' and ojobs >= tonumber(ARGV[9]) then bound = 'key_jobs'
  elseif owner ~= '' and size > 0 and obytes + size > tonumber(ARGV[10]) then bound = 'key_bytes' end
end
if bound then
  redis.call('HINCRBY', KEYS[4], bound, 1)
  return {0, bound, jobs, bytes, ojobs, obytes}
end
redis.call('ZADD', KEYS[1], ARGV[6], id)
redis.call('HSET', KEYS[2], id, size .. ' ' .. owner)
redis.call('INCRBY', KEYS[3], size)
if owner ~= '' then
  redis.call('HINCRBY', ARGV[1] .. owner, 'jobs', 1)
  redis.call('HINCRBY', ARGV[1] .. owner, 'bytes', size)
end
return {1, 'admitted'}
"""

# KEYS: jobs zset, held hash, bytes string, drained window.  ARGV: owner prefix, window TTL
# (0: not counted as drained), ended job ids... Returns how many places were given back.
_RELEASE = _FORGET + """
local given = 0
for i = 3, #ARGV do given = given + forget(ARGV[i]) end
if given > 0 and tonumber(ARGV[2]) > 0 then
  redis.call('INCRBY', KEYS[4], given)
  redis.call('EXPIRE', KEYS[4], ARGV[2])
end
return given
"""


@dataclass(frozen=True)
class Bounds:
    """What may wait: ``jobs`` admitted and not ended, ``bytes`` of their images held in Redis,
    each API key ``share`` of both, and Redis filled to at most ``memory`` bytes (0 = no limit)."""

    jobs: int
    bytes: int
    share: float
    memory: int

    @classmethod
    def derive(cls, settings: Settings, memory: RedisMemory) -> Bounds:
        """The settings' bounds; where one is 0, half of Redis's ``maxmemory`` (jobs at
        ``JOB_BYTES`` each), or fixed defaults when Redis has no maxmemory."""
        half = memory.maxmemory // 2
        jobs = settings.max_queued_jobs or (max(1, half // JOB_BYTES) if half else DEFAULT_JOBS)
        size = settings.max_queued_bytes or (half or DEFAULT_BYTES)
        return cls(jobs=jobs, bytes=size, share=settings.queue_share_per_key,
                   memory=int(memory.maxmemory * MEMORY_FILL))

    def for_key(self, total: int) -> int:
        return max(1, int(total * self.share))


@dataclass(frozen=True)
class Backlog:
    """The tally's totals as ``/metrics`` shows them."""

    jobs: int
    bytes: int
    refusals: dict[str, int]


def admit(connection: Redis, settings: Settings, job_id: str, size: int, owner: str) -> bool:
    """Take a place in the backlog for job ``job_id`` holding ``size`` image bytes in Redis
    (0 for an image in S3). True if this call took it (False: the id already held one, a
    concurrent submitter of the same id). Raises QueueFullError over a bound, or
    EvictingRedisError on a Redis that evicts keys."""
    memory = RedisMemory.read(connection)
    check_no_eviction(memory, settings, "batchocr")
    bounds = Bounds.derive(settings, memory)
    if bounds.memory and memory.used + size > bounds.memory:  # ending jobs may not free it (results)
        connection.hincrby(keys.BACKLOG_REFUSALS, "redis_memory", 1)
        raise QueueFullError(f"the queue is full: Redis is {memory.used / memory.maxmemory:.0%} full (maxmemory "
                             f"{memory.maxmemory} bytes); nothing was stored, retry in {MEMORY_RETRY_AFTER_S} s",
                             retry_after=MEMORY_RETRY_AFTER_S, bound="redis_memory")
    now = time.time()
    answer = connection.eval(_ADMIT, 4, keys.BACKLOG_JOBS, keys.BACKLOG_HELD, keys.BACKLOG_BYTES,
                             keys.BACKLOG_REFUSALS, keys.BACKLOG_OWNER_PREFIX, job_id, size, owner, now,
                             now + settings.image_ttl_s, bounds.jobs, bounds.bytes,
                             bounds.for_key(bounds.jobs), bounds.for_key(bounds.bytes), Job.redis_job_namespace_prefix)
    if int(answer[0]) == 1:
        return _text(answer[1]) == "admitted"
    bound, jobs, held, owner_jobs, owner_bytes = _text(answer[1]), *(int(v) for v in answer[2:])
    if bound == "jobs":
        _refuse(connection, bound, need=jobs - bounds.jobs + 1, detail=f"{jobs} jobs wait (bound {bounds.jobs})")
    if bound == "bytes":
        _refuse(connection, bound, need=_jobs_holding(held + size - bounds.bytes, held, jobs),
                detail=f"queued images hold {held} bytes of Redis (bound {bounds.bytes})")
    share = owner_jobs / max(1, jobs)
    if bound == "key_jobs":
        _refuse(connection, bound, need=owner_jobs - bounds.for_key(bounds.jobs) + 1, share=share,
                detail=f"this API key has {owner_jobs} jobs waiting (its share: {bounds.for_key(bounds.jobs)})")
    _refuse(connection, bound, need=_jobs_holding(owner_bytes + size - bounds.for_key(bounds.bytes), owner_bytes,
                                                  owner_jobs), share=share,
            detail=f"this API key's queued images hold {owner_bytes} bytes (its share: {bounds.for_key(bounds.bytes)})")
    raise AssertionError("unreachable")


def release(connection: Redis, job_ids: Iterable[str], pipeline=None, *, drained: bool = True) -> None:
    """Give back the places of jobs that ended (any number of times: only the first counts),
    and count the places given back towards the drain rate unless not ``drained`` (a
    submission undone). With
    ``pipeline``, queued on it instead of run."""
    ids = list(job_ids)
    if not ids:
        return
    window = int(time.time()) // WINDOW_S
    (pipeline or connection).eval(_RELEASE, 4, keys.BACKLOG_JOBS, keys.BACKLOG_HELD, keys.BACKLOG_BYTES,
                                  keys.drained_key(window), keys.BACKLOG_OWNER_PREFIX,
                                  WINDOW_S * (RATE_WINDOWS + 2) if drained else 0, *ids)


def drain_rate(connection: Redis) -> float:
    """Jobs ended per second over the last ``RATE_WINDOWS`` complete 10-second windows."""
    window = int(time.time()) // WINDOW_S
    counts = connection.mget([keys.drained_key(window - i) for i in range(1, RATE_WINDOWS + 1)])
    return sum(int(c or 0) for c in counts) / (WINDOW_S * RATE_WINDOWS)


def totals(connection: Redis) -> Backlog:
    jobs, held, refusals = connection.zcard(keys.BACKLOG_JOBS), connection.get(keys.BACKLOG_BYTES), \
        connection.hgetall(keys.BACKLOG_REFUSALS)
    return Backlog(jobs=int(jobs), bytes=int(held or 0),
                   refusals={_text(k): int(v) for k, v in refusals.items()})


def _jobs_holding(excess: int, held: int, jobs: int) -> int:
    """How many average queued jobs must end to free ``excess`` bytes."""
    average = held / max(1, jobs) or 1
    return max(1, math.ceil(excess / average))


def _refuse(connection: Redis, bound: str, *, need: int, detail: str, share: float = 1.0) -> None:
    """Raise QueueFullError with Retry-After = ``need`` jobs at the drain rate (the key's
    ``share`` of it, for a key's own bound), 1..600 s; 60 s while nothing drains."""
    rate = drain_rate(connection) * share
    wait = RETRY_AFTER_IDLE_S if rate <= 0 else min(RETRY_AFTER_MAX_S, max(1, math.ceil(max(1, need) / rate)))
    raise QueueFullError(f"the queue is full: {detail}; nothing was stored, retry in {wait} s",
                         retry_after=wait, bound=bound)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
