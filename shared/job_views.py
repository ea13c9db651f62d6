"""The public view of a job (``GET /v1/jobs/<id>``, the producer's polls): its status, options,
and its result or error; a result kept in S3 is read back or presigned."""

from __future__ import annotations

from typing import Any

from rq.job import Job

from shared import results
from shared.errors import StorageError
from shared.payload import JobPayload
from shared.s3 import ObjectStore


def describe(job: Job, objects: ObjectStore | None = None, *, inline: bool = True) -> dict[str, Any]:
    """The public view of a job: status, options, and result or error.

    A result kept in S3 is read back when ``inline`` (needs ``objects``); otherwise the view
    carries ``result_url``, a presigned GET URL, and ``result`` stays None.
    """
    status = job.get_status(refresh=True)
    status_name = status.value if status is not None else "unknown"
    payload = JobPayload.from_job(job)
    view: dict[str, Any] = {
        "id": job.id,
        "status": status_name,
        "options": payload.public_options(),
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "result": None,
        "error": None,
    }
    if payload.image_uri:
        view["image_uri"] = payload.image_uri
    if payload.callback_url:
        view["callback_url"] = payload.callback_url
    if payload.collection:
        view["collection"] = payload.collection
    if status_name == "finished":
        value = job.return_value()
        if results.is_reference(value):
            if objects is None:
                raise StorageError("this result is in S3 but no S3 access is configured here")
            if inline:
                view["result"] = results.resolve(objects, value)
            else:
                view["result_url"] = results.presigned_url(objects, value)
        else:
            view["result"] = value
    elif status_name == "failed":
        view["error"] = job.meta.get("error") or {"kind": "error", "message": "job failed"}
    return view
