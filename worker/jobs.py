"""From rq jobs to pipeline tasks and back: load images, build result documents."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq.job import Job

from shared.charsets import LANGS
from shared.errors import BadOptionError, BatchOcrError, ImageExpiredError
from shared.models import MODELS
from shared.settings import Settings
from worker.pipeline import PageResult, PageTask
from worker.preprocess import decode_image


@dataclass
class LoadedJob:
    """A job of the batch with its decoded task, or the error that failed it before OCR."""

    job: Job
    task: PageTask | None
    model: str
    error: Exception | None
    started_at: float
    decode_ms: float


def load_jobs(connection: Redis, jobs: list[Job], settings: Settings) -> list[LoadedJob]:
    """Fetch every job's image in one round trip and decode each on its own.

    An image that is missing, corrupt or too large fails only its own job.
    """
    kwargs = [job.kwargs or {} for job in jobs]
    blobs = connection.mget([kw.get("image_key", "") for kw in kwargs])
    loaded = []
    for job, kw, blob in zip(jobs, kwargs, blobs):
        started = time.time()
        task, error = None, None
        try:
            task = _decode_task(job, kw, blob, settings)
        except Exception as exc:  # any failure here belongs to this job alone
            error = exc
        loaded.append(LoadedJob(job, task, str(kw.get("model") or settings.default_model), error,
                                started, (time.time() - started) * 1000))
    return loaded


def _decode_task(job: Job, kw: dict[str, Any], blob: bytes | None, settings: Settings) -> PageTask:
    mode = kw.get("mode", "page")
    if mode not in ("page", "line"):
        raise BadOptionError(f"mode must be 'page' or 'line'; got {mode!r}", job_id=job.id)
    model = kw.get("model") or settings.default_model
    if model not in MODELS:
        raise BadOptionError(f"unknown model {model!r}", job_id=job.id)
    lang = kw.get("lang") or ""
    if lang not in LANGS:
        raise BadOptionError(f"unknown lang {lang!r}", job_id=job.id)
    if blob is None:
        raise ImageExpiredError("the job's image expired or was never stored", job_id=job.id)
    return PageTask(image=decode_image(blob, settings), mode=mode, lang=lang)


def error_document(exc: BaseException) -> dict[str, str]:
    """What a client sees of a failure: a stable kind and a reason, never a traceback."""
    if isinstance(exc, BatchOcrError):
        return exc.to_dict()
    return {"kind": "internal", "message": f"{type(exc).__name__}: {exc}"}


def result_document(
    loaded: LoadedJob, page: PageResult, *, batch_size: int, batch_id: str, finished_at: float
) -> dict[str, Any]:
    """The JSON result stored for a finished job."""
    kw = loaded.job.kwargs or {}
    submitted = float(kw.get("submitted_at") or loaded.started_at)
    return {
        "text": page.text,
        "lines": page.lines,
        "model": loaded.model,
        "mode": kw.get("mode", "page"),
        "batch_size": batch_size,
        "batch_id": batch_id,
        "timings_ms": {
            "queue_wait": round(max(0.0, loaded.started_at - submitted) * 1000, 1),
            "decode": round(loaded.decode_ms, 1),
            "detection": round(page.detection_ms, 1),
            "recognition": round(page.recognition_ms, 1),
            "total": round(max(0.0, finished_at - submitted) * 1000, 1),
        },
    }
