"""Collections: a named group of jobs (an archive run, a batch of forms) with counts by status,
progress, one listing of its jobs, one cancel and one completion callback.

Redis (``shared.keys``): a hash per collection holds what it is (owner, name, the options its
jobs default to, callback URL, times) and its counts (``n_<status>``, ``total``); a hash job id
-> status and a sorted set job id -> join order hold its jobs; a set per job names the other
collections it joined as a job that already existed. Counts are kept, not recounted:
every change of a member's status goes through one Lua script (``mark``), which ignores a
change it has seen (a retried write after an outage counts once) and any change after an end.
The hooks are where a job's status changes: submit (``join``), the worker starting a batch and
the reaper or a hand-back queueing it again (``mark``), and ``job_control.end_jobs``.

Cancelling is lazy: the collection is marked, new jobs may no longer join, and a worker that
takes one of its queued jobs cancels it instead of running it (``worker.dequeue``); removing
100,000 ids from the middle of a queue list at once would block Redis. Running jobs finish.
Keys live ``OCR_IMAGE_TTL_S + OCR_RESULT_TTL_S`` after the collection's last change. What
clients read of a collection is built in ``shared.collection_views``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable

from redis import Redis
from rq.job import Job, JobStatus

from shared import callbacks, ids, keys
from shared.errors import BadOptionError, CollectionConflictError, CollectionNotFoundError
from shared.payload import JobPayload
from shared.settings import Settings

STATUSES = ("queued", "started", "finished", "failed", "canceled")
ENDED = ("finished", "failed", "canceled")
MAX_NAME = 200
# The callbacks' due set holds job ids and, for collections, this prefix + the collection id.
WATCH_PREFIX = "collection:"

# An API key's index keeps its newest OWNER_INDEX collections (expired ones leave it when listed).
OWNER_INDEX = 10_000
# A job that joins already ended (a page an earlier run read) may leave its collection with no
# open job: the callback is then due this much later, and each such join moves it on, so a run
# of them is delivered once, after the last.
JOIN_SETTLE_S = 5

# ARGV: ttl, created at, id, index size, then the hash's field/value pairs.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - tonumber(ARGV[4]))
return 1
"""

_CANCEL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], 'canceled_at', ARGV[1])
"""

# A collection with no open job left is finished, and its callback due at ``due_at`` (the
# delivery watched under the watch prefix + its id, in the due set): after a job's end, an
# ended job's join, or the undoing of its last queued job's submission.
_COMPLETE = """
local function complete(hash, cid, now, due, callback_prefix, watch_prefix, due_at)
  redis.call('HSET', hash, 'finished_at', now)
  local url = redis.call('HGET', hash, 'callback_url')
  if url and url ~= '' then
    local watched = watch_prefix .. cid
    redis.call('HSET', callback_prefix .. watched, 'url', url, 'owner', redis.call('HGET', hash, 'owner') or '',
               'since', now, 'tries', 0, 'looks', 0)
    redis.call('ZADD', due, due_at, watched)
  end
end
local function open_jobs(hash)
  return tonumber(redis.call('HGET', hash, 'n_queued') or '0') + tonumber(redis.call('HGET', hash, 'n_started') or '0')
end
"""

# KEYS: the collection's hash, its jobs, its order, the job's other collections (a set), the
# callbacks' due set. ARGV: job id, status, now, '1' if the job belongs to another collection
# (or none) already, the key prefixes of a collection, of a watched delivery and of a
# collection's watched id, then JOIN_SETTLE_S.
_JOIN = _COMPLETE + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'canceled_at') == 1 then return -2 end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0')
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[4], string.sub(KEYS[1], #ARGV[5] + 1))
  if ttl > 0 then redis.call('EXPIRE', KEYS[4], ttl) end
end
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
elseif open_jobs(KEYS[1]) == 0 then
  complete(KEYS[1], string.sub(KEYS[1], #ARGV[5] + 1), ARGV[3], KEYS[5], ARGV[6], ARGV[7], ARGV[3] + ARGV[8])
end
if ttl > 0 then for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end end
return 1
"""

# A job's status changed: each collection it belongs to (its own, ARGV[4], and the others in the
# set KEYS[1]) counts the change, unless it has seen it or the job had ended there already.
# Status '' = a just-joined job leaves (a submission undone). The collection whose last open job
# this was has its callback due (KEYS[2]). ARGV[5..7]: the key prefixes of a collection's hash,
# of a watched delivery, and of a collection's watched id (``shared.keys``, ``callbacks``).
_MARK = _COMPLETE + """
local function change(cid)
  local hash = ARGV[5] .. cid
  local members, order = hash .. ':jobs', hash .. ':order'
  local old = redis.call('HGET', members, ARGV[1])
  if not old or old == ARGV[2] then return end
  if ARGV[2] == '' then
    if old ~= 'queued' then return end
    redis.call('HDEL', members, ARGV[1])
    redis.call('ZREM', order, ARGV[1])
    redis.call('HINCRBY', hash, 'n_queued', -1)
    if redis.call('HINCRBY', hash, 'total', -1) > 0 and open_jobs(hash) == 0 then
      complete(hash, cid, ARGV[3], KEYS[2], ARGV[6], ARGV[7], ARGV[3])
    end
    return
  end
  if old == 'finished' or old == 'failed' or old == 'canceled' then return end
  redis.call('HSET', members, ARGV[1], ARGV[2])
  redis.call('HINCRBY', hash, 'n_' .. old, -1)
  redis.call('HINCRBY', hash, 'n_' .. ARGV[2], 1)
  if ARGV[2] == 'started' then redis.call('HSETNX', hash, 'started_at', ARGV[3]) end
  if open_jobs(hash) == 0 then complete(hash, cid, ARGV[3], KEYS[2], ARGV[6], ARGV[7], ARGV[3]) end
  local ttl = tonumber(redis.call('HGET', hash, 'ttl') or '0')
  if ttl > 0 then
    for _, key in ipairs({hash, members, order}) do redis.call('EXPIRE', key, ttl) end
  end
end
if ARGV[4] ~= '' then change(ARGV[4]) end
for _, cid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if cid ~= ARGV[4] then change(cid) end
end
return 1
"""


# The key prefixes both scripts build names from: a collection's hash, a watched delivery, a
# collection's watched id.
_PREFIXES = (keys.collection_key(""), keys.callback_key(""), WATCH_PREFIX)


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
        args=[ttl, fields["created_at"], collection_id, OWNER_INDEX, *pairs])
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


def join(connection: Redis, collection_id: str, job_id: str, status: str = "queued", *, other: bool = False) -> None:
    """``job_id`` is a member with ``status``; ``other``: the job's payload names another
    collection (or none), so this one is kept in the job's set of other collections."""
    reply = connection.register_script(_JOIN)(
        keys=[*_keys(collection_id), keys.job_collections_key(job_id), keys.CALLBACKS_DUE],
        args=[job_id, status, time.time(), "1" if other else "0", *_PREFIXES, JOIN_SETTLE_S])
    if reply == -1:
        raise CollectionNotFoundError(f"collection {collection_id} is gone (expired)")
    if reply == -2:
        raise CollectionConflictError(f"collection {collection_id} is cancelled: no job may join it")


def join_existing(connection: Redis, collection_id: str, job: Job) -> None:
    """A job that existed joins as it stands (a re-run, or a page two runs share); one that
    ended meanwhile is then marked so, so it is not counted open for ever."""
    own = JobPayload.from_job(job).collection
    status = _member_status(job)
    join(connection, collection_id, job.id, status, other=own != collection_id)
    mark(connection, [(own, job.id, status)])


def check_joinable(connection: Redis, collection_id: str) -> None:
    """Raise before a change that would end in ``join``: a cancelled collection takes no job."""
    if is_canceled(connection, collection_id):
        raise CollectionConflictError(f"collection {collection_id} is cancelled: no job may join it")


def _member_status(job: Job) -> str:
    status = job.get_status(refresh=True)
    return ended_status(status.value if status else "") or ("started" if status == JobStatus.STARTED else "queued")


def mark(connection: Redis, changes: Iterable[tuple[str, str, str]], pipeline=None) -> None:
    """Record (the job's own collection id or '', job id, status) changes in every collection
    each job belongs to; status '' removes a job that just joined. On a collection's last open
    job's end its callback is due (``callbacks``)."""
    script = connection.register_script(_MARK)
    target = pipeline if pipeline is not None else connection.pipeline(transaction=False)
    now = time.time()
    for collection_id, job_id, status in changes:
        script(keys=[keys.job_collections_key(job_id), keys.CALLBACKS_DUE],
               args=[job_id, status, now, collection_id, *_PREFIXES], client=target)
    if pipeline is None:
        target.execute()


def mark_jobs(connection: Redis, jobs: Iterable[Job], status: str, pipeline=None) -> None:
    """``mark`` each of these jobs with ``status`` in the collections it belongs to (its own,
    and any it joined later as a job that already existed)."""
    mark(connection, [(JobPayload.from_job(job).collection, job.id, status) for job in jobs], pipeline=pipeline)


def ended_status(rq_status: str) -> str | None:
    """A collection's name for a job's terminal rq status (None: not ended)."""
    return {"finished": "finished", "failed": "failed", "canceled": "canceled", "stopped": "canceled"}.get(rq_status)


def is_canceled(connection: Redis, collection_id: str) -> bool:
    return bool(connection.hexists(keys.collection_key(collection_id), "canceled_at"))


def cancel(connection: Redis, collection: dict[str, str]) -> bool:
    """Stop the collection: nothing joins it any more, its queued jobs are cancelled as
    workers reach them, its running jobs finish. False if it was cancelled already; one that
    expired meanwhile is not found (no hash is made of its cancel alone)."""
    first = connection.register_script(_CANCEL)(keys=[keys.collection_key(collection["id"])], args=[time.time()])
    if first == -1:
        raise CollectionNotFoundError(f"collection {collection['id']} is gone (expired)")
    return bool(first)
