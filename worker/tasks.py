"""The job function rq records for OCR jobs.

``batchocr-worker`` never calls it: it batches jobs and runs the pipeline itself. A plain
``rq worker`` on the same queue would call it once per job; it then OCRs that one job with a
pipeline built once per process, so jobs never fail just because the wrong worker took them.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from rq import get_current_job

from shared.job_control import end_jobs
from shared.s3 import ObjectStore
from shared.settings import Settings
from worker.job_io import error_document, finish, load_jobs
from worker.pipeline import OcrPipeline

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _context() -> tuple[Settings, ObjectStore]:
    """This process's settings and S3 client, built on its first job (not for every job)."""
    settings = Settings.from_env()
    return settings, ObjectStore(settings)


@functools.lru_cache(maxsize=4)
def _pipeline(model: str, settings: Settings) -> OcrPipeline:
    return OcrPipeline.load(model, settings)


def ocr_job(**_: Any) -> dict[str, Any]:
    """OCR the current rq job alone; returns the same result document as the batch worker."""
    job = get_current_job()
    settings, objects = _context()
    ended = "failed"
    try:
        (loaded,) = load_jobs(job.connection, [job], settings, objects)
        if loaded.error is not None:
            raise loaded.error
        (page,) = _pipeline(loaded.model, settings).run([loaded.task])
        outcome, _ = finish(loaded, page, settings, objects, batch_size=1, batch_id=job.id[:12],
                            finished_at=time.time())
        if outcome.error is not None:
            raise outcome.error
        ended = "finished"
        return outcome.value
    except Exception as exc:
        job.meta["error"] = error_document(exc)
        job.save_meta()
        raise
    finally:
        try:
            end_jobs(job.connection, [job], objects, status=ended)
        except Exception:  # the job's outcome stands; its image and place lapse on their own
            logger.warning("could not delete job %s's image or give back its place", job.id, exc_info=True)
