"""From rq jobs to pipeline tasks and back: load images, then build and store each job's
result document (``finish``: the one step both the batching worker and ``worker.tasks`` use)."""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import Redis
from rq.job import Job

from shared import job_collections, keys, results
from shared.document import ResultDocument, Timings
from shared.errors import BadOptionError, BatchOcrError, ImageExpiredError
from shared.payload import JobPayload
from shared.s3 import ObjectStore, S3Uri, check_image_object, check_input_allowed
from shared.settings import Settings
from worker.pipeline import PageResult, PageTask
from worker.preprocess import decode_image

logger = logging.getLogger(__name__)

T = TypeVar("T")
# How a worker runs a step that needs S3 (``worker.storage_outage``: waiting out an outage);
# by default at once, an outage failing the job as ``storage_unavailable``.
Patience = Callable[[Callable[[], T]], T]


def at_once(step: Callable[[], T]) -> T:
    return step()


@dataclass
class LoadedJob:
    """A job of the batch with its decoded task, or the error that failed it before OCR."""

    job: Job
    payload: JobPayload
    task: PageTask | None
    model: str
    error: Exception | None
    started_at: float
    decode_ms: float
    attempts: int = 1


def load_jobs(connection: Redis, jobs: list[Job], settings: Settings, objects: ObjectStore,
              patience: Patience = at_once) -> list[LoadedJob]:
    """Fetch the batch's Redis-held images in one round trip (S3 inputs one by one, each read
    under ``patience``) and decode each on its own. An image that is missing, corrupt or too
    large fails only its own job. The jobs have started: their collections count them so
    (``shared.job_collections``).
    """
    job_collections.mark_jobs(connection, jobs, "started")
    payloads = [JobPayload.from_job(job) for job in jobs]
    blobs = connection.mget([payload.image_key for payload in payloads])
    crashes = connection.hmget(keys.CRASHES, [job.id for job in jobs])
    loaded = []
    for job, payload, blob, crashed in zip(jobs, payloads, blobs, crashes):
        started = time.time()
        task, model, error = None, payload.model or settings.default_model, None
        try:
            if payload.image_uri:
                blob = patience(functools.partial(_read_s3_input, payload.image_uri, settings, objects))
            elif payload.image_object:
                blob = patience(functools.partial(_read_image_object, payload.image_object, settings, objects))
            _crash_if_marked(blob, settings)
            task, model = _decode_task(job, payload, blob, settings)
        except Exception as exc:  # any failure here belongs to this job alone
            error = exc
        loaded.append(LoadedJob(job, payload, task, model, error, started, (time.time() - started) * 1000,
                                attempts=1 + int(crashed or 0)))
    return loaded


def _crash_if_marked(blob: bytes | None, settings: Settings) -> None:
    """The test hook ``OCR_TEST_CRASH_MARKER``: die as a segfault or the OOM killer would."""
    if settings.test_crash_marker and blob and settings.test_crash_marker.encode() in blob:
        logger.error("test crash marker found: killing this worker process")
        os.kill(os.getpid(), signal.SIGKILL)


def _read_s3_input(uri_text: str, settings: Settings, objects: ObjectStore) -> bytes:
    """An ``s3://`` input, re-checked against this worker's allowlist before it is read."""
    uri = S3Uri.parse(uri_text)
    check_input_allowed(settings, uri)
    return objects.read(uri, max_bytes=settings.max_image_bytes)


def _read_image_object(uri_text: str, settings: Settings, objects: ObjectStore) -> bytes:
    """An upload the API stored in S3 (``OCR_IMAGE_STORE=s3``): only under the image prefix."""
    uri = S3Uri.parse(uri_text)
    check_image_object(settings, uri)
    return objects.read(uri, max_bytes=settings.max_image_bytes)


def _decode_task(job: Job, payload: JobPayload, blob: bytes | None, settings: Settings) -> tuple[PageTask, str]:
    """The job's options, checked by the same rules as the API (``JobOptions.parse``), and its image."""
    try:
        options = payload.options(settings)
    except BadOptionError as exc:
        exc.job_id = job.id
        raise
    if blob is None:
        raise ImageExpiredError("the job's image expired or was never stored", job_id=job.id)
    return PageTask(image=decode_image(blob, settings), mode=options.mode, lang=options.lang), options.model


def error_document(exc: BaseException) -> dict[str, str]:
    """What a client sees of a failure: a stable kind and a reason, never a traceback."""
    if isinstance(exc, BatchOcrError):
        return exc.to_dict()
    return {"kind": "internal", "message": f"{type(exc).__name__}: {exc}"}


def result_document(
    loaded: LoadedJob, page: PageResult, *, batch_size: int, batch_id: str, finished_at: float
) -> ResultDocument:
    """The result of a finished job."""
    submitted = loaded.payload.submitted_at or loaded.started_at
    height, width = loaded.task.image.shape[:2] if loaded.task is not None else (0, 0)
    return ResultDocument(
        text=page.text,
        lines=tuple(page.lines),
        blocks=tuple(page.blocks),
        skew=page.skew,
        rotation=page.rotation,
        width=int(width),
        height=int(height),
        model=loaded.model,
        inference=page.inference,
        mode=loaded.payload.mode,
        batch_size=batch_size,
        batch_id=batch_id,
        attempts=loaded.attempts,
        timings_ms=Timings(
            queue_wait=round(max(0.0, loaded.started_at - submitted) * 1000, 1),
            decode=round(loaded.decode_ms, 1),
            detection=round(page.detection_ms, 1),
            recognition=round(page.recognition_ms, 1),
            total=round(max(0.0, finished_at - submitted) * 1000, 1),
        ),
    )


@dataclass(frozen=True)
class Outcome:
    """What one job came to: ``value``, what rq keeps as its return value (the document, or its
    S3 reference), or ``error``, the reason it failed."""

    value: dict[str, Any] | None = None
    error: BaseException | None = None

    @classmethod
    def failed(cls, error: BaseException) -> Outcome:
        return cls(error=error)


def finish(loaded: LoadedJob, page: PageResult | BaseException, settings: Settings, objects: ObjectStore, *,
           batch_size: int, batch_id: str, finished_at: float,
           patience: Patience = at_once) -> tuple[Outcome, ResultDocument | None]:
    """Build the job's result document and store it where the job asked (its ``result_store``,
    else the deployment's; an S3 write under ``patience``); a failure here fails this job alone.
    Returns the outcome and the document (None on failure)."""
    if isinstance(page, BaseException):
        return Outcome.failed(page), None
    try:
        document = result_document(loaded, page, batch_size=batch_size, batch_id=batch_id, finished_at=finished_at)
        store = loaded.payload.result_store or settings.result_store
        body = document.to_json()
        save = functools.partial(results.save, objects, settings, store, loaded.job.id, body)
        return Outcome(patience(save) if store == "s3" else save()), document
    except Exception as exc:
        return Outcome.failed(exc), None
