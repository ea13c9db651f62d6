"""Collections: a named group of jobs (an archive run, a batch of forms) with counts by status,
progress, one listing of its jobs, one cancel and one completion callback.

Redis (``shared.keys``): a hash per collection holds what it is (owner, name, the options its
jobs default to, callback URL, times) and its counts (``n_<status>``, ``total``); a hash job id
-> status and a sorted set job id -> join order hold its jobs. Counts are kept, not recounted:
every change of a member's status goes through one Lua script (``mark``), which ignores a
change it has seen (a retried write after an outage counts once) and any change after an end.
The hooks are where a job's status changes: submit (``join``), the worker starting a batch and
the reaper or a hand-back queueing it again (``mark``), and ``job_control.end_jobs``.

Cancelling is lazy: the collection is marked, new jobs may no longer join, and a worker that
takes one of its queued jobs cancels it instead of running it (``worker.dequeue``); removing
100,000 ids from the middle of a queue list at once would block Redis. Running jobs finish.
Keys live ``OCR_IMAGE_TTL_S + OCR_RESULT_TTL_S`` after the collection's last change.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from redis import Redis
from rq.job import Job, JobStatus

from shared import callbacks, ids, keys
from shared.errors import BadOptionError, CollectionConflictError, CollectionNotFoundError
from shared.payload import JobPayload
from shared.settings import Settings

STATUSES = ("queued", "started", "finished", "failed", "canceled")
ENDED = ("finished", "failed", "canceled")
MAX_NAME = 200
MAX_PAGE = 1000
# The callbacks' due set holds job ids and, for collections, this prefix + the collection id.
WATCH_PREFIX = "collection:"

# ARGV: ttl, created at, id, then the hash's field/value pairs.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""

_JOIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'canceled_at') == 1 then return -2 end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  if old == ARGV[2] or not (ARGV[2] == 'queued' and (old == 'finished' or old == 'failed' or old == 'canceled')) then
    return 0
  end
  redis.call('HINCRBY', KEYS[1], 'n_' .. old, -1)
else
  redis.call('ZADD', KEYS[3], redis.call('HINCRBY', KEYS[1], 'joined', 1), ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'total', 1)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'n_' .. ARGV[2], 1)
if ARGV[2] == 'queued' or ARGV[2] == 'started' then redis.call('HDEL', KEYS[1], 'finished_at')
elseif tonumber(redis.call('HGET', KEYS[1], 'n_queued') or '0') + tonumber(redis.call('HGET', KEYS[1], 'n_started') or '0') == 0 then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[3])
end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0')
if ttl > 0 then for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end end
return 1
"""

# ARGV[2] '' = the job leaves (a submission undone). An ended job changes no more.
_MARK = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old or old == ARGV[2] then return 0 end
if ARGV[2] ~= '' and (old == 'finished' or old == 'failed' or old == 'canceled') then return 0 end
redis.call('HINCRBY', KEYS[1], 'n_' .. old, -1)
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'total', -1)
  return 1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'n_' .. ARGV[2], 1)
if ARGV[2] == 'started' then redis.call('HSETNX', KEYS[1], 'started_at', ARGV[3]) end
local open = tonumber(redis.call('HGET', KEYS[1], 'n_queued') or '0') + tonumber(redis.call('HGET', KEYS[1], 'n_started') or '0')
if open == 0 then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[3])
  local url = redis.call('HGET', KEYS[1], 'callback_url')
  if url and url ~= '' then
    redis.call('HSET', KEYS[4], 'url', url, 'owner', redis.call('HGET', KEYS[1], 'owner') or '', 'since', ARGV[3],
               'tries', 0, 'looks', 0)
    redis.call('ZADD', KEYS[5], ARGV[3], ARGV[4])
  end
end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0')
if ttl > 0 then for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end end
return 1
"""


def _keys(collection_id: str) -> list[str]:
    return [keys.collection_key(collection_id), keys.collection_jobs_key(collection_id),
            keys.collection_order_key(collection_id)]


def create(connection: Redis, settings: Settings, *, owner: str, name: str = "", options: dict[str, str] | None = None,
           callback_url: str = "", collection_id: str | None = None) -> tuple[dict[str, str], bool]:
    """A new collection (and True), or the existing one with ``collection_id`` (and False: a
    re-run finds its collection). ``options`` are already checked (``JobOptions.parse``)."""
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise BadOptionError(f"name must be a string of at most {MAX_NAME} characters")
    if callback_url:
        callbacks.check_url(settings, callback_url)
    if collection_id is None:
        collection_id = str(uuid.uuid4())
    else:
        ids.check_uuid(collection_id, "id")
    ttl = settings.image_ttl_s + settings.result_ttl_s
    fields = {"id": collection_id, "owner": owner, "name": name, "options": json.dumps(options or {}),
              "callback_url": callback_url, "created_at": time.time(), "ttl": ttl, "total": 0}
    pairs = [str(item) for field in fields.items() for item in field]
    created = connection.register_script(_CREATE)(
        keys=[keys.collection_key(collection_id), keys.owner_collections_key(owner)],
        args=[ttl, fields["created_at"], collection_id, *pairs])
    if not created:
        return fetch(connection, collection_id, owner, conflict=True), False
    return {k: str(v) for k, v in fields.items()}, True


def fetch(connection: Redis, collection_id: str, owner: str, *, conflict: bool = False) -> dict[str, str]:
    """The collection's hash; another key's collection is not found (or, with ``conflict``, a
    CollectionConflictError: its id is taken)."""
    raw = connection.hgetall(keys.collection_key(collection_id)) if ids.is_canonical_uuid(collection_id) else {}
    found = {k.decode(): v.decode() for k, v in raw.items()}
    if found.get("owner", owner) != owner and conflict:
        raise CollectionConflictError("this collection id is already used by another API key; choose another")
    if not found.get("created_at") or found["owner"] != owner:
        raise CollectionNotFoundError(f"no collection with id {str(collection_id)[:64]!r} (unknown or expired)")
    return found


def job_defaults(collection: dict[str, str]) -> dict[str, str]:
    """The options the collection's jobs take unless they set their own."""
    return json.loads(collection.get("options") or "{}")


def join(connection: Redis, collection_id: str, job_id: str, status: str = "queued") -> None:
    """``job_id`` is a member with ``status`` (a job that existed before joins as it stands)."""
    reply = connection.register_script(_JOIN)(keys=_keys(collection_id), args=[job_id, status, time.time()])
    if reply == -1:
        raise CollectionNotFoundError(f"collection {collection_id} is gone (expired)")
    if reply == -2:
        raise CollectionConflictError(f"collection {collection_id} is cancelled: no job may join it")


def join_existing(connection: Redis, collection_id: str, job: Job) -> None:
    """A job that existed joins as it stands (a re-run, or a page two runs share); one that
    ended meanwhile is then marked so, so it is not counted open for ever."""
    join(connection, collection_id, job.id, _member_status(job))
    mark(connection, [(collection_id, job.id, _member_status(job))])


def _member_status(job: Job) -> str:
    status = job.get_status(refresh=True)
    return ended_status(status.value if status else "") or ("started" if status == JobStatus.STARTED else "queued")


def mark(connection: Redis, changes: Iterable[tuple[str, str, str]], pipeline=None) -> None:
    """Record (collection id, job id, status) changes; status '' removes the job. On the
    collection's last open job's end its callback is due (``callbacks``)."""
    script = connection.register_script(_MARK)
    target = pipeline if pipeline is not None else connection.pipeline(transaction=False)
    now = time.time()
    for collection_id, job_id, status in changes:
        watched = WATCH_PREFIX + collection_id
        script(keys=[*_keys(collection_id), keys.callback_key(watched), keys.CALLBACKS_DUE],
               args=[job_id, status, now, watched], client=target)
    if pipeline is None:
        target.execute()


def mark_jobs(connection: Redis, jobs: Iterable[Job], status: str, pipeline=None) -> None:
    """``mark`` each of these jobs that belongs to a collection with ``status``."""
    changes = [(p.collection, job.id, status) for job in jobs if (p := JobPayload.from_job(job)).collection]
    if changes:
        mark(connection, changes, pipeline=pipeline)


def ended_status(rq_status: str) -> str | None:
    """A collection's name for a job's terminal rq status (None: not ended)."""
    return {"finished": "finished", "failed": "failed", "canceled": "canceled", "stopped": "canceled"}.get(rq_status)


def is_canceled(connection: Redis, collection_id: str) -> bool:
    return bool(connection.hexists(keys.collection_key(collection_id), "canceled_at"))


def cancel(connection: Redis, collection: dict[str, str]) -> dict[str, Any]:
    """Stop the collection: nothing joins it any more, its queued jobs are cancelled as
    workers reach them, its running jobs finish."""
    key = keys.collection_key(collection["id"])
    first = connection.hsetnx(key, "canceled_at", time.time())
    view = describe(connection, fetch(connection, collection["id"], collection["owner"]))
    queued, started = view["counts"]["queued"], view["counts"]["started"]
    message = (f"{queued} queued job(s) are cancelled as workers reach them (no OCR is spent on them); "
               f"{started} running job(s) finish") if first else "the collection was already cancelled"
    return {"id": collection["id"], "canceled": bool(first), "message": message, "collection": view}


def describe(connection: Redis, collection: dict[str, str]) -> dict[str, Any]:
    """The public view: counts by status, progress (ended / total) and times."""
    counts = {status: max(0, int(collection.get(f"n_{status}", 0))) for status in STATUSES}
    total = max(0, int(collection.get("total", 0)))
    ended = sum(counts[s] for s in ENDED)
    if collection.get("canceled_at"):
        status = "canceled"
    elif total == 0:
        status = "empty"
    else:
        status = "active" if counts["queued"] + counts["started"] else "finished"
    return {
        "id": collection["id"], "name": collection.get("name", ""), "status": status,
        "options": job_defaults(collection), "callback_url": collection.get("callback_url") or None,
        "total": total, "counts": counts, "progress": round(ended / total, 4) if total else 0.0,
        **{f"{when}_at": _iso(collection.get(f"{when}_at")) for when in ("created", "started", "finished", "canceled")},
        "links": {"self": f"/v1/collections/{collection['id']}", "jobs": f"/v1/collections/{collection['id']}/jobs"},
    }


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(float(value))) + f".{int(float(value) % 1 * 1000):03d}Z"


def jobs_page(connection: Redis, collection: dict[str, str], offset: int, limit: int) -> dict[str, Any]:
    """Its jobs in the order they joined, ``limit`` from ``offset``, with their statuses."""
    ids = [raw.decode() for raw in connection.zrange(keys.collection_order_key(collection["id"]), offset,
                                                     offset + limit - 1)]
    statuses = connection.hmget(keys.collection_jobs_key(collection["id"]), ids) if ids else []
    jobs = [{"id": job_id, "status": (status or b"unknown").decode(), "links": {"self": f"/v1/jobs/{job_id}"}}
            for job_id, status in zip(ids, statuses)]
    after = offset + len(ids)
    more = after < connection.zcard(keys.collection_order_key(collection["id"]))
    return {"jobs": jobs, "offset": offset, "next_offset": after if more else None}


def owned(connection: Redis, owner: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """The key's collections, newest first (expired ones dropped from its index)."""
    index = keys.owner_collections_key(owner)
    views = []
    for raw in connection.zrevrange(index, offset, offset + limit - 1):
        try:
            views.append(describe(connection, fetch(connection, raw.decode(), owner)))
        except CollectionNotFoundError:
            connection.zrem(index, raw)
    return views


def delivery(connection: Redis, watched_id: str) -> tuple[str, bytes] | None:
    """The callback of a collection that has ended (its delivery id and body), or None if it is
    gone or open again (jobs joined since: its next end is delivered then)."""
    raw = connection.hgetall(keys.collection_key(watched_id.removeprefix(WATCH_PREFIX)))
    found = {k.decode(): v.decode() for k, v in raw.items()}
    if not found.get("created_at"):
        return None
    view = describe(connection, found)
    if view["counts"]["queued"] + view["counts"]["started"]:
        return None
    delivery_id = f"{view['id']}.{view['status']}.{view['total']}"
    body = {"delivery_id": delivery_id, "collection_id": view["id"], "status": view["status"],
            "total": view["total"], "counts": view["counts"], "links": {"self": view["links"]["self"]}}
    return delivery_id, json.dumps(body, separators=(",", ":")).encode()


def paging(args: dict[str, str]) -> tuple[int, int]:
    """``offset`` and ``limit`` (1..MAX_PAGE, default 100) of a listing request."""
    offset, limit = str(args.get("offset", "0")), str(args.get("limit", "100"))
    if not offset.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise BadOptionError(f"offset must be a whole number and limit 1..{MAX_PAGE}")
    return int(offset), int(limit)
