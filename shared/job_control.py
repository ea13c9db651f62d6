"""A job's end, as the API and the workers both see it: cancelling a queued job, waking clients
that wait on a job (``GET /v1/jobs/<id>?wait=N``), and giving back what a job held.

Waiting does not poll: the waiter subscribes to the job's channel (``keys.done_channel``), reads
the status once (a job that ended before the subscription is seen there), and sleeps on the
subscription until the worker's ``notify_done`` or the deadline. Cancelling removes the job's
id from its queue list (``LREM``): whoever removes it owns it, so a job a worker has already
taken runs to its end and is not cancelled, and a cancelled job can never also run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry

from shared import callbacks, job_collections, keys, tenants
from shared.backlog import release
from shared.errors import BatchOcrError
from shared.jobs import TERMINAL
from shared.payload import JobPayload
from shared.s3 import ObjectStore, S3Uri, check_image_object

logger = logging.getLogger(__name__)

MAX_WAIT_S = 30


def notify_done(connection: Redis, job_ids: list[str], pipeline=None) -> None:
    """Wake whoever waits on these jobs (they ended: finished, failed or cancelled)."""
    target = pipeline if pipeline is not None else connection.pipeline(transaction=False)
    for job_id in job_ids:
        target.publish(keys.done_channel(job_id), b"done")
    if pipeline is None:
        target.execute()


def wait_until_done(connection: Redis, job: Job, seconds: float) -> None:
    """Return once ``job`` has ended or ``seconds`` (at most MAX_WAIT_S) have passed."""
    deadline = time.monotonic() + min(max(seconds, 0.0), MAX_WAIT_S)
    pubsub = connection.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(keys.done_channel(job.id))
        while _status(job) not in TERMINAL:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            pubsub.get_message(timeout=min(left, 1.0))  # a message, or a second: look again
    finally:
        pubsub.close()


def _recorded(job: Job) -> str:
    """The status rq last wrote for ``job`` in this process (no round trip)."""
    status = job.get_status(refresh=False)
    return status.value if status is not None else ""


def _status(job: Job) -> str:
    status = job.get_status(refresh=True)
    return status.value if status is not None else "unknown"


def cancel(connection: Redis, job: Job, queue: Queue, objects: ObjectStore) -> dict[str, Any]:
    """Cancel ``job`` if it is still in ``queue``; say what happened either way."""
    if connection.lrem(queue.key, 0, job.id) == 0:
        status = _status(job)
        if status in TERMINAL:
            message = f"the job has already ended ({status}): nothing to cancel"
        else:
            message = "the job is already running (or being taken by a worker): it will finish"
        return {"id": job.id, "status": status, "canceled": False, "message": message}
    try:
        job.cancel()  # rq's own bookkeeping: status, registries, the canceled registry
    except BaseException:  # not cancelled after all: back where it was, so it is not lost
        queue.push_job_id(job.id, at_front=True)
        tenants.register(connection, queue)
        raise
    with connection.pipeline() as pipe:
        _keep_cancelled(pipe, job, queue)
        pipe.execute()
    end_jobs(connection, [job], objects, drained=False)
    return {"id": job.id, "status": "canceled", "canceled": True, "message": "the job was cancelled before it ran"}


def cancel_taken(connection: Redis, job: Job, queue: Queue, objects: ObjectStore) -> None:
    """A job a worker has just taken (into ``queue``'s intermediate list) that must not run (its
    collection is cancelled): cancelled as rq would, then ended. A worker that dies before this
    leaves it in the intermediate list, where the reaper finds it."""
    with connection.pipeline() as pipe:
        job.set_status(JobStatus.CANCELED, pipeline=pipe)
        CanceledJobRegistry(queue.name, connection, serializer=queue.serializer).add(job, pipeline=pipe)
        pipe.lrem(queue.intermediate_queue.key, 1, job.id)
        pipe.delete(queue.intermediate_queue.get_first_seen_key(job.id))
        job_collections.mark_jobs(connection, [job], "canceled", pipeline=pipe)  # counted with the cancel
        _keep_cancelled(pipe, job, queue)
        pipe.execute()
    end_jobs(connection, [job], objects, drained=False, status="canceled")


def _keep_cancelled(pipe, job: Job, queue: Queue) -> None:
    """A cancelled job reads as cancelled for as long as its result would have been kept, then
    goes: rq keeps a cancelled job's hash, and its place in the canceled registry (scored by
    when it was cancelled, never cleaned), for ever. Entries older than that TTL are dropped."""
    if job.result_ttl is None or job.result_ttl <= 0:  # results kept for ever: so is this
        return
    pipe.expire(job.key, job.result_ttl)
    registry = CanceledJobRegistry(queue.name, queue.connection, serializer=queue.serializer)
    pipe.zremrangebyscore(registry.key, "-inf", f"({time.time() - job.result_ttl}")


def end_jobs(connection: Redis, jobs: list[Job], objects: ObjectStore, *, drained: bool = True,
             status: str = "") -> None:
    """Jobs that ended: their images deleted (Redis keys, uploads in S3), their places in the
    backlog given back (``shared.backlog``; ``drained``: they count toward the drain rate, as a
    cancelled job does not), their waiters woken, their callbacks due now and their collections
    told how they ended (``status``, or each job's own as rq recorded it). What cannot be
    deleted now lapses on its own (the image TTL; a lifecycle rule on the S3 image prefix)."""
    payloads = [JobPayload.from_job(job) for job in jobs]
    ends = [(p.collection, job.id, job_collections.ended_status(status or _recorded(job)))
            for job, p in zip(jobs, payloads)]
    image_keys = [p.image_key for p in payloads if p.image_key]
    with connection.pipeline(transaction=False) as pipe:
        if image_keys:
            pipe.delete(*image_keys)
        release(connection, [job.id for job in jobs], pipeline=pipe, drained=drained)
        notify_done(connection, [job.id for job in jobs], pipeline=pipe)
        callbacks.due_now(pipe, [job.id for job, payload in zip(jobs, payloads) if payload.callback_url])
        job_collections.mark(connection, [end for end in ends if end[2]], pipeline=pipe)
        pipe.execute()
    for payload in payloads:
        if payload.image_object:
            try:
                uri = S3Uri.parse(payload.image_object)
                check_image_object(objects.settings, uri)
                objects.delete(uri)
            except BatchOcrError as exc:
                logger.warning("could not delete the uploaded image %s: %s", payload.image_object, exc.message)
