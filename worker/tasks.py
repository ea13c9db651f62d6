"""The job function rq records for OCR jobs.

``batchocr-worker`` never calls it: it batches jobs and runs the pipeline itself. A plain
``rq worker`` on the same queue would call it once per job; it then OCRs that one job with a
pipeline built once per process, so jobs never fail just because the wrong worker took them.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from rq import get_current_job

from shared import results
from shared.s3 import ObjectStore
from shared.settings import Settings
from worker.jobs import error_document, load_jobs, result_document
from worker.pipeline import OcrPipeline


@functools.lru_cache(maxsize=4)
def _pipeline(model: str, settings: Settings) -> OcrPipeline:
    return OcrPipeline.load(model, settings)


def ocr_job(**_: Any) -> dict[str, Any]:
    """OCR the current rq job alone; returns the same result document as the batch worker."""
    job = get_current_job()
    settings = Settings.from_env()
    try:
        objects = ObjectStore(settings)
        (loaded,) = load_jobs(job.connection, [job], settings, objects)
        if loaded.error is not None:
            raise loaded.error
        (page,) = _pipeline(loaded.model, settings).run([loaded.task])
        if isinstance(page, BaseException):
            raise page
        document = result_document(loaded, page, batch_size=1, batch_id=job.id[:12], finished_at=time.time())
        store = (job.kwargs or {}).get("result_store") or settings.result_store
        return results.save(objects, settings, store, job.id, document)
    except Exception as exc:
        job.meta["error"] = error_document(exc)
        job.save_meta()
        raise
    finally:
        job.connection.delete((job.kwargs or {}).get("image_key", ""))
