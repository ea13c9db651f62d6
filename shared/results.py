"""Where finished results live: Redis (rq's own job result) or S3 (one JSON object per job).

Either way rq keeps the job's return value, so ``rq info``, rq-dashboard and
``Job.return_value()`` keep working: with the Redis store it is the result document itself; with
S3 it is a small reference, ``{"result_ref": {"uri": "s3://...", "bytes": N}}``, and the
document is the object ``<OCR_S3_PREFIX><job id>.json``. Writing the same job twice (a re-run
after a crash) overwrites the same key, so a job ends with exactly one result.
"""

from __future__ import annotations

import json
from typing import Any

from shared.errors import BadOptionError
from shared.s3 import ObjectStore, S3Uri
from shared.settings import RESULT_STORES, Settings

REF = "result_ref"


def store_name(settings: Settings, requested: str) -> str:
    """The store a job uses: its own choice, else the deployment's; checked for availability."""
    name = requested or settings.result_store
    if name not in RESULT_STORES:
        raise BadOptionError(f"result_store must be one of {', '.join(RESULT_STORES)}; got {name!r}")
    if name == "s3" and not settings.s3_bucket:
        raise BadOptionError("result_store=s3 is not available: this deployment sets no OCR_S3_BUCKET")
    return name


def result_uri(settings: Settings, job_id: str) -> S3Uri:
    return S3Uri(settings.s3_bucket, f"{settings.s3_prefix}{job_id}.json")


def save(objects: ObjectStore, settings: Settings, store: str, job_id: str, document: dict) -> dict:
    """Store ``document`` in ``store``; returns what rq keeps as the job's return value."""
    if store != "s3":
        return document
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    uri = result_uri(settings, job_id)
    objects.write_json(uri, body)
    return {REF: {"uri": str(uri), "bytes": len(body)}}


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {REF}


def resolve(objects: ObjectStore, value: Any) -> Any:
    """The result document behind an rq return value (a reference is read from S3)."""
    if not is_reference(value):
        return value
    uri = S3Uri.parse(value[REF]["uri"])
    return json.loads(objects.read(uri, max_bytes=1 << 30))


def presigned_url(objects: ObjectStore, value: Any) -> str | None:
    """A time-limited GET URL for an S3 result, or None for a result held in Redis."""
    if not is_reference(value):
        return None
    return objects.presign(S3Uri.parse(value[REF]["uri"]))
