"""Leases and the reaper: a job held by a worker that dies is queued again within seconds.

rq alone notices a dead ``SimpleWorker`` only when its started-registry entry expires (job
timeout + 60 s) and a maintenance pass runs (every 10 minutes). batchocr adds a short lease per
running job, ``batchocr:lease:<id>`` with a TTL of ``OCR_LEASE_S``, renewed by a thread in the
worker holding it. Every worker also runs a reaper (one at a time per queue, under a lock) that
finds started jobs whose lease is gone and jobs stuck in rq's intermediate queue, and:

- counts a crash against each job of the dead worker's batch and queues it again at the front;
  a job with crashes is a suspect, and suspects run alone, so a poison pill cannot take its
  batch-mates down with it twice;
- fails a job that has taken down ``OCR_MAX_CRASHES`` workers with kind ``poison``.

rq's own entry stays valid far longer than the lease, so rq's cleanup never races the reaper.
Delivery is at least once; result writes are idempotent per job id.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import parse_composite_key

from shared import backlog, callbacks, job_collections, keys, redis_connection, tenants
from shared.payload import JobPayload
from shared.settings import Settings
from worker.metrics import WorkerMetrics
from worker.leases import RELEASE, Leases
from worker.outage import UNREACHABLE, Outage

logger = logging.getLogger(__name__)


# A started-registry entry without a lease is a dead worker's job while its status is still
# STARTED, or still QUEUED: the worker died between rq's two preparation steps (the execution is
# registered, then the status is set), which would otherwise leave the job in no queue at all.
_ABANDONABLE = (JobStatus.STARTED, JobStatus.QUEUED)


class RanTooLong(Exception):
    """A batch of several jobs ran past the job timeout. Which one was slow is not known, so
    none fails for it: each is queued again to run alone (``run_alone``), with the whole
    timeout to itself."""


def is_suspect(connection: Redis, job_id: str) -> bool:
    return bool(connection.hexists(keys.CRASHES, job_id))


def run_alone(connection: Redis, job_ids: list[str]) -> None:
    """Make jobs suspects without counting a crash (a suspect runs alone)."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hincrby(keys.CRASHES, job_id, 0)
        pipe.execute()


def started_entries(queue: Queue, job_id: str) -> list[bytes]:
    """The job's members of the started registry (``<job id>:<execution id>``), found by name:
    rq's ``remove_executions`` finds them through execution records that expire, and an entry
    left behind would make the reaper act on the job again on every pass."""
    return [m for m in queue.connection.zrange(queue.started_job_registry.key, 0, -1)
            if parse_composite_key(m.decode())[0] == job_id]


def put_back(job: Job, queue: Queue) -> None:
    """Return a suspect taken while gathering a batch to the front of its queue: it runs alone."""
    with queue.connection.pipeline() as pipe:
        pipe.lrem(queue.intermediate_queue.key, 1, job.id)
        queue.push_job_id(job.id, pipeline=pipe, at_front=True)
        tenants.register(pipe, queue)
        pipe.execute()


def requeue(job: Job, queue: Queue, *, reason: str) -> None:
    """Put a started (or stuck) job back at the front of its queue, status queued."""
    entries = started_entries(queue, job.id)
    with queue.connection.pipeline() as pipe:
        if entries:
            pipe.zrem(queue.started_job_registry.key, *entries)
        pipe.lrem(queue.intermediate_queue.key, 0, job.id)
        pipe.delete(queue.intermediate_queue.get_first_seen_key(job.id), keys.lease_key(job.id))
        # Forget when it was first seen stuck: a live worker may take it into the intermediate
        # queue at once, and an old sighting would have it queued a second time (run twice).
        pipe.hdel(keys.limbo_key(queue.name), job.id)
        job.set_status(JobStatus.QUEUED, pipeline=pipe)
        pipe.lrem(queue.key, 0, job.id)  # repeatable: a retry after a lost reply queues it once
        queue.push_job_id(job.id, pipeline=pipe, at_front=True)
        tenants.register(pipe, queue)
        job_collections.mark_jobs(job.connection, [job], "queued", pipeline=pipe)
        pipe.execute()
    logger.warning("job %s queued again: %s", job.id, reason, extra={"job_id": job.id})


def fail_poison(job: Job, queue: Queue, crashes: int) -> None:
    """Fail a job that keeps killing workers, with a reason; it is not retried again."""
    job.meta["error"] = {"kind": "poison", "message": f"this job took down {crashes} workers; it is not retried"}
    job.save_meta()
    entries = started_entries(queue, job.id)
    with queue.connection.pipeline() as pipe:
        if entries:
            pipe.zrem(queue.started_job_registry.key, *entries)
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        queue.failed_job_registry.add(job, ttl=job.failure_ttl, exc_string="poison: worker crashes", pipeline=pipe)
        pipe.delete(keys.lease_key(job.id), *[k for k in [JobPayload.from_job(job).image_key] if k])
        pipe.hdel(keys.CRASHES, job.id)
        backlog.release(queue.connection, [job.id], pipeline=pipe)
        callbacks.due_now(pipe, [job.id])
        job_collections.mark_jobs(job.connection, [job], "failed", pipeline=pipe)
        pipe.execute()
    logger.error("job %s failed as poison after %d worker crashes", job.id, crashes,
                 extra={"job_id": job.id, "error_kind": "poison"})


class Reaper:
    """Finds the jobs of dead workers on ``queues`` and queues them again (or fails poison).

    ``clock``: wall-clock seconds; when a job was first seen stuck is kept in Redis, for the
    reapers of every worker alike.
    """

    def __init__(self, connection: Redis, settings: Settings, queues: list[Queue],
                 metrics: WorkerMetrics | None = None, clock: Callable[[], float] = time.time) -> None:
        self.connection = connection
        self.settings = settings
        self.queues = queues
        self.metrics = metrics
        self.clock = clock
        self.token = uuid.uuid4().hex

    def run_once(self) -> list[str]:
        """One pass over every queue and its API keys' queues (``shared.tenants``), which then
        all have a place in their rotation if they have jobs; returns the ids it acted on."""
        acted: list[str] = []
        for queue in self._watched():
            lock = keys.reaper_lock(queue.name)
            if not self.connection.set(lock, self.token, nx=True, ex=60):
                continue
            try:
                acted += self._reap_started(queue) + self._reap_limbo(queue)
            finally:
                self.connection.eval(RELEASE, 1, lock, self.token)
        for queue in self.queues:
            for name in tenants.heal(self.connection, queue.name):
                logger.info("queue %s had jobs but no turn in its rotation: given one", name)
        return acted

    def _watched(self) -> list[Queue]:
        owners = [name for queue in self.queues for name in tenants.owner_queues(self.connection, queue.name)]
        return self.queues + [Queue(name, connection=self.connection, serializer=JSONSerializer) for name in owners]

    def _reap_started(self, queue: Queue) -> list[str]:
        acted = []
        for member in self.connection.zrange(queue.started_job_registry.key, 0, -1):
            job_id, _ = parse_composite_key(member.decode())
            if self.connection.exists(keys.lease_key(job_id)):
                continue
            job = queue.fetch_job(job_id)
            if job is None:
                self.connection.zrem(queue.started_job_registry.key, member)
                continue
            if job.get_status(refresh=False) not in _ABANDONABLE:
                continue  # an outcome is recorded: a leftover entry, not a dead worker's job
            crashes = int(self.connection.hincrby(keys.CRASHES, job_id, 1))
            if crashes >= self.settings.max_crashes:
                fail_poison(job, queue, crashes)
            else:
                requeue(job, queue, reason=f"its worker died (lease expired; crash {crashes})")
            if self.metrics is not None:
                self.metrics.recovered.labels("poison" if crashes >= self.settings.max_crashes else "requeued").inc()
            acted.append(job_id)
        return acted

    def _reap_limbo(self, queue: Queue) -> list[str]:
        """Jobs a dead worker had moved to rq's intermediate queue but not yet started."""
        limbo, acted = keys.limbo_key(queue.name), []
        waiting = set(queue.intermediate_queue.get_job_ids())
        started = {parse_composite_key(m.decode())[0] for m in self.connection.zrange(queue.started_job_registry.key, 0, -1)}
        seen = {k.decode(): float(v) for k, v in self.connection.hgetall(limbo).items()}
        for job_id in set(seen) - waiting:
            self.connection.hdel(limbo, job_id)
        for job_id in waiting - started:
            if self.connection.exists(keys.lease_key(job_id)):
                continue
            if job_id not in seen:
                self.connection.hset(limbo, job_id, self.clock())
            elif self.clock() - seen[job_id] > self.settings.lease_s:
                self.connection.hdel(limbo, job_id)
                job = queue.fetch_job(job_id)
                if job is None:
                    self.connection.lrem(queue.intermediate_queue.key, 0, job_id)
                    continue
                requeue(job, queue, reason="it was stuck in rq's intermediate queue")
                acted.append(job_id)
        return acted


class Guardian(threading.Thread):
    """Background thread of a worker: renews the leases of the jobs it holds and runs the reaper.

    It has its own Redis connection, so a main thread busy in ONNX Runtime (which releases the
    GIL) or blocked on Redis does not stop leases from being renewed.

    Leases keep ticking while Redis is unreachable, so after an outage every lease may have
    lapsed although its worker is alive. Live workers take theirs back on their first pass once
    Redis answers; so the reaper only acts once this thread has watched Redis continuously (no
    failed pass, no stalled one) for a whole lease period. An outage is never counted as a crash.
    """

    def __init__(self, settings: Settings, queues: Iterable[str], leases: Leases,
                 metrics: WorkerMetrics | None = None, outage: Outage | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name="batchocr-guardian", daemon=True)
        self.settings = settings
        self.leases = leases
        self.outage = outage or Outage(f"guardian of {leases.owner}")
        self.clock = clock
        self.interval = max(settings.lease_s / 3.0, 0.5)
        self.connection = redis_connection.connect(settings, socket_connect_timeout=2, socket_timeout=5)
        self.reaper = Reaper(self.connection, settings,
                             [Queue(n, connection=self.connection, serializer=JSONSerializer) for n in queues],
                             metrics)
        self.watching_since: float | None = None
        self._last_pass: float | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self.step()

    def step(self) -> list[str]:
        """One pass: renew, then reap if Redis has been watched long enough; returns the ids reaped."""
        now, began = self.clock(), self.outage.clock()
        try:
            held = self.leases.held()
            self.leases.renew(self.connection, held) if held else self.connection.ping()
            self._seen()
            stalled = self._last_pass is None or now - self._last_pass > 1.5 * self.interval
            if self.watching_since is None or stalled:
                self.watching_since = now
            self._last_pass = now
            self.outage.ended(wrote=False)  # a full Redis answers a PING too: only a write ends that
            if now - self.watching_since < self.settings.lease_s:
                return []
            return self.reaper.run_once()
        except UNREACHABLE as exc:  # leases lapse meanwhile; live owners take them back after
            self.watching_since = None
            self.outage.failed(exc, began)
        except Exception as exc:
            logger.warning("guardian: %s: %s", type(exc).__name__, exc)
        return []

    def _seen(self) -> None:
        """This worker is alive (``keys.WORKERS_SEEN``); entries a day old go (workers gone)."""
        now = time.time()
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.WORKERS_SEEN, {self.leases.owner: now})
            pipe.zremrangebyscore(keys.WORKERS_SEEN, "-inf", now - 86400)
            pipe.execute()

    def stop(self) -> None:
        """Stop the thread; a worker leaving in good order is no longer counted alive."""
        self._stop.set()
        if not self.outage.down:
            self.outage.quietly(lambda: self.connection.zrem(keys.WORKERS_SEEN, self.leases.owner))
        self.connection.close()
