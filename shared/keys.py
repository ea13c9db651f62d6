"""Every Redis key batchocr writes, in one place (rq's own keys stay rq's)."""

from __future__ import annotations

PREFIX = "batchocr"


def image_key(job_id: str) -> str:
    """Raw image bytes of a job, written by the API with a TTL, deleted when the job ends."""
    return f"{PREFIX}:image:{job_id}"


