"""Submitting an OCR job to rq and reading its state back (the payload's shape is
``shared.payload``).

A job is a plain rq job serialized with rq's JSON serializer (never pickle). The image bytes do
not ride in the payload: they sit under ``keys.image_key(job_id, owner)`` with a TTL, in the
deployment's bucket (``OCR_IMAGE_STORE=s3``), or in a client's allowlisted ``image_uri``. Every
new job is admitted first (``shared.backlog``) and released when it ends. The batching worker (``worker``) never calls the job function
itself; a plain ``rq worker`` would, and gets the same result one job at a time.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError, WatchError
from rq import Queue
from rq.exceptions import DeserializationError, DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from shared import backlog, callbacks, canary, ids, job_collections, keys, priorities, replication, tenants
from shared.errors import JobIdConflictError, JobNotFoundError, StorageError
from shared.images import inspect_image
from shared.payload import JobOptions, JobPayload
from shared.s3 import ObjectStore, S3Uri, check_input_allowed, image_object_uri
from shared.settings import Settings

__all__ = ["JOB_FUNC", "TERMINAL", "Submission", "fetch", "get_queue", "get_queues", "queue_of", "submit"]

JOB_FUNC = "worker.tasks.ocr_job"
# rq statuses after which a job changes no more.
TERMINAL = ("finished", "failed", "canceled", "stopped")


@dataclass(frozen=True)
class Submission:
    """A submitted job; ``created`` is False when a job with the requested id already existed."""

    job: Job
    created: bool


def get_queue(connection: Redis, settings: Settings, priority: str = priorities.DEFAULT, owner: str = "") -> Queue:
    """The rq queue jobs of ``priority`` go to, with the JSON serializer; with ``owner`` (an API
    key id), that key's queue of it (``shared.tenants``)."""
    name = tenants.queue_name(priorities.queue_name(settings.queue_name, priority), owner)
    return Queue(name, connection=connection, serializer=JSONSerializer)


def get_queues(connection: Redis, settings: Settings, *, served: bool = False) -> list[Queue]:
    """Every priority's own queue, highest first; with ``served``, those workers take jobs from
    (``OCR_PRIORITIES``). The API keys' queues of each are ``tenants.owner_queues``."""
    chosen = priorities.served(settings.priorities) if served else priorities.PRIORITIES
    return [get_queue(connection, settings, priority) for priority in chosen]


def queue_of(connection: Redis, job: Job) -> Queue:
    """The queue ``job`` was enqueued in (its rq origin)."""
    return Queue(job.origin, connection=connection, serializer=JSONSerializer)


@dataclass
class _Written:
    """What a submission has changed so far, for ``_undo``: the image key or object it wrote, and
    the failed job it retries until that is deleted."""

    image: str | S3Uri | None = None
    replaces: Job | None = None


def submit(connection: Redis, settings: Settings, image: bytes | S3Uri, options: JobOptions, *,
           job_id: str | None = None, retry_failed: bool = False, owner: str = "",
           objects: ObjectStore | None = None, callback_url: str = "", collection: str = "") -> Submission:
    """Validate the image (bytes, or an allowlisted ``s3://`` object), then enqueue its job.

    Without ``job_id`` the id is a random UUID4. With one (a UUID, e.g. the producer's content
    hash), submitting is idempotent: an existing job with that id is returned as it is
    (``created=False``), unless it failed and ``retry_failed`` is set; another ``owner``'s id is a
    JobIdConflictError. A new job first takes its place in the backlog (``shared.backlog``:
    QueueFullError over a bound, nothing changed); its upload is stored in Redis, or in S3 (needs
    ``objects``); ``shared.replication`` confirms it. ``callback_url`` (``shared.callbacks``) is
    POSTed its end; it joins ``collection`` (its owner checked by the caller)."""
    _check_input(settings, image, callback_url)
    if not options.model:
        options = dataclasses.replace(options, model=canary.choose(connection, settings))
    written = _Written()
    if job_id is None:
        job_id = str(uuid.uuid4())
    else:
        ids.check_uuid(job_id, "job_id")
        existing = _existing(connection, job_id, retry_failed, owner, collection)
        if existing is not None and not _retried(existing, retry_failed, refresh=False):
            return Submission(existing, created=False)
        written.replaces = existing
    held = 0 if isinstance(image, S3Uri) or settings.image_store == "s3" else len(image)
    took_place = backlog.admit(connection, settings, job_id, held, owner)  # a full queue keeps a failed job as it was
    try:
        payload = _store_image(connection, settings, objects, image, job_id, options, owner, written,
                               {"callback_url": callback_url, "collection": collection})
        if written.replaces is not None:  # only once the new image is stored: a store that fails keeps it
            _delete_failed(connection, written.replaces)
            written.replaces = None
        job = _enqueue(connection, settings, job_id, payload)
    except DuplicateJobError:  # lost a race with another submitter of the same id
        existing = _race_winner(connection, job_id, owner, collection)
        if existing is None:
            _undo(connection, objects, job_id, took_place, written, collection)
            raise JobNotFoundError(f"job {job_id} vanished while being submitted; submit again", job_id=job_id) from None
        return Submission(existing, created=False)
    except BaseException:  # nothing was queued: give the place back (Redis full, S3 down, ...)
        _undo(connection, objects, job_id, took_place, written, collection)
        raise
    replication.confirm(connection, settings, job_id)
    return Submission(job, created=True)


def _race_winner(connection: Redis, job_id: str, owner: str, collection: str) -> Job | None:
    """The job another submitter queued under ``job_id`` first, joined as it stands; if it is
    another key's (JobIdConflictError), only this call's membership of ``collection`` goes."""
    try:
        return _existing(connection, job_id, False, owner, collection)
    except JobIdConflictError:
        if collection:
            job_collections.mark(connection, [(collection, job_id, "")])
        raise


def _check_input(settings: Settings, image: bytes | S3Uri, callback_url: str) -> None:
    """The image (an upload's bytes, or an allowlisted ``s3://`` object) and the callback URL."""
    if callback_url:
        callbacks.check_url(settings, callback_url)
    if isinstance(image, S3Uri):
        check_input_allowed(settings, image)
    else:
        inspect_image(image, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)


def _store_image(connection: Redis, settings: Settings, objects: ObjectStore | None, image: bytes | S3Uri,
                 job_id: str, options: JobOptions, owner: str, written: _Written,
                 links: dict[str, str]) -> JobPayload:
    """Store an upload where ``OCR_IMAGE_STORE`` says (an ``s3://`` input stays where it is),
    before the job is enqueued, so no worker sees a job without its image. ``written.image``
    becomes the key or object this call wrote (so only this call's image is undone)."""
    build = functools.partial(JobPayload.build, options, submitted_at=time.time(), owner=owner, **links)
    if isinstance(image, S3Uri):
        return build(image_uri=str(image))
    if settings.image_store == "s3":
        if objects is None:
            raise StorageError("OCR_IMAGE_STORE=s3 but no S3 access is configured here")
        uri = image_object_uri(settings, job_id, owner)
        if not objects.exists(uri):  # a concurrent submitter of the same id wrote it already
            objects.write(uri, image)
            written.image = uri
        return build(image_object=str(uri))
    payload = build(image_key=keys.image_key(job_id, owner))
    # NX: a submitter that loses a race for the same id never replaces the winner's image.
    if connection.set(payload.image_key, image, ex=settings.image_ttl_s, nx=True):
        written.image = payload.image_key
    return payload


def _undo(connection: Redis, objects: ObjectStore | None, job_id: str, took_place: bool,
          written: _Written, collection: str) -> None:
    """A submission that failed: its place and the image this call wrote go, unless a job with
    this id was queued after all (a reply lost after rq's write, a concurrent submitter; for a
    retry: the failed job is no longer there as failed). A failed job it was to replace and still
    stands stays as it was (it joined nothing new). A Redis without memory still deletes; what
    cannot be undone now lapses on its own."""
    kept = written.replaces is not None
    try:
        status = connection.hget(Job.key_for(job_id), "status")
        if status is not None and not kept or kept and status != b"failed":  # another submitter's job now
            return
        if isinstance(written.image, str):
            connection.delete(written.image)
        if took_place:
            backlog.release(connection, [job_id], drained=False)
        if collection and not kept:
            job_collections.mark(connection, [(collection, job_id, "")])
    except RedisError:
        return
    if isinstance(written.image, S3Uri) and objects is not None:
        try:
            objects.delete(written.image)
        except StorageError:
            pass


def _enqueue(connection: Redis, settings: Settings, job_id: str, payload: JobPayload) -> Job:
    """rq's job, in its owner's queue of its priority, which then joins that priority's rotation
    (``shared.tenants``); its description names the mode and model only (rq's default repeats
    every kwarg: ~170 bytes more per queued job)."""
    queue = get_queue(connection, settings, payload.priority or priorities.DEFAULT, payload.owner)
    if payload.callback_url:  # watched before it is queued: its end is delivered whatever ends it
        callbacks.watch(connection, job_id, payload.callback_url, payload.owner)
    if payload.collection:  # a member before it is queued: a worker's changes find it
        job_collections.join(connection, payload.collection, job_id)
    job = queue.enqueue_call(
        JOB_FUNC, kwargs=payload.to_kwargs(), job_id=job_id, timeout=settings.job_timeout_s,
        description=f"ocr {payload.mode} {payload.model}".rstrip(),
        result_ttl=settings.result_ttl_s, failure_ttl=settings.result_ttl_s, unique=True)
    try:
        tenants.register(connection, queue)
    except RedisError:  # queued: the reapers' next pass puts its queue in the rotation
        pass
    return job


def _existing(connection: Redis, job_id: str, retry_failed: bool, owner: str, collection: str) -> Job | None:
    """The job already stored under ``job_id`` (joining ``collection`` as it stands; a failed one
    that is retried joins nothing: its replacement will)."""
    try:
        job = fetch(connection, job_id)
    except JobNotFoundError:
        return None
    if JobPayload.from_job(job).owner != owner:
        raise JobIdConflictError("this job_id is already used by another API key; choose another")
    if _retried(job, retry_failed):
        if collection:  # checked first: a failed job is not deleted for a retry that cannot join
            job_collections.check_joinable(connection, collection)
        return job
    if collection:
        job_collections.join_existing(connection, collection, job)
    return job


def _retried(job: Job, retry_failed: bool, refresh: bool = True) -> bool:
    """Whether this submission replaces ``job``: it failed and the client asked to retry (one
    a concurrent retry deleted meanwhile is replaced too: the enqueue settles who wins)."""
    try:
        return retry_failed and job.get_status(refresh=refresh) == JobStatus.FAILED
    except InvalidJobOperation:
        return True


def _delete_failed(connection: Redis, job: Job) -> None:
    """The failed job a retry replaces, deleted only while it is still that failed job (WATCH):
    a concurrent retry may have deleted it and queued its replacement, which must stay."""
    with connection.pipeline() as pipe:
        try:
            pipe.watch(job.key)
            if pipe.hget(job.key, "status") != JobStatus.FAILED.value.encode():
                return
            pipe.multi()
            job.delete(pipeline=pipe)
            pipe.execute()
        except (WatchError, InvalidJobOperation, NoSuchJobError):
            return


def fetch(connection: Redis, job_id: str, owner: str | None = None) -> Job:
    """Fetch one of our jobs by id, or raise JobNotFoundError.

    Ids are UUIDs; anything else (which rq would reject or, with a ':', misread) is not found.
    With ``owner`` (an API key id), another key's job is not found either: its existence is
    not revealed.
    """
    missing = JobNotFoundError(f"no job with id {job_id!r} (unknown or expired)", job_id=job_id)
    if not ids.is_canonical_uuid(job_id):
        raise missing
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        if job.func_name != JOB_FUNC or owner is not None and JobPayload.from_job(job).owner != owner:
            raise missing
        return job
    except (ValueError, NoSuchJobError, DeserializationError):
        raise missing from None
