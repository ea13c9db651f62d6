"""The job contract: how an OCR job is submitted to rq and how its state is read back.

A job is a plain rq job serialized with rq's JSON serializer (never pickle). The image bytes do
not ride in the payload: they sit under ``keys.image_key(job_id)`` with a TTL, and the job's
kwargs carry only that key and the options. The batching worker (``worker``) never calls the job
function itself; a plain ``rq worker`` would, and gets the same result one job at a time.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from shared import keys
from shared.charsets import LANGS
from shared.errors import BadOptionError, JobNotFoundError
from shared.images import inspect_image
from shared.models import MODELS
from shared.settings import Settings

JOB_FUNC = "worker.tasks.ocr_job"
MODES = ("page", "line")


@dataclass(frozen=True)
class JobOptions:
    """Per-job options. ``mode``: 'page' (detect, then recognise every line) or 'line';
    ``lang``: a charset hint, '' (everything the model reads) or 'en' (printable ASCII only)."""

    mode: str = "page"
    model: str = ""
    lang: str = ""

    @classmethod
    def parse(cls, raw: dict[str, Any], settings: Settings) -> JobOptions:
        unknown = set(raw) - {"mode", "model", "lang"}
        if unknown:
            raise BadOptionError(f"unknown option(s): {', '.join(sorted(unknown))}")
        mode = str(raw.get("mode") or "page")
        if mode not in MODES:
            raise BadOptionError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        model = str(raw.get("model") or settings.default_model)
        if model not in MODELS:
            raise BadOptionError(f"unknown model {model!r}; known: {', '.join(sorted(MODELS))}")
        lang = str(raw.get("lang") or "")
        if lang not in LANGS:
            raise BadOptionError(f"lang must be one of {', '.join(l for l in LANGS if l)} (or empty); got {lang!r}")
        return cls(mode=mode, model=model, lang=lang)


def get_queue(connection: Redis, settings: Settings) -> Queue:
    """The rq queue jobs go to, with the JSON serializer."""
    return Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)


def submit(connection: Redis, settings: Settings, image: bytes, options: JobOptions) -> Job:
    """Validate ``image``, store it with a TTL and enqueue its job; returns the rq job.

    The job id is a random UUID4, so ids cannot be guessed.
    """
    inspect_image(image, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    job_id = str(uuid.uuid4())
    image_key = keys.image_key(job_id)
    queue = get_queue(connection, settings)
    with connection.pipeline() as pipe:
        # rq opens MULTI on the pipeline; the image joins the same transaction, so no worker
        # can see the job without its image.
        job = queue.enqueue_call(
            JOB_FUNC,
            kwargs={"image_key": image_key, "submitted_at": time.time(), **asdict(options)},
            job_id=job_id,
            timeout=settings.job_timeout_s,
            result_ttl=settings.result_ttl_s,
            failure_ttl=settings.result_ttl_s,
            pipeline=pipe,
        )
        pipe.set(image_key, image, ex=settings.image_ttl_s)
        pipe.execute()
    return job


def fetch(connection: Redis, job_id: str) -> Job:
    """Fetch one of our jobs by id, or raise JobNotFoundError.

    Ids are UUIDs; anything else (which rq would reject or, with a ':', misread) is not found.
    """
    missing = JobNotFoundError(f"no job with id {job_id!r} (unknown or expired)", job_id=job_id)
    try:
        if str(uuid.UUID(job_id)) != job_id:
            raise missing
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        if job.func_name != JOB_FUNC:
            raise missing
        return job
    except (ValueError, NoSuchJobError, DeserializationError):
        raise missing from None


def describe(job: Job) -> dict[str, Any]:
    """The public view of a job: status, options, and result or error."""
    status = job.get_status(refresh=True)
    status_name = status.value if status is not None else "unknown"
    kwargs = job.kwargs or {}
    view: dict[str, Any] = {
        "id": job.id,
        "status": status_name,
        "options": {"mode": kwargs.get("mode"), "model": kwargs.get("model"), "lang": kwargs.get("lang", "")},
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "result": None,
        "error": None,
    }
    if status_name == "finished":
        view["result"] = job.return_value()
    elif status_name == "failed":
        view["error"] = job.meta.get("error") or {"kind": "error", "message": "job failed"}
    return view
