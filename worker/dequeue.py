"""Taking the next job from the priority queues (``shared.priorities``), never only in memory.

rq dequeues from several queues with LPOP/BLPOP: a job popped but not yet started is then only in
the worker's memory, and a worker killed at that moment loses it. Here every take is an LMOVE
into the queue's intermediate list (as rq does for one queue), for all queues in one Lua call
that tries them in order, so the reaper (``worker.recovery``) finds what a dead worker held.

Order: highest priority first, except that a lower queue owed a take (``ShareOrder``: each
gets ``OCR_MIN_SHARE`` of the takes while it has jobs) goes first. Within a priority the API
keys' queues take turns (``shared.tenants``: the rotation's head is tried first and moves to
its tail), so one key's backlog does not hold up another's jobs. An idle worker blocks on the
highest priority's rotation (an interactive job is taken the moment its queue joins it) for at
most ``OCR_IDLE_POLL_S``, then looks at every queue again.
"""

from __future__ import annotations

import logging
import time

from redis import Redis
from rq import Queue
from rq.exceptions import DequeueTimeout
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job

from shared import backlog, job_collections, keys, tenants
from shared.job_control import cancel_taken
from shared.payload import JobPayload
from shared.s3 import ObjectStore
from shared.settings import Settings
from worker.outage import UNREACHABLE

logger = logging.getLogger(__name__)
# A whole take owed: 1, less float rounding (ten shares of 0.1 sum to 0.999...).
_WHOLE = 1 - 1e-9
_INTERMEDIATE = IntermediateQueue.get_intermediate_queue_key("")
# Jobs of cancelled collections one take cancels at most while gathering or past its deadline.
MAX_CANCELS = 16

# KEYS: a priority's own queue, its rotation (shared.tenants), the next priority's, ... in
# order; ARGV[1]: the suffix of rq's intermediate list to a queue key. Each priority: the
# rotation's queues in turn (the head moves to the tail; a queue found empty leaves), then its own queue (which may hold jobs of an API from before the
# rotation). Every take is an LMOVE into the queue's rq intermediate list. Returns {the
# priority's queue key, the queue key taken from, job id} or false.
_TAKE = """
local function take(queue)
  return redis.call('LMOVE', queue, queue .. ARGV[1], 'LEFT', 'RIGHT')
end
for i = 1, #KEYS, 2 do
  for _ = 1, redis.call('LLEN', KEYS[i + 1]) do
    local queue = redis.call('LMOVE', KEYS[i + 1], KEYS[i + 1], 'LEFT', 'RIGHT')
    local id = take(queue)
    if id then return {KEYS[i], queue, id} end
    redis.call('LREM', KEYS[i + 1], 0, queue)
  end
  local id = take(KEYS[i])
  if id then return {KEYS[i], KEYS[i], id} end
end
return false
"""


class ShareOrder:
    """The order to try the queues in (``queues``: highest priority first), so that each lower
    queue gets at least ``min_share`` of the takes while it has jobs.

    Each lower queue earns ``min_share`` of a take on every take and spends one per job taken
    from it; with a whole take owed it is tried first. A queue found empty is owed nothing, so
    credit builds only while it has jobs (or has not been looked at)."""

    def __init__(self, queues: list[Queue], min_share: float) -> None:
        self.queues = list(queues)
        self.min_share = min_share
        self.credit = {queue.key: 0.0 for queue in self.queues[1:]}

    def order(self) -> list[Queue]:
        due = sorted((q for q in self.queues[1:] if self.credit[q.key] >= _WHOLE), key=lambda q: -self.credit[q.key])
        return due + [q for q in self.queues if q not in due]

    def taken(self, order: list[Queue], queue_key: str) -> None:
        """A job came from ``queue_key`` after trying ``order``: the queues tried before it were
        empty; every other lower queue earns its share of this take."""
        empty = {q.key for q in order[:next(i for i, q in enumerate(order) if q.key == queue_key)]}
        for key in self.credit:
            earned = 0.0 if key in empty else self.credit[key] + self.min_share
            self.credit[key] = max(0.0, earned - 1) if key == queue_key else earned

    def idle(self) -> None:
        """Every queue was found empty: nothing is owed."""
        self.credit = dict.fromkeys(self.credit, 0.0)

    def upto(self, order: list[Queue], queue_key: str) -> list[Queue]:
        """``order`` without the queues of lower priority than the queue ``queue_key``."""
        rank = {q.key: i for i, q in enumerate(self.queues)}
        return [q for q in order if rank[q.key] <= rank.get(queue_key, len(self.queues))]


class PriorityTaker:
    """Takes jobs for one worker from its queues (highest priority first)."""

    def __init__(self, connection: Redis, queues: list[Queue], *, min_share: float, idle_poll_s: float,
                 job_class: type[Job], serializer, death_penalty_class, objects: ObjectStore) -> None:
        self.connection = connection
        self.objects = objects
        self._canceled: dict[str, tuple[bool, float]] = {}  # collection id -> (cancelled, when looked)
        self.share = ShareOrder(queues, min_share)
        self.idle_poll_s = idle_poll_s
        self.fetch_options = {"job_class": job_class, "serializer": serializer,
                              "death_penalty_class": death_penalty_class}
        self._take = connection.register_script(_TAKE)

    @classmethod
    def for_worker(cls, worker, settings: Settings) -> PriorityTaker:
        """The taker of an rq worker (its connection, queues, job class and serializer)."""
        return cls(worker.connection, worker.queues, min_share=settings.min_share, idle_poll_s=settings.idle_poll_s,
                   job_class=worker.job_class, serializer=worker.serializer,
                   death_penalty_class=worker.death_penalty_class, objects=worker.objects)

    def take(self, timeout: float | None, *, upto: Queue | None = None) -> tuple[Job, Queue] | None:
        """The next job and its queue, now (``timeout`` None: or None) or within ``timeout`` s
        (else DequeueTimeout); with ``upto``, only from queues of its priority or higher (a
        batch opened by an interactive job is not filled with bulk pages that would delay it).
        A job id whose job hash is gone is dropped, as rq does; a job of a cancelled collection
        is cancelled instead (``shared.job_collections``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        cancels = 0
        while True:
            order = self.share.order()
            if upto is not None:
                order = self.share.upto(order, Queue.redis_queue_namespace_prefix + tenants.priority_queue_of(upto.name))
            hit = self._sweep(order)
            if hit is None and upto is None:
                self.share.idle()
            if hit is None:
                if deadline is None:
                    return None
                self._idle_wait(timeout, deadline, order)
                continue
            self.share.taken(order, hit[0])
            result = self._fetch(hit[1], hit[2])
            if result is not None and self._collection_canceled(result[0]):
                cancel_taken(self.connection, *result, self.objects)
                cancels += 1
                if cancels >= MAX_CANCELS and (upto is not None or deadline is not None and time.monotonic() >= deadline):
                    return self._cancels_done(timeout, order)
                continue
            if result is not None:
                return result
            self.connection.lrem(IntermediateQueue.get_intermediate_queue_key(hit[1]), 1, hit[2])

    def _cancels_done(self, timeout: float | None, order: list[Queue]) -> None:
        """Back to the caller after MAX_CANCELS: a batch being gathered runs what it has; rq's
        loop beats its heartbeat before the next take. (A burst take, which would end the burst
        with None, cancels on.)"""
        if timeout is None:
            return None
        raise DequeueTimeout(timeout, [q.key for q in order])

    def _idle_wait(self, timeout: float, deadline: float, order: list[Queue]) -> None:
        """Nothing queued: wait up to ``OCR_IDLE_POLL_S`` for the highest priority's rotation to
        get a queue (BLMOVE onto itself takes nothing out), or raise DequeueTimeout when due."""
        wait = round(min(self.idle_poll_s, deadline - time.monotonic()), 2)
        if wait <= 0:  # never BLMOVE with 0: that blocks for ever
            raise DequeueTimeout(timeout, [q.key for q in order])
        rotation = keys.rotation_key(self.share.queues[0].name)
        self.connection.blmove(rotation, rotation, wait)

    def _fetch(self, queue_key: str, job_id: str) -> tuple[Job, Queue] | None:
        """rq's job taken from ``queue_key``, or None for one that is gone or unreadable."""
        try:
            return Queue._fetch_dequeued_job(self.connection, queue_key, job_id, **self.fetch_options)
        except UNREACHABLE:
            raise
        except Exception:  # written past rq (a hash rq cannot read, another type): nothing can run it
            logger.error("job %s in %s cannot be read as an rq job: dropped from the queue, its place in the "
                         "backlog given back, its key left for inspection", job_id, queue_key, exc_info=True,
                         extra={"job_id": job_id})
            backlog.release(self.connection, [job_id], drained=False)
            return None

    def _collection_canceled(self, job: Job) -> bool:
        """Whether ``job``'s collection is cancelled (a cancel is final: remembered; otherwise
        looked up again after a second)."""
        collection = JobPayload.from_job(job).collection
        if not collection:
            return False
        canceled, looked = self._canceled.get(collection, (False, -1.0))
        if not canceled and time.monotonic() - looked > 1.0:
            if len(self._canceled) > 1024:
                self._canceled.clear()
            canceled = job_collections.is_canceled(self.connection, collection)
            self._canceled[collection] = (canceled, time.monotonic())
        return canceled

    def _sweep(self, order: list[Queue]) -> tuple[str, str, str] | None:
        """One Lua call over ``order``: (its priority's queue key, the queue key, job id) or None."""
        keys_ = [key for q in order for key in (q.key, keys.rotation_key(q.name))]
        reply = self._take(keys=keys_, args=[_INTERMEDIATE])
        if not reply:
            return None
        return reply[0].decode(), reply[1].decode(), reply[2].decode()
